/**
 * Per-request bookkeeping, the same on the MCP endpoint (raw node:http) and on Fastify's routes:
 * a signal that aborts the upstream call when the client leaves early, and, once the answer is
 * over, the access line and the request metrics. One 'close' listener does all of it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { JsonRpcId, ProxyErrorReason } from '../errors.js';
import type { Metrics, RequestOutcome } from '../observability/metrics.js';
import type { LogId } from '../session/ids.js';
import { Cancellation } from '../upstream/client.js';
import type { ReplayReason } from '../mcp/loss.js';

export interface Tracked {
  /** Cancelled when the client goes away before its answer is complete. */
  readonly gone: Cancellation;
  /** performance.now() when the request arrived (the server span starts there). */
  readonly startedAt: number;
  /** Log-safe fingerprint of the client session the request belongs to. */
  sessionLogId: LogId | null;
  /** Why this request waited for the upstream session to be (re-)established, if it did. */
  replayedFor: ReplayReason | null;
  /** The proxy error the request was answered with, if any. */
  failure: ProxyErrorReason | null;
  /** The JSON-RPC id of the single request in the body, once known: error answers carry it. */
  requestId: JsonRpcId | null;
  /** Called once the answer is over, with its status (null: none was sent): the server span's end. */
  onClose: ((status: number | null) => void) | null;
}

export interface TrackingDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Called after every answer (shutdown uses it to close connections as they go idle). */
  readonly afterAnswer: () => void;
}

const OUTCOMES: Record<number, RequestOutcome> = { 2: '2xx', 3: '3xx', 4: '4xx', 5: '5xx' };
let nextId = 0;

/** Start tracking one request. `quiet` requests (probes, metrics) log at debug, not info. */
export function track(req: IncomingMessage, res: ServerResponse, deps: TrackingDeps, quiet = false): Tracked {
  const started = performance.now();
  const gone = new Cancellation();
  const tracked: Tracked = {
    gone,
    startedAt: started,
    sessionLogId: null,
    replayedFor: null,
    failure: null,
    requestId: null,
    onClose: null,
  };
  const reqId = ++nextId;
  // 'close' is emitted once; `on` spares the once-wrapper on every request.
  res.on('close', () => {
    const complete = res.writableFinished;
    if (!complete) gone.cancel();
    const ms = performance.now() - started;
    // A client that left before any answer was written: no status to report.
    const answered = res.headersSent;
    if (!complete && !answered) tracked.failure ??= 'CLIENT_CLOSED';
    const status = answered ? res.statusCode : null;
    const { failure } = tracked;
    deps.metrics.request(
      req.method ?? '',
      complete && status !== null ? (OUTCOMES[Math.floor(status / 100)] ?? '5xx') : 'aborted',
      ms / 1000,
    );
    if (failure !== null && status !== null && status >= 500) deps.metrics.upstreamError(failure.toLowerCase());
    const line = {
      reqId,
      method: req.method,
      // The path without its query string, which may carry a token.
      path: req.url?.split('?', 1)[0],
      status,
      ms: Math.round(ms * 10) / 10,
      sid: tracked.sessionLogId,
      replayed: tracked.replayedFor,
      error: failure,
      complete,
    };
    if (quiet) deps.log.debug(line, 'request');
    else deps.log.info(line, 'request');
    tracked.onClose?.(status);
    deps.afterAnswer();
  });
  return tracked;
}
