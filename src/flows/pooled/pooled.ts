/**
 * The pooled flow: a caller without a session of its own (a 2026-07-28 client, or a 2025 caller
 * that sends no session id) on a legacy upstream, over an upstream session the proxy pools per
 * caller key (upstream/pool.ts). The request is translated onto the shared session (the 2026
 * envelope off, an id and progress token unique on it), the answer back, event by event
 * (translated-relay.ts). server/discover is answered here, from the upstream's InitializeResult;
 * subscriptions/listen joins the session's GET stream (listen/); questions the upstream asks
 * become input_required (mrtr/).
 */
import type { Logger } from 'pino';
import { ProxyError, type JsonRpcId } from '../../errors.js';
import { answerJson, relayAsItCame, type Call } from '../../http/call.js';
import { toTranslatedHeaders, toUpstreamHeaders } from '../../http/headers.js';
import type { ModernMessage } from '../../mcp/era.js';
import { INPUT_REQUIRED_METHODS } from '../../mcp/input-required.js';
import { overCallRefusal } from '../../mcp/standing-questions.js';
import { isEventStream, PROTOCOL_VERSION_HEADER } from '../../mcp/protocol.js';
import {
  discoverResult,
  splicedJsonAnswer,
  toLegacyRequest,
  toModernMessage,
  toSessionlessMessage,
  type AnswerContext,
} from '../../mcp/translate.js';
import type { Metrics } from '../../observability/metrics.js';
import type { Tracing } from '../../observability/tracing.js';
import type { CredentialBinding } from '../../session/binding.js';
import { toProxyError, type UpstreamHeaders } from '../../upstream/client.js';
import { refusedAsModernOnly } from '../../upstream/era-probe.js';
import type { Answer, Outgoing, UpstreamLink } from '../../upstream/link.js';
import type { LinkPool, PoolEntry } from '../../upstream/pool.js';
import type { FlowOutcome } from '../era-matrix.js';
import type { NotificationFeeds } from './listen/feed.js';
import type { Listens } from './listen/listen.js';
import type { Begun, Mrtr } from './mrtr/mrtr.js';
import { StandingCall } from './mrtr/standing.js';
import { relayTranslated } from './translated-relay.js';

export interface PooledDeps {
  readonly pool: LinkPool;
  readonly binding: CredentialBinding;
  readonly listens: Listens;
  /** The pooled sessions' standing streams: listen's, and the questions a legacy server asks there. */
  readonly feeds: NotificationFeeds;
  readonly mrtr: Mrtr;
  /** No upstream: when it comes back it may speak another era; find out again. */
  readonly forgetEra: () => void;
  readonly tracing: Tracing;
  readonly metrics: Metrics;
  readonly log: Logger;
}

export interface PooledFlow {
  /** A 2026-07-28 request (not a notification: those are answered 202 before any flow). */
  modern(call: Call, message: Request): Promise<FlowOutcome>;
  /** A 2025-style request without a session id: only its ids are rewritten. */
  sessionless(call: Call, parsed: unknown): Promise<void>;
}

/** What the proxy asks of a legacy upstream for callers that did not initialize themselves. */
const LEGACY_PROTOCOL_VERSION = '2025-11-25';
/** clientInfo for sessionless callers, which declare none. */
const PROXY_CLIENT_INFO = { name: 'mcp-session-proxy', version: 'sessionless' };

/** A 2026-07-28 request, envelope and all (mcp/era.ts). */
export type Request = Extract<ModernMessage, { kind: 'request' }>;

