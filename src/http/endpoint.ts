/**
 * The MCP endpoint: the whole request flow, top to bottom.
 *
 *   POST initialize  → forward without a session id (openLink) → mint the client's id (random,
 *                      or sealed with the session secret) → keep the session: its identity and
 *                      its UpstreamLink → answer with our id
 *   POST / GET       → look up the client session (not here but sealed: open and check it; its
 *                      link starts unopened) → link.send: ready (replay / initialized first if
 *                      need be) → exchange → lost? replay once (single flight), retry once →
 *                      stream the answer back untouched
 *   DELETE           → forget the session (a sealed id: refuse it here from now on), end its
 *                      link (which tells the upstream), answer 200
 *   OPTIONS          → CORS preflight: the upstream's answer, as is
 *
 * Before any of that, the gate (gate.ts) decides for every method on the MCP path: shutting
 * down (503), Host or Origin not allowed (403), another method (405), or the flow to run. All of
 * it runs on the raw node:http server (app.ts hands every request over before Fastify routes
 * anything): Fastify's per-request machinery alone cost more than the whole proxying
 * (bench/README.md). Every other path is Fastify's.
 * Decisions live in pure modules (mcp/, http/headers.ts, session/ids.ts); the upstream session's
 * life is upstream/link.ts's; this file does the client side's I/O.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { missingCapabilityError, ProxyError, type JsonRpcId } from '../errors.js';
import { classifyEra, isLoggingLevel, isPlainLegacy, routingHeadersOf, type ModernMessage } from '../mcp/era.js';
import { messagesOf } from '../mcp/initialize-result.js';
import { MAX_RESOURCE_SUBSCRIPTIONS } from '../mcp/subscriptions.js';
import { initializeResultOf, legacyClientOf, negotiatedVersion, routingHeadersFor, toLegacyMessage, toModernRequest } from '../mcp/modern-upstream.js';
import { classifyBody, isAuthChallenge, isEventStream, MAX_MESSAGE_BYTES, parseJson, POST_ACCEPT, PROTOCOL_VERSION_HEADER, requestIdsOf, SESSION_HEADER } from '../mcp/protocol.js';
import { INPUT_REQUIRED_METHODS } from '../mcp/input-required.js';
import {
  answerBodyOf,
  discoverResult,
  splicedJsonAnswer,
  toLegacyRequest,
  toModernMessage,
  toSessionlessMessage,
  type AnswerContext,
  type MessageMap,
} from '../mcp/translate.js';
import type { Metrics, SealedIdRejection } from '../observability/metrics.js';
import type { Tracing } from '../observability/tracing.js';
import type { CredentialBinding } from '../session/binding.js';
import { asClientSessionId, isSealedId, mintClientSessionId, type ClientSessionId, type Fingerprint } from '../session/ids.js';
import type { Opened, Sealer } from '../session/sealing.js';
import { newSession, type Session, type SessionStore, type TerminatedIds } from '../session/store.js';
import { discard, readBody, toProxyError, type UpstreamClient, type UpstreamHeaders } from '../upstream/client.js';
import { verdictOf, type EraProbe } from '../upstream/era-probe.js';
import { HeldSession } from '../flows/hosted/hosted-session.js';
import { cancelledRequestIdOf, type InFlightRequest } from '../flows/hosted/in-flight.js';
import { openLink, UpstreamLink, type Answer, type LinkDeps, type Outgoing } from '../upstream/link.js';
import { discoverForHeld } from '../flows/hosted/discover.js';
import { reauthenticate } from '../session/reauthenticate.js';
import type { LinkPool } from '../upstream/pool.js';
import { AnswerWriter } from './answer-writer.js';
import { modernEventStream } from './event-stream.js';
import { deliverClientResponse, heldExchange } from '../flows/hosted/input.js';
import { serveHeldStream } from '../flows/hosted/stream.js';
import type { Mrtr } from '../flows/pooled/mrtr/mrtr.js';
import { toClientHeaders, toTranslatedHeaders, toUpstreamHeaders } from './headers.js';
import { decide, gatePolicyOf, type McpFlow } from './gate.js';
import { acceptsEventStream, type Listens } from '../flows/pooled/listen/listen.js';
import { answerError, errorEvents, relay, type OpenStreams, type RelayOptions } from './reply.js';
import { readJsonBody } from './request-body.js';
import { track, type Tracked, type TrackingDeps } from './tracking.js';

export interface McpEndpointDeps extends TrackingDeps {
  readonly config: Config;
  readonly store: SessionStore;
  /** What every upstream link is built with. */
  readonly links: LinkDeps;
  /** Upstream sessions shared by callers without one (2026-07-28 clients, sessionless callers). */
  readonly pool: LinkPool;
  /** Whether the upstream speaks 2026-07-28 itself. */
  readonly eraProbe: EraProbe;
  readonly fingerprint: Fingerprint;
  readonly binding: CredentialBinding;
  /** Seals new ids and opens ids this process has no session for; undefined without a secret. */
  readonly sealer: Sealer | undefined;
  /** Sealed ids ended by DELETE: refused even though they still open. */
  readonly terminated: TerminatedIds;
  /** Open GET event streams: shutdown ends them, since they would otherwise never finish. */
  readonly openStreams: OpenStreams;
  /** subscriptions/listen of 2026-07-28 clients on legacy upstreams (flows/pooled/listen/listen.ts). */
  readonly listens: Listens;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** 2026-07-28 requests whose legacy upstream asks the client something (input_required). */
  readonly mrtr: Mrtr;
  /** Spans (observability/tracing.ts); when off, nothing here touches it. */
  readonly tracing: Tracing;
  /** True once shutdown has started: new requests are refused (503) so the server can drain. */
  readonly closing: () => boolean;
}

