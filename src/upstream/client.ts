/**
 * The only undici import: a keep-alive pool to the upstream MCP endpoint, timeouts, abort, and the
 * mapping of transport failures onto the proxy's error table.
 */
import { Pool } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { ProxyError, type ProxyErrorReason } from '../errors.js';

export interface UpstreamOptions {
  readonly url: URL;
  /** Time to wait for response headers. SSE bodies are exempt: they may idle for hours. */
  readonly headersTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** How long to keep retrying a refused connection (an upstream restarting); 0 = never. */
  readonly connectRetryMs: number;
  /** A POST whose connection resets within this many ms of sending is sent once more; 0 = never. */
  readonly resetRetryWindowMs: number;
  /**
   * Rewrites every response's headers in place before anyone reads them (the auth challenge named
   * under the proxy's public URL: http/resource-metadata.ts); absent, nothing is added to the path.
   */
  readonly rewriteHeaders?: (headers: IncomingHttpHeaders) => void;
}

/**
 * What can cancel an upstream request: an AbortSignal (deadlines), or the lighter Cancellation
 * below (a client gone).
 */
export type CancelSignal = AbortSignal | Cancellation;

/**
 * Cancellation for the hot path: an AbortController costs about 2 µs to create and its
 * EventTarget listeners as much again, on every request; an emitter costs a tenth of that.
 */
export class Cancellation extends EventEmitter {
  aborted = false;
  readonly reason: undefined;
  cancel(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.emit('abort');
  }
  // undici takes anything with `aborted` for an AbortSignal and listens through Node's
  // addAbortListener, which calls these two: the same listeners, on the emitter.
  addEventListener(_type: 'abort', listener: () => void): void {
    this.once('abort', listener);
  }
  removeEventListener(_type: 'abort', listener: () => void): void {
    this.off('abort', listener);
  }
}

/** Request headers for the upstream (lower-case names). */
export type UpstreamHeaders = Record<string, string | string[]>;

export interface UpstreamRequest {
  readonly method: 'GET' | 'POST' | 'DELETE' | 'OPTIONS';
  /** Another path on the upstream's origin than its MCP endpoint (protected-resource metadata). */
  readonly path?: string;
  readonly headers: UpstreamHeaders;
  readonly body?: Buffer | string;
  readonly signal?: CancelSignal;
  /**
   * The JSON-RPC message the body holds, as its sender parsed or built it: tracing names the
   * exchange's span from it (bodies are never parsed again for that). Never sent.
   */
  readonly rpc?: unknown;
}

export interface UpstreamResponse {
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders;
  /** undici's body; any Readable for the in-memory client the unit tests use. */
  readonly body: Readable;
}

export interface UpstreamClient {
  request(request: UpstreamRequest): Promise<UpstreamResponse>;
  /** Whether the upstream answers HTTP at all (any status), within `timeoutMs`, without retries. */
  probe(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

// A connection that fails before any answer: a pooled socket the upstream closed (restart, idle
// timeout), a connection the kernel accepted but a stopping server never took. The request was
// never read, and one more try on a fresh socket is what makes a restart invisible. An upstream
// that read a request and then dropped the connection fails the same way, so a POST (a tool
// call) is sent again only when the failure came right after sending, as restarts do; a server
// that worked on it for a while before dropping it has probably started running it.
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);
const IDEMPOTENT_METHODS = new Set(['GET', 'DELETE', 'OPTIONS']);
// A restart can reset the retry too (it may land on a connection the stopping server never takes):
// two retries at once, then with backoff until connectRetryMs, as a refused connection.
const MAX_RESET_RETRIES = 2;
// A refused connection never delivered the request: retrying it is always safe, and an upstream
// that is restarting is back within a second or two.
const REFUSED_CODES = new Set(['ECONNREFUSED']);
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);
const FIRST_BACKOFF_MS = 25;
const MAX_BACKOFF_MS = 500;

