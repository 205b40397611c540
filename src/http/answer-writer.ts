/**
 * An answer the proxy writes itself that stays JSON until its first event, then becomes an SSE
 * stream, as a v2 SDK server's answer does: a client that was sent no event gets a plain JSON body
 * (or an error with its own status), one that was gets the answer as the stream's last event.
 * Status, headers and the open-streams gauge are set here only. Used by the MRTR relay
 * (mrtr.ts), hosted input (flows/hosted/input.ts) and the translated relay (flows/pooled/translated-relay.ts).
 */
import type { ServerResponse } from 'node:http';
import { errorBody, type JsonRpcId, type ProxyError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import { sseEvent } from './reply.js';

export class AnswerWriter {
  private opened = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly metrics: Metrics,
    /** The status of the answer, JSON or stream (an error's is the error table's). */
    private readonly status = 200,
  ) {}

  /** Whether the answer is a stream (its head may not be out yet: see open). */
  get streaming(): boolean {
    return this.opened;
  }

  /** Whether anything went out: from then on, only an event can tell the client more. */
  get started(): boolean {
    return this.res.headersSent;
  }

  /** The client is gone, or the answer complete: nothing more can reach it. */
  private get closed(): boolean {
    return this.res.destroyed || this.res.writableEnded;
  }

  /**
   * From now on the answer is a stream, counted as an open one until the response closes. Its
   * head goes out with the first write: until then it can still become an error (fail).
   */
  open(): void {
    // A response closed already would never say so again: the gauge would never come back down.
    if (this.opened || this.closed) return;
    this.opened = true;
    const { res, metrics } = this;
    res.statusCode = this.status;
    res.setHeader('content-type', 'text/event-stream');
    res.setHeader('cache-control', 'no-cache');
    metrics.streamOpened();
    res.once('close', () => metrics.streamClosed());
  }

  /** SSE text (events, keep-alives), the stream opened first. false: wait for 'drain' (or the client is gone). */
  write(events: string): boolean {
    if (this.closed) return false;
    this.open();
    return this.res.write(events);
  }

  /**
   * The answer, its JSON text: the whole body while the answer is no stream and no `pending`
   * events are left to send; else the stream's last event, after them.
   */
  end(json: string, pending = ''): void {
    if (this.closed) return;
    if (!this.opened && pending.length === 0) {
      this.res.writeHead(this.status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(json)) });
      this.res.end(json);
      return;
    }
    this.open();
    this.res.end(pending + sseEvent(json));
  }

  /**
   * A proxy error for request `clientId`: while nothing went out and no `pending` events are left
   * to send, `refuse` answers it (the error table's status and body; a stream's head set by open
   * is taken back first); else it is the stream's last event, after them.
   */
  fail(error: ProxyError, clientId: JsonRpcId, refuse: () => void, pending = ''): void {
    if (pending.length === 0 && !this.res.headersSent) {
      if (this.opened) {
        this.res.removeHeader('content-type');
        this.res.removeHeader('cache-control');
      }
      return refuse();
    }
    this.end(errorBody(error.reason, clientId, error.detail), pending);
  }
}