/** One request on its way through the flow. */
interface Call {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly tracked: Tracked;
}


export interface McpEndpoint {
  /** Answer the request if it is for the MCP path, whatever its method; false: it is Fastify's. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
}

export function createMcpEndpoint(deps: McpEndpointDeps): McpEndpoint {
  const { config, store, links, pool, eraProbe, fingerprint, binding, sealer, terminated, openStreams, metrics, log, mrtr, tracing } = deps;
  const policy = gatePolicyOf(config);
  const flows: Record<McpFlow, (call: Call) => Promise<void>> = {
    POST: post,
    GET: get,
    DELETE: del,
    OPTIONS: (call) => preflight(call, links.upstream),
  };

  return {
    handle(req, res) {
      const { headers } = req;
      const decision = decide(policy, req.method!, req.url!, headers.host, headers.origin, deps.closing());
      if (decision.kind === 'pass') return false;
      const call: Call = { req, res, tracked: track(req, res, deps) };
      if (decision.kind === 'refuse') {
        if (decision.reason === 'SHUTTING_DOWN') res.setHeader('connection', 'close');
        answerError(req, res, call.tracked, new ProxyError(decision.reason), log);
        return true;
      }
      // A POST's server span starts once its body is read: its _meta may carry the caller's context.
      const flow = tracing.on && decision.flow !== 'POST' ? tracing.serve(req, res, call.tracked, undefined, () => flows[decision.flow](call)) : flows[decision.flow](call);
      flow.catch((error: unknown) => answerError(req, res, call.tracked, error, log));
      return true;
    },
  };

  async function post(call: Call) {
    const raw = await readJsonBody(call.req, config.bodyLimitBytes, config.bodyTimeoutMs);
    const parsed = parseJson(raw);
    if (tracing.on) return tracing.serve(call.req, call.res, call.tracked, parsed, () => dispatch(call, raw, parsed));
    // `return await`: an async function that returns a promise unawaited resolves it in two more
    // turns of the microtask queue; this is every POST's path.
    return await dispatch(call, raw, parsed);
  }

  /** A POST, its body read: which flow it takes. */
  async function dispatch(call: Call, raw: Buffer, parsed: unknown) {
    // 2026-07-28 or 2025: decided per request, from the body first (as the v2 SDK server does).
    if (!isPlainLegacy(parsed, call.req.headers[PROTOCOL_VERSION_HEADER])) {
      const era = classifyEra(parsed, routingHeadersOf(call.req.headers));
      if (era.era === 'refused') {
        const { refusal } = era;
        call.tracked.requestId = refusal.id;
        throw new ProxyError(refusal.reason, { detail: { message: refusal.message, data: refusal.data } });
      }
      if (era.era === 'modern') return modern(call, raw, era.message);
    }

    const message = classifyBody(parsed);
    // Any error from here on answers this request's id.
    call.tracked.requestId = message.id;
    if (message.kind === 'invalid') throw new ProxyError(message.reason);

    const presented = call.req.headers[SESSION_HEADER];
    if (message.kind === 'initialize') {
      // Replacing a live session silently would strand its other users; a new one needs no id.
      if (presented !== undefined) throw new ProxyError('INITIALIZE_WITH_SESSION');
      return startSession(call, raw, message.id, message.params);
    }
    // A 2025-style caller without a session (raw HTTP users): a pooled session, unless refused.
    if (presented === undefined && config.sessionless === 'pool') return sessionless(call, parsed);
    const session = await sessionFor(call, presented);
    if (session.link instanceof HeldSession) return held(call, session.link, parsed);
    return forward(call, session, session.link, raw, message.kind === 'initialized');
  }