export function createPooledFlow(deps: PooledDeps): PooledFlow {
  const { pool, binding, mrtr, tracing } = deps;

  async function modern(call: Call, message: Request): Promise<FlowOutcome> {
    const headers = toTranslatedHeaders(call.req.headers);
    const { envelope, method, params } = message;
    const entry: PoolEntry = {
      credential: binding.of(call.req.headers),
      initParams: initParamsOf(envelope.clientCapabilities, envelope.clientInfo ?? PROXY_CLIENT_INFO),
      protocolVersion: LEGACY_PROTOCOL_VERSION,
      logLevel: envelope.logLevel,
    };
    const link = pool.link(entry);
    if (method === 'server/discover') {
      const result = await link.describe(outgoing(call, headers, undefined));
      return answerJson(call.res, 200, { jsonrpc: '2.0', id: message.id, result: discoverResult(result) });
    }
    // A long-lived stream on the upstream session's shared GET stream (listen/listen.ts).
    if (method === 'subscriptions/listen') {
      const describe = () => link.describe(outgoing(call, headers, undefined));
      return deps.listens.serve(call.req, call.res, call.tracked, {
        id: message.id,
        params,
        link,
        headers,
        describe,
        touch: () => pool.touch(entry),
      });
    }
    return request(call, message, link, headers);
  }

  /** A request on the caller's pooled link: MRTR rounds (mrtr/) or one translated exchange. */
  async function request(call: Call, message: Request, link: UpstreamLink, headers: UpstreamHeaders): Promise<FlowOutcome> {
    const { envelope, method, params } = message;
    const clientProgressToken = progressTokenOf(params);
    // MRTR: a retry may continue a parked upstream exchange; a run of these methods may be asked
    // questions, which become input_required.
    const round = INPUT_REQUIRED_METHODS.has(method) ? mrtr.begin(call, method, params) : undefined;
    // Every round: the first, a retry that continues a parked exchange, or one that runs it again.
    if (tracing.on && round !== undefined && tracing.recorded(headers)) {
      const retry = params?.requestState !== undefined || params?.inputResponses !== undefined;
      tracing.mark(
        'mrtr round',
        { 'mcp.method.name': method, 'mcp_session_proxy.mrtr.round': round.kind === 'resume' ? 'resume' : retry ? 'rerun' : 'first' },
        headers,
      );
    }
    const { logLevel, clientCapabilities } = envelope;
    if (round?.kind === 'resume') {
      return mrtr.resume(
        call,
        round,
        { method, clientId: message.id, clientProgressToken, logLevel, serverInfo: link.serverInfo, clientCapabilities },
        headers,
      );
    }
    const upstreamId = link.nextRequestId();
    const upstreamProgressToken = clientProgressToken === undefined ? undefined : upstreamId;
    const out = outgoing(call, headers, toLegacyRequest(method, round?.params ?? params, upstreamId, upstreamProgressToken), message);
    // A call that may be asked holds the session's standing stream open: a legacy server may ask
    // there instead of on the call's answer (mrtr/standing.ts). Whatever its client declared: a
    // question for a capability it did not declare must fail it with -32021, which only a
    // question that arrives can do (a v1 SDK server drops one for a GET stream that is not open).
    const standing = round?.kind === 'run' ? standingCallOn(link, clientCapabilities, headers) : undefined;
    try {
      if (standing?.opened !== undefined) await standing.opened;
      let answer: Answer;
      try {
        answer = (await link.send(out))!;
      } catch (error) {
        if (toProxyError(error).reason === 'UPSTREAM_UNAVAILABLE') deps.forgetEra();
        throw error;
      } finally {
        // The access line says why the request waited, if it did (a replay).
        call.tracked.replayedFor = out.replayed ?? null;
      }
      const context: AnswerContext = {
        method,
        clientId: message.id,
        upstreamId,
        clientProgressToken,
        upstreamProgressToken,
        logLevel,
        serverInfo: link.serverInfo,
        clientCapabilities,
      };
      // The upstream was replaced by a 2026-07-28-only server (same address): it refused the
      // translation unprocessed. The dispatcher finds out again, and may send the request as it came.
      if (refusedAsModernOnly(answer)) {
        return { kind: 'era-changed', otherwise: () => relayAnswer(call, round, context, link, headers, answer, undefined) };
      }
      await relayAnswer(call, round, context, link, headers, answer, standing?.place);
    } finally {
      // Whatever happened before an MRTR exchange took the place (a throw included), it is freed:
      // a place left behind would hold the stream open for ever and take the session's questions.
      standing?.place.releaseUnlessTaken();
    }
  }

  /** The call's place on its session's standing stream, and the wait for the stream to open (if any). */
  function standingCallOn(link: UpstreamLink, capabilities: Record<string, unknown> | undefined, headers: UpstreamHeaders) {
    const feed = deps.feeds.of(link);
    const place = new StandingCall(capabilities, feed, (id, method) => void link.notify(overCallRefusal(id, method), headers));
    return { place, opened: feed.keepOpenFor(place, headers) };
  }

  /** The upstream's answer back to the 2026-07-28 caller: through MRTR when it may ask, else translated. */
  function relayAnswer(
    call: Call,
    round: Begun | undefined,
    context: AnswerContext,
    link: UpstreamLink,
    headers: UpstreamHeaders,
    answer: Answer,
    standing: StandingCall | undefined,
  ) {
    const { payload } = answer;
    if (round?.kind === 'run' && !Buffer.isBuffer(payload) && isEventStream(answer.response.headers['content-type'])) {
      return mrtr.relay(call, round, context, link, headers, payload, standing);
    }
    // Not an MRTR stream (a JSON answer comes once the tool is done): no question can follow.
    standing?.release();
    const translate = (m: unknown, text?: string) => toModernMessage(m, context, text);
    return relayTranslated(deps, call, link, headers, answer, context, translate, (text) => splicedJsonAnswer(text, context, context));
  }

  async function sessionless(call: Call, parsed: unknown) {
    // Ids are rewritten one message at a time; a batch (2025-03-26 only) needs a session.
    if (Array.isArray(parsed)) throw new ProxyError('SESSION_REQUIRED');
    const { method, id, params } = parsed as { method?: unknown; id?: unknown; params?: Record<string, unknown> };
    if (typeof method !== 'string') throw new ProxyError('SESSION_REQUIRED');
    const headers = toUpstreamHeaders(call.req.headers, undefined);
    const requested = headers[PROTOCOL_VERSION_HEADER];
    const protocolVersion = typeof requested === 'string' ? requested : LEGACY_PROTOCOL_VERSION;
    const link = pool.link({
      credential: binding.of(call.req.headers),
      initParams: initParamsOf({}, PROXY_CLIENT_INFO, protocolVersion),
      protocolVersion,
      logLevel: undefined,
    });
    if (id === undefined) {
      // A notification: nothing comes back for it.
      return relayAsItCame(call, (await sendOn(call, link, outgoing(call, headers, JSON.stringify(parsed), parsed)))!);
    }
    const upstreamId = link.nextRequestId();
    const clientProgressToken = progressTokenOf(params);
    const upstreamProgressToken = clientProgressToken === undefined ? undefined : upstreamId;
    const out = outgoing(call, headers, toLegacyRequest(method, params ?? {}, upstreamId, upstreamProgressToken), parsed);
    const answer = (await sendOn(call, link, out))!;
    const context = { clientId: id as JsonRpcId, upstreamId, clientProgressToken, upstreamProgressToken };
    const translate = (m: unknown, text?: string) => toSessionlessMessage(m, context, text);
    return relayTranslated(deps, call, link, headers, answer, context, translate, (text) => splicedJsonAnswer(text, context, undefined));
  }

  return { modern, sessionless };
}

/** `message`: what `body` holds, as the flow has it (for tracing). */
function outgoing(call: Call, headers: UpstreamHeaders, body: string | undefined, message?: unknown): Outgoing {
  return { headers, body, message, initialized: false, versionFromLink: true, cancel: call.tracked.gone, replayed: undefined };
}

/** A message on a link; the access line says why it waited, if it did (a replay). */
async function sendOn(call: Call, link: UpstreamLink, out: Outgoing): Promise<Answer | undefined> {
  try {
    return await link.send(out);
  } finally {
    call.tracked.replayedFor = out.replayed ?? null;
  }
}

function initParamsOf(capabilities: Record<string, unknown>, clientInfo: object, protocolVersion = LEGACY_PROTOCOL_VERSION): string {
  return JSON.stringify({ protocolVersion, capabilities, clientInfo });
}

function progressTokenOf(params: Record<string, unknown> | undefined): string | number | undefined {
  const token = (params?._meta as { progressToken?: unknown } | undefined)?.progressToken;
  return typeof token === 'string' || typeof token === 'number' ? token : undefined;
}
