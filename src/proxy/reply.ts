/**
 * Writing answers to clients: relaying an upstream answer as it arrives, and turning any error
 * into a JSON-RPC error body from the one table in errors.ts.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { errorBody, PROXY_ERRORS, ProxyError, UpstreamAnswer, type ProxyErrorReason } from '../errors.js';
import { isEventStream } from '../mcp/protocol.js';
import type { Metrics } from '../observability/metrics.js';
import { toClientHeaders, type OutgoingHeaders } from './headers.js';

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
 * Send an upstream answer on the raw response. Headers go out at once for SSE (a client must learn
 * its stream is open before the first event; Fastify's stream mode would hold them back until the
 * first chunk) and the body is piped as it arrives, never buffered.
 */
export function relay(
  reply: FastifyReply,
  status: number,
  headers: OutgoingHeaders,
  payload: Readable | Buffer,
  options: RelayOptions = {},
): FastifyReply {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(status, headers);
  if (Buffer.isBuffer(payload)) {
    res.end(payload);
    return reply;
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
  // A client that leaves aborts the upstream request through request.clientGone.
  payload.pipe(res);
  return reply;
}

/** SSE events answering each of `ids` with the given proxy error. */
export function errorEvents(reason: ProxyErrorReason, ids: readonly (string | number)[]): string {
  return ids.map((id) => `event: message\ndata: ${errorBody(reason, id)}\n\n`).join('');
}

// Fastify's own errors (body parsing) and @fastify/reply-from's (pass-through), onto the table.
const FASTIFY_ERRORS: Record<string, ProxyErrorReason> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'PARSE_ERROR',
};

function reasonFor(error: FastifyError): ProxyErrorReason {
  const known = FASTIFY_ERRORS[error.code];
  if (known !== undefined) return known;
  if (error.statusCode === 504) return 'UPSTREAM_TIMEOUT';
  if (error.statusCode === 502 || error.statusCode === 503) return 'UPSTREAM_UNAVAILABLE';
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) return 'INVALID_REQUEST';
  return 'INTERNAL_ERROR';
}

/** The error handler for every route: a JSON-RPC error body with the right status, always. */
export function replyWithError(
  error: FastifyError | ProxyError | UpstreamAnswer,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  if (error instanceof UpstreamAnswer) {
    return relay(reply, error.status, toClientHeaders(error.headers, undefined), error.body);
  }
  const proxyError = error instanceof ProxyError ? error : new ProxyError(reasonFor(error), { cause: error });
  request.failure = proxyError.reason;
  if (proxyError.reason === 'CLIENT_CLOSED') {
    request.log.debug({ sid: request.sessionLogId }, 'client closed the request');
    return reply.code(PROXY_ERRORS.CLIENT_CLOSED.status).send();
  }
  if (proxyError.reason === 'INTERNAL_ERROR') {
    request.log.error({ err: error, sid: request.sessionLogId }, 'unexpected error');
  } else if (proxyError.status >= 500) {
    const cause = proxyError.cause as { code?: unknown } | undefined;
    request.log.warn(
      { sid: request.sessionLogId, reason: proxyError.reason, cause: cause?.code, ...proxyError.detail },
      'upstream failure',
    );
  }
  if (proxyError.reason === 'PAYLOAD_TOO_LARGE') lingerThenClose(request, reply);
  return reply
    .code(proxyError.status)
    .header('content-type', 'application/json')
    .send(errorBody(proxyError.reason, proxyError.requestId, proxyError.detail));
}

// Lingering close (as nginx does it): after refusing a body, read and discard what the client is
// still sending, within bounds. Fastify marks such answers `Connection: close`, so Node would close
// the socket with unread data as soon as the 413 is written, the kernel would reset the
// connection, and the reset can destroy the 413 before the client reads it.
const LINGER_MS = 2_000;
const LINGER_BYTES = 64 * 1024 * 1024;

function lingerThenClose(request: FastifyRequest, reply: FastifyReply): void {
  reply.removeHeader('connection');
  const { raw } = request;
  const socket = raw.socket;
  let discarded = 0;
  const stop = setTimeout(() => socket.destroy(), LINGER_MS);
  stop.unref();
  raw.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > LINGER_BYTES) socket.destroy();
  });
  raw.once('end', () => clearTimeout(stop));
  socket.once('close', () => clearTimeout(stop));
  raw.resume();
}