  /**
   * A message on a session the proxy holds in front of a 2026-07-28-only upstream: answered here
   * (the handshake, ping, the log level), or sent on as a stateless 2026-07-28 request carrying the
   * session in its envelope, its answer translated back event by event.
   */
  async function held(call: Call, session: HeldSession, parsed: unknown) {
    if (Array.isArray(parsed)) throw new ProxyError('HELD_BATCH');
    const { id, method, params } = parsed as { id?: JsonRpcId; method?: unknown; params?: Record<string, unknown> };
    // A response to a question of an input_required exchange (flows/hosted/input.ts) goes to it; a
    // cancellation to the request it names, if in flight here (else it is ignored, as the spec
    // allows); other notifications (initialized, roots changed) and responses: nothing takes them.
    if (typeof method !== 'string' || id === undefined) {
      if (typeof method !== 'string') deliverClientResponse(session, parsed);
      else if (method === 'notifications/cancelled') cancelHeld(session, params);
      return void call.res.writeHead(202).end();
    }
    if (method === 'ping') return answerJson(call.res, 200, { jsonrpc: '2.0', id, result: {} });
    if (method === 'logging/setLevel') {
      const level = params?.level;
      if (!isLoggingLevel(level)) {
        return answerJson(call.res, 200, { jsonrpc: '2.0', id, error: { code: -32602, message: 'Invalid params: level must be a logging level' } });
      }
      session.logLevel = level;
      return answerJson(call.res, 200, { jsonrpc: '2.0', id, result: {} });
    }
    // 2026-07-28 removed them: kept on the session, carried upstream by the GET stream's listen.
    if (method === 'resources/subscribe' || method === 'resources/unsubscribe') {
      const uri = params?.uri;
      if (typeof uri !== 'string') return answerJson(call.res, 200, { jsonrpc: '2.0', id, error: { code: -32602, message: 'Invalid params: uri must be a string' } });
      if (method === 'resources/subscribe' && session.subscriptions.size >= MAX_RESOURCE_SUBSCRIPTIONS && !session.subscriptions.has(uri)) {
        return answerJson(call.res, 200, { jsonrpc: '2.0', id, error: { code: -32602, message: `Invalid params: at most ${MAX_RESOURCE_SUBSCRIPTIONS} subscriptions per session` } });
      }
      await session.subscribe(uri, method === 'resources/subscribe');
      return answerJson(call.res, 200, { jsonrpc: '2.0', id, result: {} });
    }
    // In flight until its answer is over: a notifications/cancelled naming its id aborts it.
    const { request, end } = session.inFlight.begin(id, call.tracked.gone);
    // Gone already (the client left while its body was read): no 'close' is coming to end it.
    if (call.res.closed) end();
    else call.res.once('close', end);
    try {
      await heldRequest(call, session, request, id, method, params);
    } catch (error) {
      // The upstream call was aborted by the cancellation: not a failure to answer.
      if (!request.cancelled) throw error;
    }
    if (request.cancelled) endCancelled(call);
  }

