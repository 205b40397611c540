/**
 * Writing answers to clients on the raw response: relaying an upstream answer as it arrives, and
 * turning any error into a JSON-RPC error body from the one table in errors.ts.
 */
import type { FastifyError } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { errorBody, ProxyError, UpstreamAnswer, type JsonRpcId, type ProxyErrorReason } from '../errors.js';
import { isEventStream } from '../mcp/protocol.js';
import type { Metrics } from '../observability/metrics.js';
import { toClientHeaders, type OutgoingHeaders } from './headers.js';
import type { Tracked } from './tracking.js';

/** Event streams being relayed: the client's response → the upstream body feeding it. */
export type OpenStreams = Map<ServerResponse, Readable>;

/** End every open stream and its upstream request (clients reconnect; the server can close). */
export function endStreams(streams: OpenStreams): void {
  for (const [res, payload] of streams) {
    payload.destroy();
    res.end();
  }
}

export interface RelayOptions {
  /** SSE text to send when the upstream breaks off mid-stream (errors for requests still waiting). */
  readonly cutEvents?: () => string;
  /** Counts open SSE streams. */
  readonly metrics?: Metrics;
  /** Open event streams and their upstream bodies, so shutdown can end them. */
  readonly streams?: OpenStreams;
}

/**
 * Send an upstream answer. Headers go out at once for SSE (a client must learn its stream is open
 * before the first event) and the body is piped as it arrives, never buffered.
 */
export function relay(
  res: ServerResponse,
  status: number,
  headers: OutgoingHeaders,
  payload: Readable | Buffer,
  options: RelayOptions = {},
): void {
  res.writeHead(status, headers);
  if (Buffer.isBuffer(payload)) {
    res.end(payload);
    return;
  }
  if (isEventStream(headers['content-type'])) {
    res.flushHeaders();
    const { streams, cutEvents, metrics } = options;
    if (streams !== undefined) {
      streams.set(res, payload);
      res.once('close', () => streams.delete(res));
    }
    if (metrics !== undefined) {
      metrics.streamOpened();
      res.once('close', () => metrics.streamClosed());
    }
    // An upstream that dies mid-stream must not leave the client waiting: each request still
    // waiting gets a JSON-RPC error event, then the stream ends cleanly.
    payload.once('error', () => {
      if (!res.writableEnded) {
        metrics?.upstreamError('upstream_cut');
        if (cutEvents !== undefined) res.write(cutEvents());
      }
      res.end();
    });
  } else {
    // A cut JSON body is cut for the client too, so it can never pass for a complete answer.
    payload.once('error', () => res.destroy());
  }
  // A client that leaves aborts the upstream request through the tracked `gone` signal.
  payload.pipe(res);
}

/**
 * One SSE event carrying the JSON-RPC message `json`: the `message` event type, and no `id:`
 * (2026-07-28 has no resumability; 2025 answers the proxy writes itself need none).
 */
export function sseEvent(json: string): string {
  return `event: message\ndata: ${json}\n\n`;
}

/** The keep-alive comment on long-lived streams: the v2 SDK server's, so clients see the same. */
export const SSE_KEEPALIVE = ': keepalive\n\n';

/** SSE events answering each of `ids` with the given proxy error. */
export function errorEvents(reason: ProxyErrorReason, ids: readonly JsonRpcId[]): string {
  return ids.map((id) => sseEvent(errorBody(reason, id))).join('');
}

// Fastify's own errors (body parsing) and @fastify/reply-from's (pass-through), onto the table.
const FASTIFY_ERRORS: Record<string, ProxyErrorReason> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'PARSE_ERROR',
};

function asProxyError(error: unknown): ProxyError {
  if (error instanceof ProxyError) return error;
  const { code, statusCode } = (error ?? {}) as Partial<FastifyError>;
  const known = code === undefined ? undefined : FASTIFY_ERRORS[code];
  const reason: ProxyErrorReason =
    known ??
    (statusCode === 504
      ? 'UPSTREAM_TIMEOUT'
      : statusCode === 502 || statusCode === 503
        ? 'UPSTREAM_UNAVAILABLE'
        : statusCode !== undefined && statusCode >= 400 && statusCode < 500
          ? 'INVALID_REQUEST'
          : 'INTERNAL_ERROR');
  return new ProxyError(reason, { cause: error });
}

/** Answer any error: a JSON-RPC error body with the right status, always (or the upstream's own
 *  auth challenge, as it sent it). */
export function answerError(req: IncomingMessage, res: ServerResponse, tracked: Tracked, error: unknown, log: Logger): void {
  if (res.headersSent) {
    // The answer was already on its way: cutting it is the only honest signal left.
    res.destroy();
    return;
  }
  if (error instanceof UpstreamAnswer) {
    relay(res, error.status, toClientHeaders(error.headers, undefined), error.body);
    return;
  }
  const proxyError = asProxyError(error);
  tracked.failure = proxyError.reason;
  if (proxyError.reason === 'CLIENT_CLOSED') {
    log.debug({ sid: tracked.sessionLogId }, 'client closed the request');
    res.destroy();
    return;
  }
  if (proxyError.reason === 'INTERNAL_ERROR') {
    log.error({ err: error, sid: tracked.sessionLogId }, 'unexpected error');
  } else if (proxyError.status >= 500) {
    const cause = proxyError.cause as { code?: unknown } | undefined;
    log.warn(
      { sid: tracked.sessionLogId, reason: proxyError.reason, cause: cause?.code, upstreamStatus: proxyError.detail?.upstreamStatus },
      'upstream failure',
    );
  }
  const body = errorBody(proxyError.reason, tracked.requestId, proxyError.detail);
  const headers: OutgoingHeaders = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
  if (proxyError.reason === 'METHOD_NOT_ALLOWED') headers.allow = 'GET, POST, DELETE';
  if (proxyError.reason === 'HELD_NO_EVENT_STREAM') headers.allow = 'POST, DELETE';
  if (proxyError.reason === 'PAYLOAD_TOO_LARGE') lingerThenClose(req);
  if (proxyError.reason === 'REQUEST_TIMEOUT') {
    // The rest of a stalled body may never come: this connection cannot carry another request.
    headers.connection = 'close';
    lingerThenClose(req);
  }
  res.writeHead(proxyError.status, headers);
  res.end(body);
}

// Lingering close (as nginx does it): after refusing a body, read and discard what the client is
// still sending, within bounds. Closing with unread data makes the kernel reset the connection,
// and the reset can destroy the 413 before the client reads it.
const LINGER_MS = 2_000;
const LINGER_BYTES = 64 * 1024 * 1024;

function lingerThenClose(req: IncomingMessage): void {
  const socket = req.socket;
  let discarded = 0;
  const stop = setTimeout(() => socket.destroy(), LINGER_MS);
  stop.unref();
  req.removeAllListeners('data');
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > LINGER_BYTES) socket.destroy();
  });
  req.once('end', () => clearTimeout(stop));
  socket.once('close', () => clearTimeout(stop));
  req.resume();
}
