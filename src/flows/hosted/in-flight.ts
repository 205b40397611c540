/**
 * A hosted session's requests in flight, by the client's JSON-RPC id: what lets a 2025 client's
 * `notifications/cancelled` reach the request it names. 2026-07-28 has no such notification over
 * HTTP: a request is cancelled by closing its HTTP exchange, so cancelling here aborts the
 * request's upstream call (its signal), and the answer to the client ends without a response
 * (2025-11-25: the receiver of a cancellation SHOULD NOT respond to the cancelled request).
 *
 * An entry lives from the request's arrival until its answer to the client is over (its 'close'),
 * so the registry holds at most what is in flight. No I/O here.
 */
import type { JsonRpcId } from '../../errors.js';
import { Cancellation } from '../../upstream/client.js';

/**
 * One hosted request while its answer is under way:
 *
 *   running ─┬─ notifications/cancelled, DELETE ─▶ cancelled   (its answer ends without a response)
 *            └─ the client left ─────────────────▶ gone        (nobody to answer)
 *
 * Either way out aborts `signal`, and the first one wins.
 */
export class InFlightRequest {
  /** Aborts the request's upstream exchange: the client left, or cancelled it. */
  readonly signal = new Cancellation();
  private state: 'running' | 'cancelled' | 'gone' = 'running';

  /** Whether the client cancelled it (notifications/cancelled, DELETE), rather than went away. */
  get cancelled(): boolean {
    return this.state === 'cancelled';
  }

  /** notifications/cancelled named it: abort upstream; the answer then ends without a response. */
  cancel(): void {
    this.leave('cancelled');
  }

  /** The client went away (its connection closed). */
  gone(): void {
    this.leave('gone');
  }

  private leave(to: 'cancelled' | 'gone'): void {
    if (this.state !== 'running') return;
    this.state = to;
    this.signal.cancel();
  }
}

export class InFlightRequests {
  /**
   * Client id → its requests in flight. One, but for a client that reuses an id while it is still
   * in flight (the spec forbids it): a cancel naming that id then cancels each, as it cannot tell
   * them apart. A Map compares ids as JSON-RPC does: 1 and "1" are two ids.
   */
  private readonly requests = new Map<JsonRpcId, InFlightRequest[]>();

  /**
   * A request with the client's `id` is on its way; `gone` fires when the client leaves. Call
   * `end` once its answer is over, whichever way: the entry goes.
   */
  begin(id: JsonRpcId, gone: Cancellation): { readonly request: InFlightRequest; readonly end: () => void } {
    const request = new InFlightRequest();
    // The client leaving aborts it as before: the hosted request's signal is its own, not `gone`.
    if (gone.aborted) request.gone();
    else gone.once('abort', () => request.gone());
    const same = this.requests.get(id);
    if (same === undefined) this.requests.set(id, [request]);
    else same.push(request);
    return { request, end: () => this.end(id, request) };
  }

  /** notifications/cancelled for `id`: true if a request in flight had it (now cancelled). */
  cancel(id: JsonRpcId): boolean {
    const same = this.requests.get(id);
    if (same === undefined) return false;
    for (const request of same) request.cancel();
    return true;
  }

  /** The client ended the session (DELETE): every request in flight is cancelled. */
  cancelAll(): void {
    for (const same of this.requests.values()) for (const request of same) request.cancel();
  }

  /** Requests in flight (for tests and metrics). */
  get size(): number {
    let size = 0;
    for (const same of this.requests.values()) size += same.length;
    return size;
  }

  private end(id: JsonRpcId, request: InFlightRequest): void {
    const same = this.requests.get(id);
    if (same === undefined) return;
    const at = same.indexOf(request);
    if (at === -1) return;
    if (same.length === 1) this.requests.delete(id);
    else same.splice(at, 1);
  }
}

/**
 * The request a 2025 client's `notifications/cancelled` names (`params.requestId`), if it is a
 * JSON-RPC id: a string or a number, as sent (no coercion: "1" does not name request 1).
 */
export function cancelledRequestIdOf(params: unknown): JsonRpcId | undefined {
  if (typeof params !== 'object' || params === null) return undefined;
  const requestId = (params as { requestId?: unknown }).requestId;
  return typeof requestId === 'string' || (typeof requestId === 'number' && Number.isFinite(requestId)) ? requestId : undefined;
}