  /** A held request sent on upstream; `request.signal` aborts it (the client left or cancelled it). */
  async function heldRequest(call: Call, session: HeldSession, request: InFlightRequest, id: JsonRpcId, method: string, params: Record<string, unknown> | undefined) {
    const { signal } = request;
    const headers = toUpstreamHeaders(call.req.headers, undefined);
    Object.assign(headers, routingHeadersFor(method, params));
    // Mcp-Param-* headers for tools that declare them (learnt from tools/list answers on this session).
    if (method === 'tools/call') Object.assign(headers, session.paramHeadersFor(params?.name, params?.arguments));
    if (INPUT_REQUIRED_METHODS.has(method)) {
      const heldCall = { res: call.res, gone: signal, acceptsEventStream: acceptsEventStream(call.req.headers.accept) };
      return heldExchange({ upstream: links.upstream, timeoutMs: config.heldInputTimeoutMs, metrics, log }, heldCall, session, { id, method, params, headers });
    }
    const body = toModernRequest(id, method, params, session.client, session.logLevel);
    const response = await links.upstream.request({ method: 'POST', headers, body, signal });
    // Refused unprocessed (expired token, missing scope): as it came, whatever its body says.
    if (isAuthChallenge(response.statusCode)) return relayAsItCame(call, { response, payload: response.body });
    const map: MessageMap =
      method === 'tools/list'
        ? (message) => {
            session.learnTools((message as { result?: unknown }).result);
            return toLegacyMessage(message, method);
          }
        : (message) => toLegacyMessage(message, method);
    if (isEventStream(response.headers['content-type'])) {
      call.res.writeHead(response.statusCode, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      metrics.streamOpened();
      call.res.once('close', () => metrics.streamClosed());
      const events = modernEventStream(map, () => undefined);
      // A broken upstream, or an event the translation cannot take: an error event for the request.
      // Cancelled (the upstream body destroyed by the abort): the stream just ends, no response.
      const cut = () => {
        if (call.res.writableEnded) return;
        if (!request.cancelled) return void call.res.end(errorEvents('UPSTREAM_CUT', [id]));
        events.unpipe(call.res);
        endCancelled(call);
      };
      response.body.once('error', cut);
      events.once('error', () => {
        discard(response.body);
        cut();
      });
      response.body.pipe(events).pipe(call.res);
      return;
    }
    const answer = await readBody(response.body, MAX_MESSAGE_BYTES, 'UPSTREAM_UNAVAILABLE', signal);
    const contentType = response.headers['content-type'];
    const text = answerBodyOf(answer.toString(), typeof contentType === 'string' ? contentType : undefined, map, () => undefined);
    // A JSON-RPC answer to the request goes back as a 2025 server sends one: 200, whatever status a
    // 2026 server gives its errors; anything else (auth, gateway errors) as it came.
    if (text === undefined) return relay(call.res, response.statusCode, toClientHeaders(response.headers, undefined), answer);
    call.res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
    call.res.end(text);
  }

  /** A 2025 client's notifications/cancelled on a held session: the request it names is aborted upstream. */
  function cancelHeld(session: HeldSession, params: Record<string, unknown> | undefined) {
    const requestId = cancelledRequestIdOf(params);
    if (requestId !== undefined && session.inFlight.cancel(requestId)) log.debug({ link: session.label }, 'held request cancelled by the client: its upstream request is aborted');
  }

  /**
   * The answer to a request the client cancelled ends without a response (2025-11-25: the
   * receiver SHOULD NOT send one; the v1 SDK client has already given up on it). Not begun yet:
   * an SSE answer with no event, which the SDK clients read to its end without complaint (no
   * event id, so no reconnection); a client that cannot take SSE gets the bodyless 202.
   */
  function endCancelled(call: Call) {
    const { res } = call;
    if (res.writableEnded || res.destroyed) return;
    if (res.headersSent) return void res.end();
    if (!acceptsEventStream(call.req.headers.accept)) return void res.writeHead(202).end();
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.end();
  }

  /**
   * A 2026-07-28 request. A modern upstream gets it untouched. A legacy one gets it on a pooled
   * upstream session of the caller's key, translated both ways: the request without the 2026
   * envelope and with an id (and progress token) unique on that shared session; the answer, event
   * by event, back in 2026 form. server/discover is answered here, from the upstream's
   * InitializeResult.
   */
  async function modern(call: Call, raw: Buffer, message: ModernMessage) {
    // 2026-07-28 clients send no notifications over HTTP; a cancellation would name one of the
    // client's own ids, which mean nothing upstream.
    if (message.kind === 'notification') return void call.res.writeHead(202).end();
    call.tracked.requestId = message.id;
    // Known after the first request: then no await (each costs a turn of the microtask queue).
    const known = eraProbe.known();
    if (known !== 'legacy') {
      const asSent = toUpstreamHeaders(call.req.headers, undefined);
      if ((known ?? (await eraProbe.era(asSent))) === 'modern') return passThrough(call, asSent, raw);
    }
    const headers = toTranslatedHeaders(call.req.headers);
    const { envelope, method, params } = message;
    const entry = {
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
    // A long-lived stream on the upstream session's shared GET stream (flows/pooled/listen/listen.ts).
    if (method === 'subscriptions/listen') {
      return deps.listens.serve(call.req, call.res, call.tracked, {
        id: message.id,
        params,
        link,
        headers,
        describe: () => link.describe(outgoing(call, headers, undefined)),
        touch: () => pool.touch(entry),
      });
    }
    const clientProgressToken = progressTokenOf(params);
    // MRTR (flows/pooled/mrtr/mrtr.ts): a retry may continue a parked upstream exchange; a run of these
    // methods may be asked questions, which become input_required.
    const round = INPUT_REQUIRED_METHODS.has(method) ? mrtr.begin(call, method, params) : undefined;
    // A retry carrying answers (an MRTR round after the first): continued, or re-run.
    if (tracing.on && round !== undefined && (params?.requestState !== undefined || params?.inputResponses !== undefined)) {
      tracing.mark('mrtr round', { 'mcp.method.name': method, 'mcp_session_proxy.mrtr.round': round.kind === 'resume' ? 'resume' : 'rerun' });
    }
    if (round?.kind === 'resume') {
      const { logLevel, clientCapabilities } = envelope;
      return mrtr.resume(call, round, { method, clientId: message.id, clientProgressToken, logLevel, serverInfo: link.serverInfo, clientCapabilities }, headers);
    }
    const upstreamId = link.nextRequestId();
    const upstreamProgressToken = clientProgressToken === undefined ? undefined : upstreamId;
    const out = outgoing(call, headers, toLegacyRequest(method, round?.params ?? params, upstreamId, upstreamProgressToken));
    let answer: Answer;
    try {
      answer = (await link.send(out))!;
    } catch (error) {
      // No upstream: when it comes back it may be another version; find out again.
      if (toProxyError(error).reason === 'UPSTREAM_UNAVAILABLE') eraProbe.forget();
      throw error;
    } finally {
      // What sendOn does, inline: this is the hot path of every modern request.
      call.tracked.replayedFor = out.replayed ?? null;
    }
    if (refusedAsModernOnly(answer)) {
      // The upstream was replaced by a 2026-07-28-only server (same address): it refused the
      // translation unprocessed. Find out again, and send the request as the client sent it.
      eraProbe.forget();
      const asSent = toUpstreamHeaders(call.req.headers, undefined);
      if ((await eraProbe.era(asSent)) === 'modern') return passThrough(call, asSent, raw);
    }
    const context: AnswerContext = {
      method,
      clientId: message.id,
      upstreamId,
      clientProgressToken,
      upstreamProgressToken,
      logLevel: envelope.logLevel,
      serverInfo: link.serverInfo,
      clientCapabilities: envelope.clientCapabilities,
    };
    if (round !== undefined && !Buffer.isBuffer(answer.payload) && isEventStream(answer.response.headers['content-type'])) {
      return mrtr.relay(call, round, context, link, headers, answer.payload);
    }
    return relayTranslated(call, link, headers, answer, context, (m, text) => toModernMessage(m, context, text), (text) => splicedJsonAnswer(text, context, context));
  }

  /** A 2025-style request without a session id, on a pooled session: only its ids are rewritten. */
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
      const answer = (await sendOn(call, link, outgoing(call, headers, JSON.stringify(parsed))))!;
      return relay(call.res, answer.response.statusCode, toClientHeaders(answer.response.headers, undefined), answer.payload);
    }
    const upstreamId = link.nextRequestId();
    const clientProgressToken = progressTokenOf(params);
    const upstreamProgressToken = clientProgressToken === undefined ? undefined : upstreamId;
    const out = outgoing(call, headers, toLegacyRequest(method, params ?? {}, upstreamId, upstreamProgressToken));
    const answer = (await sendOn(call, link, out))!;
    const context = { clientId: id as JsonRpcId, upstreamId, clientProgressToken, upstreamProgressToken };
    return relayTranslated(call, link, headers, answer, context, (m, text) => toSessionlessMessage(m, context, text), (text) => splicedJsonAnswer(text, context, undefined));
  }

