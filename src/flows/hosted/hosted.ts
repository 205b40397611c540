/**
 * The hosted flow: a 2025 client in front of a 2026-07-28-only upstream, which keeps no sessions.
 * The proxy hosts the session itself (hosted-session.ts): the initialize is answered from the
 * upstream's server/discover; the handshake's leftovers (ping, the log level, subscriptions) are
 * answered here; every other request goes upstream as a stateless 2026-07-28 request carrying the
 * session in its envelope (forward.ts), its answer translated back; the GET stream is served from
 * an upstream subscriptions/listen (stream.ts).
 */
import type { Logger } from 'pino';
import { ProxyError, type JsonRpcId } from '../../errors.js';
import { accepted, answerJson, relayAsItCame, type Call } from '../../http/call.js';
import type { OpenStreams } from '../../http/reply.js';
import { isLoggingLevel } from '../../mcp/era.js';
import { cancelledRequestIdOf } from './in-flight.js';
import { initializeResultOf, legacyClientOf, negotiatedVersion } from '../../mcp/modern-upstream.js';
import { isAuthChallenge, SESSION_HEADER } from '../../mcp/protocol.js';
import { MAX_RESOURCE_SUBSCRIPTIONS } from '../../mcp/subscriptions.js';
import type { Metrics } from '../../observability/metrics.js';
import type { ClientSessions } from '../../session/client-sessions.js';
import type { Session } from '../../session/store.js';
import type { UpstreamClient } from '../../upstream/client.js';
import { discoverForHosted } from './discover.js';
import { endCancelled, forwardHosted } from './forward.js';
import { HostedSession } from './hosted-session.js';
import { deliverClientResponse } from './input.js';
import { serveHostedStream } from './stream.js';

export interface HostedDeps {
  readonly upstream: UpstreamClient;
  readonly sessions: ClientSessions;
  /** The upstream answered the hosting server/discover as a legacy server would: find its era again. */
  readonly forgetEra: () => void;
  /** How long a question of an input_required answer waits for the client's response. */
  readonly inputTimeoutMs: number;
  readonly listenKeepAliveMs: number;
  readonly openStreams: OpenStreams;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly closing: () => boolean;
}

export interface HostedFlow {
  /** A 2025 client's initialize: answered from the upstream's server/discover, with a hosted session. */
  start(call: Call, requestId: JsonRpcId, params: object): Promise<void>;
  /** A POSTed message on a hosted session. */
  post(call: Call, hosted: HostedSession, parsed: unknown): Promise<void>;
  /** The session's GET event stream. */
  stream(call: Call, session: Session, hosted: HostedSession): Promise<void>;
}

type Params = Record<string, unknown> | undefined;

