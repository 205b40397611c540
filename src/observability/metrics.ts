/**
 * Prometheus metrics (prom-client), in a registry of the app's own so that several apps in one
 * process (tests) never share counters. Labels are closed sets of short names: never an id, a
 * path from a request, or anything a client controls.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ReplayReason } from '../mcp/loss.js';
import type { UnattributedReason } from '../mcp/standing-questions.js';

/** Why a sealed id that this process had no session for was refused. */
export type SealedIdRejection = 'invalid' | 'expired' | 'terminated' | 'credentials';

/** Why a client session left the store: lru-cache's reasons, and 'max_age' for a sealed id past its age limit. */
export type EndReason = 'evict' | 'expire' | 'delete' | 'max_age';

export type RequestOutcome = '2xx' | '3xx' | '4xx' | '5xx' | 'aborted';

export interface Metrics {
  readonly registry: Registry | undefined;
  sessionCreated(): void;
  sessionEnded(reason: EndReason): void;
  sessionReopened(): void;
  sealedIdRejected(reason: SealedIdRejection): void;
  replay(reason: ReplayReason): void;
  replayFailed(): void;
  /** A client session presented with another opaque token of its identity (session/reauthenticate.ts). */
  reauthentication(outcome: ReauthenticationOutcome): void;
  upstreamError(kind: string): void;
  request(method: string, outcome: RequestOutcome, seconds: number): void;
  streamOpened(): void;
  streamClosed(): void;
  poolHit(): void;
  poolMiss(): void;
  poolEnded(reason: PoolEndReason): void;
  /** MRTR (flows/pooled/mrtr/mrtr.ts): what happened to a 2026-07-28 request whose legacy upstream asked something. */
  inputRequired(event: InputRequiredEvent): void;
  /** A question on a pooled session's standing stream that no single call could take (mcp/standing-questions.ts). */
  unattributedQuestion(reason: UnattributedReason): void;
}

/**
 * input_required: answered so; continued: a retry took up its parked exchange; rerun: a retry ran the
 * request again (exchange gone, or another replica's); refused: a retry's requestState failed
 * verification; ended_*: a parked exchange ended without its retry (timeout, full registry,
 * client gone, upstream closed, shutdown).
 */
export type InputRequiredEvent =
  | 'input_required'
  | 'continued'
  | 'rerun'
  | 'refused'
  | 'ended_timeout'
  | 'ended_full'
  | 'ended_client_closed'
  | 'ended_upstream_closed'
  | 'ended_shutdown';

/** renewed: the session now runs on a backend opened under the new credentials; refused: the upstream refused them (nothing changed). */
export type ReauthenticationOutcome = 'renewed' | 'refused';

/** Why a pooled upstream session left the pool (it is then ended upstream). */
export type PoolEndReason = 'evicted' | 'expired' | 'cleared';

const METHODS = new Set(['GET', 'POST', 'DELETE', 'OPTIONS']);

/** Metrics that cost nothing: for METRICS=false. */
const DISABLED: Metrics = {
  registry: undefined,
  sessionCreated() {},
  sessionEnded() {},
  sessionReopened() {},
  sealedIdRejected() {},
  replay() {},
  replayFailed() {},
  reauthentication() {},
  upstreamError() {},
  request() {},
  streamOpened() {},
  streamClosed() {},
  poolHit() {},
  poolMiss() {},
  poolEnded() {},
  inputRequired() {},
  unattributedQuestion() {},
};

/** Sizes the metrics read when scraped, beyond the client sessions. */
export interface MetricSizes {
  readonly pooledSessions?: () => number;
  /** Open subscriptions/listen streams of 2026-07-28 clients. */
  readonly listenStreams?: () => number;
  /** Upstream GET streams those listeners share (one per pooled session with listeners). */
  readonly notificationFeeds?: () => number;
  /** MRTR exchanges parked until the client's retry (flows/pooled/mrtr/mrtr.ts). */
  readonly parkedExchanges?: () => number;
}