  function outgoing(call: Call, headers: UpstreamHeaders, body: string | undefined): Outgoing {
    return { headers, body, initialized: false, versionFromLink: true, cancel: call.tracked.gone, replayed: undefined };
  }

  /**
   * A message on a link; the access line says why it waited, if it did (a replay). Undefined only
   * for a client's own notifications/initialized, which pooled callers never send.
   */
  async function sendOn(call: Call, link: UpstreamLink, out: Outgoing): Promise<Answer | undefined> {
    try {
      return await link.send(out);
    } finally {
      call.tracked.replayedFor = out.replayed ?? null;
    }
  }

  /**
   * An upstream answer to a rewritten request, translated message by message: SSE event by event
   * as it streams (never buffered), a JSON answer whole. Server requests no caller can take are
   * refused to the upstream. A client that leaves before its answer cancels the request upstream
   * (for 2026-07-28 clients, closing the stream is the cancellation).
   */
  async function relayTranslated(
    call: Call,
    link: UpstreamLink,
    headers: UpstreamHeaders,
    answer: Answer,
    context: { readonly clientId: JsonRpcId; readonly upstreamId: string },
    translate: MessageMap,
    /** The common JSON answer rewritten on its text alone (splicedJsonAnswer), or undefined. */
    splice: (text: string) => string | undefined,
  ) {
    const { res } = call;
    const { response, payload } = answer;
    // The upstream refused the request unprocessed (expired token, missing scope): its answer goes
    // back as it came, the pooled upstream session stays as it was.
    if (isAuthChallenge(response.statusCode)) return relayAsItCame(call, answer);
    let answered = false;
    const map: MessageMap = (message, text) => {
      const translated = translate(message, text);
      if (translated.kind === 'answer') answered = true;
      else if (translated.kind === 'forward' && translated.message.id === context.clientId && !('method' in translated.message)) answered = true;
      return translated;
    };
    // The client leaving before its answer (tracking's one 'close' listener cancels `gone`).
    call.tracked.gone.once('abort', () => {
      if (!answered) void link.notify(cancellation(context.upstreamId), headers);
    });
    const refuse = (id: JsonRpcId, method: string) => void link.notify(serverRequestRefusal(id, method), headers);
    if (!Buffer.isBuffer(payload) && isEventStream(response.headers['content-type'])) {
      // The head goes out with the first event (implicitly, on the first write): until then the
      // answer can still become a refusal with its own status, as a v2 server's answer becomes a
      // stream only once there is something to stream.
      const writer = new AnswerWriter(res, metrics, response.statusCode);
      writer.open();
      const events = modernEventStream(map, (id, method, missingCapability) => {
        refuse(id, method);
        if (missingCapability !== undefined) missingOnStream(missingCapability);
      });
      // An upstream that breaks off mid-stream, or sends an event the translation cannot take
      // (JSON nested deeper than the stack, say): the client's request gets a JSON-RPC error event.
      const cut = () => {
        if (!answered && !res.writableEnded) res.write(errorEvents('UPSTREAM_CUT', [context.clientId]));
        res.end();
      };
      payload.once('error', cut);
      events.once('error', () => {
        discard(payload);
        cut();
      });
      payload.pipe(events).pipe(res);
      // The upstream asked for a capability the client did not declare: the client's request
      // fails with -32021 (400 while nothing was streamed yet, else an error event), and the
      // upstream's request is cancelled.
      const missingOnStream = (capability: string) => {
        if (answered) return;
        answered = true;
        void link.notify(cancellation(context.upstreamId), headers);
        payload.unpipe(events);
        events.unpipe(res);
        discard(payload);
        const error = missingCapabilityError(capability);
        writer.fail(error, context.clientId, () => answerError(call.req, res, call.tracked, error, log));
      };
      return;
    }
    const body = Buffer.isBuffer(payload) ? payload : await readBody(payload, MAX_MESSAGE_BYTES, 'UPSTREAM_UNAVAILABLE', call.tracked.gone);
    const contentType = typeof response.headers['content-type'] === 'string' ? response.headers['content-type'] : undefined;
    const bodyText = body.toString();
    let missing: string | undefined;
    const text =
      (isEventStream(contentType) ? undefined : splice(bodyText)) ??
      answerBodyOf(bodyText, contentType, map, (id, method, missingCapability) => {
        refuse(id, method);
        missing ??= missingCapability;
      });
    if (missing !== undefined) {
      // Answered upstream already (refused): nothing to cancel.
      answered = true;
      throw missingCapabilityError(missing);
    }
    if (text === undefined) {
      // Not a JSON-RPC answer, and no success either (a gateway's 429 or 503, an HTML error
      // page): the client sees what the upstream said, as from the upstream directly.
      if (response.statusCode >= 300) return relayAsItCame(call, { response, payload: body });
      // A success with nothing for this request (202, an empty body): the upstream never answered.
      throw new ProxyError('UPSTREAM_BAD_ANSWER', { detail: { upstreamStatus: response.statusCode } });
    }
    answered = true;
    res.writeHead(response.statusCode, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
    res.end(text);
  }

  /** A modern request for a modern upstream: as it came, the answer as it goes. */
  async function passThrough(call: Call, headers: UpstreamHeaders, raw: Buffer) {
    let response;
    try {
      response = await links.upstream.request({ method: 'POST', headers, body: raw, signal: call.tracked.gone });
    } catch (error) {
      // No upstream: when it comes back it may be another version; find out again.
      eraProbe.forget();
      throw error;
    }
    // A modern upstream refuses no valid modern request with 400, unless it is modern no more.
    if (response.statusCode === 400) eraProbe.forget();
    relay(call.res, response.statusCode, toClientHeaders(response.headers, undefined), response.body, { metrics });
  }

  async function get(call: Call) {
    const session = await sessionFor(call, call.req.headers[SESSION_HEADER]);
    if (session.link instanceof HeldSession) {
      if (deps.closing()) throw new ProxyError('SHUTTING_DOWN');
      const streamDeps = { upstream: links.upstream, log, metrics, openStreams, keepAliveMs: config.listenKeepAliveMs };
      return serveHeldStream(streamDeps, call.req, call.res, session.link, session.id);
    }
    return forward(call, session, session.link, undefined, false);
  }

  async function del(call: Call) {
    // Only with the credentials the session runs under: a DELETE never re-authenticates it.
    const session = await sessionFor(call, call.req.headers[SESSION_HEADER], 'end');
    store.delete(session.id);
    // A sealed id would still open: refuse it here until it is too old anyway. Other replicas
    // do not learn of it (README: "Sessions across restarts and replicas").
    if (session.nonce !== undefined) terminated.add(session.nonce, session.expiresAt);
    log.info({ sid: session.logId }, 'session deleted by client');
    // A held session's requests in flight end with it, as a legacy server ends the requests of a
    // session it terminates (their answers end without a response: the client gave them up).
    if (session.link instanceof HeldSession) session.link.inFlight.cancelAll();
    // Ended at once (a replay racing this DELETE cannot bring it back); the upstream may not
    // support DELETE (405) or may have lost the session already: either way it is over.
    await session.link.end(toUpstreamHeaders(call.req.headers, undefined));
    call.res.writeHead(200).end();
  }

  /**
   * The session named by the client's header: in memory (the hot path: nothing asynchronous), or
   * reopened from a sealed id. Unknown or malformed ids get 404, as the spec says. `purpose`
   * 'end' (a DELETE) takes only the credentials the session runs under: ending a session never
   * re-authenticates it, so a stolen id with a token of its own cannot end its owner's session.
   */
  function sessionFor(call: Call, presented: string | string[] | undefined, purpose: SessionUse = 'use'): Session | Promise<Session> {
    if (presented === undefined) throw new ProxyError('SESSION_REQUIRED');
    const id = typeof presented === 'string' ? asClientSessionId(presented) : undefined;
    if (id === undefined) throw new ProxyError('SESSION_NOT_FOUND');
    const session = store.get(id);
    if (session !== undefined) return admit(call, session, purpose);
    return tracing.on ? tracing.step('sealed id reopen', {}, () => reopen(call, id, purpose)) : reopen(call, id, purpose);
  }

  /** The checks every use of a session passes, however it was found. */
  function admit(call: Call, session: Session, purpose: SessionUse): Session | Promise<Session> {
    const { headers } = call.req;
    const sameCredentials = binding.matches(session.credential, headers);
    // Other credentials than at initialize, unless another opaque token of the same identity (a
    // refresh, which re-authenticates the session below): answer exactly as for an unknown id.
    const refreshed = !sameCredentials && purpose === 'use' && session.identity !== undefined && binding.identityMatches(session.identity, headers);
    if (!sameCredentials && !refreshed) throw new ProxyError('SESSION_NOT_FOUND');
    if (session.expiresAt <= Date.now()) {
      // A sealed id past its age limit would be refused by every other replica: refuse it here too.
      store.delete(session.id, 'max_age');
      throw new ProxyError('SESSION_NOT_FOUND');
    }
    call.tracked.sessionLogId = session.logId;
    if (sameCredentials) return session;
    return reauthenticate({ links, metrics, log }, session, headers, binding.of(headers)).then(() => session);
  }

  /**
   * A sealed id this process has no session for (it restarted, or another replica made it):
   * open it, check it, and take the session in. Its link starts unopened: the first message
   * replays initialize. Any failed check answers exactly as an unknown id does.
   */
  async function reopen(call: Call, id: ClientSessionId, purpose: SessionUse): Promise<Session> {
    if (sealer === undefined || !isSealedId(id)) throw new ProxyError('SESSION_NOT_FOUND');
    const opened = await sealer.open(id);
    const refused = opened.ok ? refusalOf(opened.session, call.req.headers, purpose) : opened.reason;
    if (!opened.ok || refused !== undefined) {
      metrics.sealedIdRejected(refused!);
      log.debug({ reason: refused }, 'sealed session id refused');
      throw new ProxyError('SESSION_NOT_FOUND');
    }
    // Another request with this id may have taken it in while this one was decrypting.
    const known = store.get(id);
    if (known !== undefined) return admit(call, known, purpose);
    const { session: state } = opened;
    const session = newSession({
      id,
      logId: fingerprint(id),
      // The caller's credentials matched the sealed digest; this process compares with its current key.
      credential: binding.of(call.req.headers),
      identity: binding.identityOf(call.req.headers),
      nonce: state.nonce,
      expiresAt: state.issuedAtMs + config.sessionMaxAgeMs,
      link:
        (await eraProbe.era(toUpstreamHeaders(call.req.headers, undefined))) === 'modern'
          ? new HeldSession(legacyClientOf(parseJson(state.initParams)), state.protocolVersion)
          : new UpstreamLink(links, state.initParams, { kind: 'reopened', protocolVersion: state.protocolVersion }),
    });
    store.add(session);
    metrics.sessionReopened();
    log.info({ sid: session.logId, link: session.link.label }, 'session reopened from its sealed id');
    return admit(call, session, purpose);
  }

  function refusalOf(opened: Opened, headers: IncomingHttpHeaders, purpose: SessionUse): SealedIdRejection | undefined {
    if (terminated.has(opened.nonce)) return 'terminated';
    // A sealed id carries the identity digest when the credentials were an opaque token (any token
    // of that identity reopens it, under its own upstream session; never to end it: the token it
    // runs under is not known here), else the credential digest.
    const { binding: sealedWith, credential } = opened;
    const byIdentity = purpose === 'use' && credential !== undefined && sealedWith.identityMatches(credential, headers);
    const admitted = sealedWith.matches(credential, headers) || byIdentity;
    if (!admitted) return 'credentials';
    return undefined;
  }

  async function startSession(call: Call, raw: Buffer, requestId: JsonRpcId, params: object) {
    const { req, res, tracked } = call;
    // In front of a 2026-07-28-only upstream the proxy holds the session itself.
    if (eraProbe.known() === 'modern') return startHeldSession(call, requestId, params);
    const initParams = JSON.stringify(params);
    const { initialized, link } = await openLink(links, {
      initParams,
      headers: toUpstreamHeaders(req.headers, undefined),
      body: raw,
      requestId,
      cancel: tracked.gone,
    });
    if (link === undefined) {
      // Refused as 2025-era by a 2026-07-28-only server: find out for sure (once), then hold it.
      if (refusedAsModernOnly({ response: initialized.response, payload: initialized.body })) {
        eraProbe.forget();
        if ((await eraProbe.era(toUpstreamHeaders(req.headers, undefined))) === 'modern') return startHeldSession(call, requestId, params);
      }
      // The upstream refused (unsupported version, auth, ...): its answer goes back as is, no session.
      return relay(res, initialized.response.statusCode, toClientHeaders(initialized.response.headers, undefined), initialized.body);
    }
    const session = await admitNew(call, params, initParams, link.protocolVersion, link);
    const upstreamId = initialized.kind === 'accepted' ? initialized.upstreamId : undefined;
    log.info({ sid: session.logId, link: link.label, upstream: upstreamId === undefined ? null : fingerprint(upstreamId) }, 'session created');
    return relay(res, initialized.response.statusCode, toClientHeaders(initialized.response.headers, session.id), initialized.body);
  }

  /**
   * A legacy client's initialize in front of a 2026-07-28-only upstream: answered from the
   * upstream's server/discover (asked with the client's credentials, capabilities and clientInfo),
   * with a session the proxy holds.
   */
  async function startHeldSession(call: Call, requestId: JsonRpcId, params: object) {
    const client = legacyClientOf(params);
    const discovered = await discoverForHeld(links.upstream, call.req.headers, client, requestId, call.tracked.gone);
    if (discovered.kind === 'refused') {
      const { response, body } = discovered;
      // Not a 2026-07-28 answer, unless it is an auth challenge: the upstream may have been rolled
      // back to a legacy server; the next initialize finds out again (the era is probed anew).
      if (!isAuthChallenge(response.statusCode)) eraProbe.forget();
      // Auth challenges, errors: the client sees the upstream's own answer, and no session is made.
      return relay(call.res, response.statusCode, toClientHeaders(response.headers, undefined), body);
    }
    const protocolVersion = negotiatedVersion((params as { protocolVersion?: unknown }).protocolVersion);
    const heldSession = new HeldSession(client, protocolVersion);
    const session = await admitNew(call, params, JSON.stringify(params), protocolVersion, heldSession);
    log.info({ sid: session.logId, link: heldSession.label }, 'session created (held: the upstream speaks 2026-07-28 only)');
    const text = JSON.stringify({ jsonrpc: '2.0', id: requestId, result: initializeResultOf(discovered.result, protocolVersion) });
    call.res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), [SESSION_HEADER]: session.id });
    call.res.end(text);
  }

  /** A new client session: its id minted (or sealed), kept, counted. */
  async function admitNew(call: Call, params: object, initParams: string, protocolVersion: string, link: UpstreamLink | HeldSession): Promise<Session> {
    const credential = binding.of(call.req.headers);
    const identity = binding.identityOf(call.req.headers);
    // Sealed: the identity when the credentials are an opaque token, so that a refreshed one reopens it.
    const sealed = await sealer?.seal({ params, protocolVersion, credential: identity ?? credential });
    const id = sealed?.id ?? mintClientSessionId();
    const session = newSession({
      id,
      logId: fingerprint(id),
      credential,
      identity,
      nonce: sealed?.nonce,
      expiresAt: sealed === undefined ? Infinity : sealed.issuedAtMs + config.sessionMaxAgeMs,
      link,
    });
    if (sealer !== undefined && sealed === undefined) {
      log.warn({ sid: session.logId, paramsBytes: initParams.length }, 'initialize params too large to seal; this session lives in this process only');
    }
    store.add(session);
    metrics.sessionCreated();
    call.tracked.sessionLogId = session.logId;
    return session;
  }

  /** One message (or the GET stream) on the session's upstream link, its answer streamed back. */
  async function forward(call: Call, session: Session, link: UpstreamLink, body: Buffer | undefined, initialized: boolean) {
    const out: Outgoing = {
      headers: toUpstreamHeaders(call.req.headers, undefined),
      body,
      initialized,
      versionFromLink: false,
      cancel: call.tracked.gone,
      replayed: undefined,
    };
    const answer = await sendOn(call, link, out);
    // The client's notifications/initialized, when the upstream session had one already.
    if (answer === undefined) return void call.res.writeHead(202).end();
    const { response, payload } = answer;
    if (body === undefined && deps.closing()) {
      // A GET stream opening after shutdown began would never be ended: refuse it instead.
      if (!Buffer.isBuffer(payload)) discard(payload);
      throw new ProxyError('SHUTTING_DOWN');
    }
    const options: RelayOptions =
      body === undefined
        ? { streams: openStreams, metrics }
        : // A cut SSE answer: every request of this POST still waiting gets a JSON-RPC error.
          { cutEvents: () => errorEvents('UPSTREAM_CUT', requestIdsOf(parseJson(body))), metrics };
    relay(call.res, response.statusCode, toClientHeaders(response.headers, session.id), payload, options);
  }
}