export function createUpstreamClient(options: UpstreamOptions): UpstreamClient {
  const pool = new Pool(options.url.origin, {
    headersTimeout: options.headersTimeoutMs,
    bodyTimeout: 0,
    connect: { timeout: options.connectTimeoutMs },
  });
  const path = options.url.pathname + options.url.search;
  const { rewriteHeaders } = options;

  const send = (request: UpstreamRequest) =>
    pool.request({
      path: request.path ?? path,
      method: request.method,
      headers: request.headers,
      body: request.body ?? null,
      signal: request.signal ?? null,
    });

  /** After a failed first try: the retries described above, or the error mapped for the client. */
  async function retry(request: UpstreamRequest, firstError: unknown, firstSentAt: number): Promise<UpstreamResponse> {
    const { signal } = request;
    let error = firstError;
    let sentAt = firstSentAt;
    let resetRetries = 0;
    let backoff = FIRST_BACKOFF_MS;
    const retryUntil = Date.now() + options.connectRetryMs;
    for (;;) {
      const code = codeOf(error);
      if (signal?.aborted) throw toProxyError(error, signal);
      const resetEarly =
        STALE_SOCKET_CODES.has(code) &&
        (IDEMPOTENT_METHODS.has(request.method) || performance.now() - sentAt <= options.resetRetryWindowMs);
      if (resetEarly && resetRetries < MAX_RESET_RETRIES) {
        resetRetries++;
      } else {
        // Past the immediate retries, more resets right after sending (a restarting upstream
        // closing pooled connections one by one) are retried as refused connections are.
        if (!(REFUSED_CODES.has(code) || resetEarly) || Date.now() + backoff > retryUntil) throw toProxyError(error, signal);
        await sleep(backoff);
        if (signal?.aborted) throw toProxyError(error, signal);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
      sentAt = performance.now();
      try {
        return await send(request);
      } catch (next) {
        error = next;
      }
    }
  }

  return {
    // The fast path is one undici call with no async frame of its own; failures go to `retry`.
    request(request) {
      const sentAt = performance.now();
      const answered = send(request).catch((error: unknown) => retry(request, error, sentAt));
      if (rewriteHeaders === undefined) return answered;
      return answered.then((response) => {
        rewriteHeaders(response.headers);
        return response;
      });
    },
    async probe(timeoutMs) {
      // OPTIONS: answered quickly by every server stack (CORS, 405, 404...), with no side effect;
      // GET could open an event stream and POST would need a session.
      try {
        const answer = await send({ method: 'OPTIONS', headers: {}, signal: AbortSignal.timeout(timeoutMs) });
        await drain(answer.body);
        return true;
      } catch {
        return false;
      }
    },
    close: () => pool.close(),
  };
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** Map a transport failure; an aborted signal says whether a deadline passed or the client left. */
export function toProxyError(error: unknown, signal?: CancelSignal): ProxyError {
  if (error instanceof ProxyError) return error;
  if (signal?.aborted) {
    const timedOut = (signal.reason as { name?: unknown } | undefined)?.name === 'TimeoutError';
    return new ProxyError(timedOut ? 'UPSTREAM_TIMEOUT' : 'CLIENT_CLOSED', { cause: error });
  }
  const reason = TIMEOUT_CODES.has(codeOf(error)) ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_UNAVAILABLE';
  return new ProxyError(reason, { cause: error });
}

/**
 * Read a short upstream body (an initialize answer, an error) in full. More than `limit` bytes is
 * not something these answers ever are, so it fails with `tooLarge` rather than growing memory.
 */
export function readBody(
  body: UpstreamResponse['body'],
  limit: number,
  tooLarge: ProxyErrorReason,
  signal?: CancelSignal,
): Promise<Buffer> {
  // Listeners rather than `for await`: an async iterator costs a promise per chunk, and modern
  // (2026-07-28) answers are read whole on the hot path.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        body.off('data', onData);
        discard(body);
        reject(new ProxyError(tooLarge));
        return;
      }
      chunks.push(chunk);
    };
    body.on('data', onData);
    body.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    body.once('error', (error) => reject(toProxyError(error, signal)));
    // A body already destroyed (the client left) emits neither 'end' nor always 'error'.
    body.once('close', () => {
      if (!body.readableEnded) reject(toProxyError(new Error('body closed before its end'), signal));
    });
  });
}

// An answer read only for its status (notifications/initialized, DELETE) is a few bytes; past
// this, dropping the connection is cheaper than reading on.
const MAX_DRAINED_BYTES = 64 * 1024;

/**
 * Read an answer whose body does not matter to its end, so its connection goes back to the pool
 * (or throw it away past MAX_DRAINED_BYTES). Rejects if the body fails or is cut. Listeners, not
 * `for await`: it runs for every MRTR answer and notification the proxy sends upstream.
 */
export function drain(body: UpstreamResponse['body']): Promise<void> {
  // Over already: no event is coming (for await resolved, or threw "Premature close", here).
  if (body.readableEnded) return Promise.resolve();
  if (body.destroyed) return Promise.reject(body.errored ?? new Error('body closed before its end'));
  return new Promise((resolve, reject) => {
    let size = 0;
    let settled = false;
    // The 'error' listener stays: an error after the end must not crash the process.
    const settle = (error?: Error) => {
      if (settled) return;
      settled = true;
      body.off('data', onData);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_DRAINED_BYTES) return;
      settle();
      discard(body);
    };
    body.on('data', onData);
    body.once('end', () => settle());
    body.on('error', (error: Error) => settle(error));
    body.once('close', () => settle(new Error('body closed before its end')));
  });
}

/**
 * Throw an upstream body away (and with it the upstream request). undici reports a destroyed body
 * as an 'error' event, which would crash the process without a listener.
 */
export function discard(body: UpstreamResponse['body']): void {
  body.on('error', ignore);
  body.destroy();
}

function ignore(): void {}
