/**
 * The MCP endpoint: a dispatcher. Every request on the MCP path goes
 *
 *   gate (gate.ts) → body (POST: request-body.ts) → which flow (flows/era-matrix.ts) → the flow
 *
 * The gate decides for every method: shutting down (503), Host or Origin not allowed (403),
 * another method (405), or the method's handling. The flows (src/flows/) do the rest: relayed
 * (a 2025 session on a legacy upstream), pooled (a 2026-07-28 or sessionless caller on a legacy
 * upstream), hosted (a 2025 session in front of a 2026-07-28-only upstream), pass-through.
 * A request on a session goes to the flow of the session's backend; client sessions are found
 * and created by session/client-sessions.ts.
 *
 * All of it runs on the raw node:http server (app.ts hands every request on the MCP path over
 * before Fastify routes anything): Fastify's per-request machinery alone cost more than the whole
 * proxying (bench/README.md). Every other path is Fastify's.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { ProxyError, type JsonRpcId } from '../errors.js';
import { flowFor, type Caller, type EraChanged, type Flow } from '../flows/era-matrix.js';
import type { HostedFlow } from '../flows/hosted/hosted.js';
import { passThrough, preflight, type PassThroughDeps } from '../flows/pass-through.js';
import type { PooledFlow } from '../flows/pooled/pooled.js';
import type { RelayedFlow } from '../flows/relayed/relayed.js';
import { classifyEra, isPlainLegacy, routingHeadersOf, type ModernMessage } from '../mcp/era.js';
import { classifyBody, parseJson, PROTOCOL_VERSION_HEADER, SESSION_HEADER } from '../mcp/protocol.js';
import type { Tracing } from '../observability/tracing.js';
import type { ClientSessions } from '../session/client-sessions.js';
import type { EraProbe } from '../upstream/era-probe.js';
import { accepted, type Call } from './call.js';
import { decide, gatePolicyOf, type McpFlow } from './gate.js';
import { toUpstreamHeaders } from './headers.js';
import { answerError } from './reply.js';
import { bodyLimitsOf, readJsonBody } from './request-body.js';
import { track, type TrackingDeps } from './tracking.js';

export interface McpEndpointDeps extends TrackingDeps {
  readonly config: Pick<
    Config,
    | 'mcpPath'
    | 'host'
    | 'allowedHosts'
    | 'allowedOrigins'
    | 'bodyLimitBytes'
    | 'bodyTimeoutMs'
    | 'bodyAllowanceMs'
    | 'bodyMinRateBytesPerS'
    | 'sessionless'
  >;
  readonly flows: {
    readonly relayed: RelayedFlow;
    readonly pooled: PooledFlow;
    readonly hosted: HostedFlow;
    readonly passThrough: PassThroughDeps;
  };
  readonly sessions: ClientSessions;
  /** Whether the upstream speaks 2026-07-28 itself. */
  readonly eraProbe: EraProbe;
  /** Spans (observability/tracing.ts); when off, nothing here touches it. */
  readonly tracing: Tracing;
  readonly log: Logger;
  /** True once shutdown has started: new requests are refused (503) so the server can drain. */
  readonly closing: () => boolean;
}