export function createHostedFlow(deps: HostedDeps): HostedFlow {
  const { log } = deps;

  async function start(call: Call, requestId: JsonRpcId, params: object) {
    const client = legacyClientOf(params);
    const discovered = await discoverForHosted(deps.upstream, call.req.headers, client, requestId, call.tracked.gone);
    if (discovered.kind === 'refused') {
      const { response, body } = discovered;
      // Not a 2026-07-28 answer, unless it is an auth challenge: the upstream may have been rolled
      // back to a legacy server; the next initialize finds out again (the era is probed anew).
      if (!isAuthChallenge(response.statusCode)) deps.forgetEra();
      // Auth challenges, errors: the client sees the upstream's own answer, and no session is made.
      return relayAsItCame(call, { response, payload: body });
    }
    const protocolVersion = negotiatedVersion((params as { protocolVersion?: unknown }).protocolVersion);
    const hosted = new HostedSession(client, protocolVersion);
    const session = await deps.sessions.create(
      call,
      { params, initParams: JSON.stringify(params), protocolVersion },
      { kind: 'hosted', hosted },
    );
    log.info({ sid: session.logId, link: hosted.label }, 'session created (hosted: the upstream speaks 2026-07-28 only)');
    const text = JSON.stringify({ jsonrpc: '2.0', id: requestId, result: initializeResultOf(discovered.result, protocolVersion) });
    call.res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(text)),
      [SESSION_HEADER]: session.id,
    });
    call.res.end(text);
  }

  /**
   * A message on a hosted session: answered here (the handshake, ping, the log level, resource
   * subscriptions), or sent on upstream (forward.ts).
   */
  async function post(call: Call, hosted: HostedSession, parsed: unknown) {
    if (Array.isArray(parsed)) throw new ProxyError('HELD_BATCH');
    const { id, method, params } = parsed as { id?: JsonRpcId; method?: unknown; params?: Params };
    // A response to a question of an input_required exchange (input.ts) goes to it; a
    // cancellation to the request it names, if in flight here (else it is ignored, as the spec
    // allows); other notifications (initialized, roots changed) and responses: nothing takes them.
    if (typeof method !== 'string' || id === undefined) {
      if (typeof method !== 'string') deliverClientResponse(hosted, parsed);
      else if (method === 'notifications/cancelled') cancel(hosted, params);
      return accepted(call);
    }
    if (method === 'ping') return answerJson(call.res, 200, { jsonrpc: '2.0', id, result: {} });
    if (method === 'logging/setLevel') return setLevel(call, hosted, id, params);
    // 2026-07-28 removed them: kept on the session, carried upstream by the GET stream's listen.
    if (method === 'resources/subscribe' || method === 'resources/unsubscribe') return subscribe(call, hosted, id, method, params);
    // In flight until its answer is over: a notifications/cancelled naming its id aborts it.
    const { request, end } = hosted.inFlight.begin(id, call.tracked.gone);
    // Gone already (the client left while its body was read): no 'close' is coming to end it.
    if (call.res.closed) end();
    else call.res.once('close', end);
    const forwardDeps = { upstream: deps.upstream, inputTimeoutMs: deps.inputTimeoutMs, metrics: deps.metrics, log };
    try {
      await forwardHosted(forwardDeps, call, hosted, request, { id, method, params });
    } catch (error) {
      // The upstream call was aborted by the cancellation: not a failure to answer.
      if (!request.cancelled) throw error;
    }
    if (request.cancelled) endCancelled(call);
  }

  function setLevel(call: Call, hosted: HostedSession, id: JsonRpcId, params: Params) {
    const level = params?.level;
    if (!isLoggingLevel(level)) return answerJson(call.res, 200, invalidParams(id, 'level must be a logging level'));
    hosted.logLevel = level;
    answerJson(call.res, 200, { jsonrpc: '2.0', id, result: {} });
  }

  async function subscribe(call: Call, hosted: HostedSession, id: JsonRpcId, method: string, params: Params) {
    const uri = params?.uri;
    if (typeof uri !== 'string') return answerJson(call.res, 200, invalidParams(id, 'uri must be a string'));
    const on = method === 'resources/subscribe';
    if (on && hosted.subscriptions.size >= MAX_RESOURCE_SUBSCRIPTIONS && !hosted.subscriptions.has(uri)) {
      return answerJson(call.res, 200, invalidParams(id, `at most ${MAX_RESOURCE_SUBSCRIPTIONS} subscriptions per session`));
    }
    await hosted.subscribe(uri, on);
    answerJson(call.res, 200, { jsonrpc: '2.0', id, result: {} });
  }

  /** A 2025 client's notifications/cancelled: the request it names is aborted upstream. */
  function cancel(hosted: HostedSession, params: Params) {
    const requestId = cancelledRequestIdOf(params);
    if (requestId !== undefined && hosted.inFlight.cancel(requestId))
      log.debug({ link: hosted.label }, 'hosted request cancelled by the client: its upstream request is aborted');
  }

  async function stream(call: Call, session: Session, hosted: HostedSession) {
    if (deps.closing()) throw new ProxyError('SHUTTING_DOWN');
    const streamDeps = {
      upstream: deps.upstream,
      log,
      metrics: deps.metrics,
      openStreams: deps.openStreams,
      keepAliveMs: deps.listenKeepAliveMs,
    };
    return serveHostedStream(streamDeps, call.req, call.res, hosted, session.id);
  }

  return { start, post, stream };
}

function invalidParams(id: JsonRpcId, why: string) {
  return { jsonrpc: '2.0', id, error: { code: -32602, message: `Invalid params: ${why}` } };
}