/** What a session is looked up for: any use, or ending it (a DELETE), which never re-authenticates it. */
type SessionUse = 'use' | 'end';

/** What the proxy asks of a legacy upstream for callers that did not initialize themselves. */
const LEGACY_PROTOCOL_VERSION = '2025-11-25';
/** clientInfo for sessionless callers, which declare none. */
const PROXY_CLIENT_INFO = { name: 'mcp-session-proxy', version: 'sessionless' };

function initParamsOf(capabilities: Record<string, unknown>, clientInfo: object, protocolVersion = LEGACY_PROTOCOL_VERSION): string {
  return JSON.stringify({ protocolVersion, capabilities, clientInfo });
}

function progressTokenOf(params: Record<string, unknown> | undefined): string | number | undefined {
  const token = (params?._meta as { progressToken?: unknown } | undefined)?.progressToken;
  return typeof token === 'string' || typeof token === 'number' ? token : undefined;
}

function cancellation(upstreamId: string): string {
  return JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: upstreamId, reason: 'The client closed the request' } });
}

/**
 * A 400 -32022 naming 2026-07-28 among the supported versions: what a modern-only server (the v2
 * SDK's `legacy: 'reject'`) answers a 2025-era request. (400 answers are read whole by the link.)
 */
function refusedAsModernOnly(answer: Answer): boolean {
  const { response, payload } = answer;
  if (response.statusCode !== 400 || !Buffer.isBuffer(payload)) return false;
  return verdictOf(response.statusCode, payload.toString(), response.headers['content-type']) === 'modern';
}

/** The answer to a server request that no caller can take (no session to answer on, or a 2026 client). */
function serverRequestRefusal(id: JsonRpcId, method: string): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    id,
    error: { code: -32601, message: `${method} is not available: the client reaches this server through mcp-session-proxy without a session` },
  });
}

function answerJson(res: ServerResponse, status: number, message: object): void {
  const text = JSON.stringify(message);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

/** A browser's CORS preflight before a cross-origin POST: the upstream decides CORS. */
async function preflight(call: Call, upstream: UpstreamClient) {
  const response = await upstream.request({
    method: 'OPTIONS',
    headers: toUpstreamHeaders(call.req.headers, undefined),
    signal: call.tracked.gone,
  });
  relay(call.res, response.statusCode, toClientHeaders(response.headers, undefined), response.body);
}

/** An upstream answer relayed untouched but for the session header and hop-by-hop headers. */
function relayAsItCame(call: Call, answer: Answer): void {
  relay(call.res, answer.response.statusCode, toClientHeaders(answer.response.headers, undefined), answer.payload);
}