export interface McpEndpoint {
  /** Answer the request if it is for the MCP path, whatever its method; false: it is Fastify's. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
}

export function createMcpEndpoint(deps: McpEndpointDeps): McpEndpoint {
  const { config, flows, sessions, eraProbe, tracing, log } = deps;
  const { relayed, pooled, hosted } = flows;
  const policy = gatePolicyOf(config);
  const bodyLimits = bodyLimitsOf(config);
  const methods: Record<McpFlow, (call: Call) => Promise<void>> = {
    POST: post,
    GET: get,
    DELETE: del,
    OPTIONS: (call) => preflight(flows.passThrough.upstream, call),
  };

  return {
    handle(req, res) {
      const { headers } = req;
      const decision = decide(policy, req.method!, req.url!, headers.host, headers.origin, deps.closing());
      if (decision.kind === 'pass') return false;
      const call: Call = { req, res, tracked: track(req, res, deps) };
      if (decision.kind === 'refuse') {
        if (decision.reason === 'SHUTTING_DOWN') res.setHeader('connection', 'close');
        const refuse = () => answerError(req, res, call.tracked, new ProxyError(decision.reason), log);
        if (tracing.on) tracing.serve(req, res, call.tracked, undefined, refuse);
        else refuse();
        return true;
      }
      const method = methods[decision.flow];
      // A POST's server span starts once its body is read: its _meta may carry the caller's context.
      const flow =
        tracing.on && decision.flow !== 'POST' ? tracing.serve(req, res, call.tracked, undefined, () => method(call)) : method(call);
      flow.catch((error: unknown) => answerError(req, res, call.tracked, error, log));
      return true;
    },
  };

  async function post(call: Call) {
    let raw: Buffer;
    try {
      raw = await readJsonBody(call.req, bodyLimits);
    } catch (error) {
      if (tracing.on) serveRefusal(call);
      throw error;
    }
    const parsed = parseJson(raw);
    if (tracing.on) return tracing.serve(call.req, call.res, call.tracked, parsed, () => dispatch(call, raw, parsed));
    // `return await`: an async function that returns a promise unawaited resolves it in two more
    // turns of the microtask queue; this is every POST's path.
    return await dispatch(call, raw, parsed);
  }

  /** A server span for a POST whose body could not be read (too large, too slow, the client gone). */
  function serveRefusal(call: Call): void {
    tracing.serve(call.req, call.res, call.tracked, undefined, () => undefined);
    // A client that left mid-body: its answer closed before the span was there to end with it.
    if (call.tracked.gone.aborted) call.tracked.onClose?.(null);
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
      return initialize(call, raw, message.id, message.params);
    }
    // A 2025-style caller without a session (raw HTTP users): a pooled session, unless refused.
    if (presented === undefined && config.sessionless === 'pool') return pooled.sessionless(call, parsed);
    const session = await sessions.find(call);
    const { backend } = session;
    if (backend.kind === 'hosted') return hosted.post(call, backend.hosted, parsed);
    return relayed.post(call, session, backend.link, raw, parsed, message.kind === 'initialized');
  }

  /** A 2026-07-28 request: pooled in front of a legacy upstream, as it came to a modern one. */
  async function modern(call: Call, raw: Buffer, message: ModernMessage) {
    // 2026-07-28 clients send no notifications over HTTP; a cancellation would name one of the
    // client's own ids, which mean nothing upstream.
    if (message.kind === 'notification') return accepted(call);
    call.tracked.requestId = message.id;
    // Known after the first request: then no await (each costs a turn of the microtask queue).
    const upstream = eraProbe.known() ?? (await eraProbe.era(toUpstreamHeaders(call.req.headers, undefined)));
    if (flowFor('modern', upstream) === 'pass-through') return passThroughAsSent(call, raw, message);
    const outcome = await pooled.modern(call, message);
    if (outcome) await afterEraChange(call, outcome, 'modern', 'pass-through', () => passThroughAsSent(call, raw, message));
  }

  /** A 2025 client's initialize: a relayed session, or a hosted one in front of a 2026-07-28-only upstream. */
  async function initialize(call: Call, raw: Buffer, requestId: JsonRpcId, params: object) {
    if (flowFor('initialize', eraProbe.known() ?? 'legacy') === 'hosted') return hosted.start(call, requestId, params);
    const outcome = await relayed.start(call, raw, requestId, params);
    if (outcome) await afterEraChange(call, outcome, 'initialize', 'hosted', () => hosted.start(call, requestId, params));
  }

  /**
   * A flow found the upstream's era changed under it (a 2026-07-28-only server refused what it
   * sent): find the era out again; if the matrix now names `other`, it runs, else the first flow
   * finishes the request with the upstream's answer.
   */
  async function afterEraChange(call: Call, outcome: EraChanged, caller: Caller, other: Flow, run: () => Promise<void>) {
    eraProbe.forget();
    const upstream = await eraProbe.era(toUpstreamHeaders(call.req.headers, undefined));
    return flowFor(caller, upstream) === other ? run() : outcome.otherwise();
  }

  function passThroughAsSent(call: Call, raw: Buffer, message: ModernMessage) {
    return passThrough(flows.passThrough, call, toUpstreamHeaders(call.req.headers, undefined), raw, message);
  }

  async function get(call: Call) {
    const session = await sessions.find(call);
    const { backend } = session;
    if (backend.kind === 'hosted') return hosted.stream(call, session, backend.hosted);
    return relayed.stream(call, session, backend.link);
  }

  async function del(call: Call) {
    // Only with the credentials the session runs under: a DELETE never re-authenticates it.
    const session = await sessions.find(call, 'end');
    await sessions.end(call, session);
    call.res.writeHead(200).end();
  }
}