export function createMetrics(enabled: boolean, activeSessions: () => number, sizes: MetricSizes = {}): Metrics {
  const { pooledSessions = () => 0, listenStreams = () => 0, notificationFeeds = () => 0, parkedExchanges = () => 0 } = sizes;
  if (!enabled) return DISABLED;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'mcp_session_proxy_' });
  const registers = [registry];

  const counter = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name, help, labelNames, registers });
  // Sizes read when scraped, so the hot path never updates them.
  const sizeGauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  sizeGauge('mcp_session_proxy_active_sessions', 'Client sessions the proxy holds now', activeSessions);
  const created = counter('mcp_session_proxy_sessions_created_total', 'Client sessions created');
  const ended = counter(
    'mcp_session_proxy_sessions_ended_total',
    'Client sessions ended, by reason: deleted by the client, evicted (LRU bound), expired (idle TTL), max_age (sealed id age limit)',
    ['reason'],
  );
  const reopened = counter(
    'mcp_session_proxy_sessions_reopened_total',
    'Sealed session ids this process had no session for, opened and accepted (after a restart, or from another replica)',
  );
  const rejected = counter(
    'mcp_session_proxy_sealed_ids_rejected_total',
    'Sealed session ids refused with 404, by reason: invalid (tampered, other secret), expired, terminated (DELETEd), credentials',
    ['reason'],
  );
  const replays = counter(
    'mcp_session_proxy_replays_total',
    'Initialize replays after the upstream lost a session, by the loss signal that triggered them (or reopened: a sealed id; reauthenticated: a new token)',
    ['signal'],
  );
  const replayFailures = counter('mcp_session_proxy_replay_failures_total', 'Replays the upstream refused');
  const reauthentications = counter(
    'mcp_session_proxy_reauthentications_total',
    'Client sessions presented with another opaque token of their identity (a refresh), by outcome: renewed (a new upstream session under the new token), refused (the upstream refused the token; the session is unchanged)',
    ['outcome'],
  );
  const upstreamErrors = counter('mcp_session_proxy_upstream_errors_total', 'Upstream failures answered to clients, by kind', ['kind']);
  const duration = new Histogram({
    name: 'mcp_session_proxy_request_duration_seconds',
    help: 'Time from request to the end of the answer (for SSE, the end of the stream)',
    labelNames: ['method', 'outcome'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  sizeGauge(
    'mcp_session_proxy_pooled_upstream_sessions',
    'Upstream sessions the proxy holds in its pool for callers without a session (2026-07-28 clients)',
    pooledSessions,
  );
  sizeGauge(
    'mcp_session_proxy_listen_streams',
    'subscriptions/listen streams open now (2026-07-28 clients on a legacy upstream)',
    listenStreams,
  );
  sizeGauge(
    'mcp_session_proxy_upstream_notification_streams',
    'Upstream GET streams the listen streams share now (one per pooled upstream session with listeners)',
    notificationFeeds,
  );
  const poolLookups = counter(
    'mcp_session_proxy_pool_lookups_total',
    'Pooled upstream session lookups, by result: hit (an upstream session to share) or miss (a new one opened)',
    ['result'],
  );
  const poolEnded = counter(
    'mcp_session_proxy_pooled_sessions_ended_total',
    'Pooled upstream sessions that left the pool and were ended upstream, by reason: evicted (count bound), expired (idle TTL), cleared (shutdown)',
    ['reason'],
  );
  sizeGauge(
    'mcp_session_proxy_parked_exchanges',
    'Upstream exchanges parked at a question, waiting for the 2026-07-28 client to retry (MRTR)',
    parkedExchanges,
  );
  const inputRequired = counter(
    'mcp_session_proxy_input_required_total',
    'MRTR over legacy upstreams, by event: input_required, continued (parked exchange taken up), rerun, refused (bad requestState), ended_<reason> (parked exchange ended without its retry)',
    ['event'],
  );
  const unattributed = counter(
    'mcp_session_proxy_unattributed_questions_total',
    "Questions a legacy server sent on a pooled session's GET stream that the proxy refused upstream, by reason: no_caller (no call that may be asked in flight, or several and none declared the capability), ambiguous (more than one declared it)",
    ['reason'],
  );
  const streams = new Gauge({ name: 'mcp_session_proxy_open_sse_streams', help: 'SSE answers being relayed now', registers });
  const endReasons: Record<EndReason, string> = {
    delete: 'deleted',
    evict: 'evicted',
    expire: 'expired',
    max_age: 'max_age',
  };

  return {
    registry,
    sessionCreated: () => created.inc(),
    sessionEnded: (reason) => ended.inc({ reason: endReasons[reason] }),
    sessionReopened: () => reopened.inc(),
    sealedIdRejected: (reason) => rejected.inc({ reason }),
    replay: (reason) => replays.inc({ signal: reason }),
    replayFailed: () => replayFailures.inc(),
    reauthentication: (outcome) => reauthentications.inc({ outcome }),
    upstreamError: (kind) => upstreamErrors.inc({ kind }),
    request: (method, outcome, seconds) => duration.observe({ method: METHODS.has(method) ? method : 'other', outcome }, seconds),
    streamOpened: () => streams.inc(),
    streamClosed: () => streams.dec(),
    poolHit: () => poolLookups.inc({ result: 'hit' }),
    poolMiss: () => poolLookups.inc({ result: 'miss' }),
    poolEnded: (reason) => poolEnded.inc({ reason }),
    inputRequired: (event) => inputRequired.inc({ event }),
    unattributedQuestion: (reason) => unattributed.inc({ reason }),
  };
}
