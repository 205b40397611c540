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
 * Decisions live in pure modules (mcp/, proxy/headers.ts, session/ids.ts); the upstream session's
 * life is upstream/link.ts's; this file does the client side's I/O.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { ProxyError, type JsonRpcId } from '../errors.js';
import { classifyBody, parseJson, requestIdsOf, SESSION_HEADER } from '../mcp/protocol.js';
import type { Metrics, SealedIdRejection } from '../observability/metrics.js';
import type { CredentialBinding } from '../session/binding.js';
import { asClientSessionId, isSealedId, mintClientSessionId, type ClientSessionId, type Fingerprint } from '../session/ids.js';
import type { Opened, Sealer } from '../session/sealing.js';
import { newSession, type Session, type SessionStore, type TerminatedIds } from '../session/store.js';
import { discard, type UpstreamClient } from '../upstream/client.js';
import { openLink, UpstreamLink, type LinkDeps, type Outgoing } from '../upstream/link.js';
import { toClientHeaders, toUpstreamHeaders } from './headers.js';
import { decide, gatePolicyOf, type McpFlow } from './gate.js';
import { answerError, errorEvents, relay, type OpenStreams, type RelayOptions } from './reply.js';
import { readJsonBody } from './request-body.js';
import { track, type Tracked, type TrackingDeps } from './tracking.js';

export interface McpEndpointDeps extends TrackingDeps {
  readonly config: Config;
  readonly store: SessionStore;
  /** What every upstream link is built with. */
  readonly links: LinkDeps;
  readonly fingerprint: Fingerprint;
  readonly binding: CredentialBinding;
  /** Seals new ids and opens ids this process has no session for; undefined without a secret. */
  readonly sealer: Sealer | undefined;
  /** Sealed ids ended by DELETE: refused even though they still open. */
  readonly terminated: TerminatedIds;
  /** Open GET event streams: shutdown ends them, since they would otherwise never finish. */
  readonly openStreams: OpenStreams;
  readonly metrics: Metrics;
  readonly log: Logger;
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
  const { config, store, links, fingerprint, binding, sealer, terminated, openStreams, metrics, log } = deps;
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
      flows[decision.flow](call).catch((error: unknown) => answerError(req, res, call.tracked, error, log));
      return true;
    },
  };

  async function post(call: Call) {
    const raw = await readJsonBody(call.req, config.bodyLimitBytes, config.bodyTimeoutMs);
    const message = classifyBody(parseJson(raw));
    // Any error from here on answers this request's id.
    call.tracked.requestId = message.id;
    if (message.kind === 'invalid') throw new ProxyError(message.reason);

    const presented = call.req.headers[SESSION_HEADER];
    if (message.kind === 'initialize') {
      // Replacing a live session silently would strand its other users; a new one needs no id.
      if (presented !== undefined) throw new ProxyError('INITIALIZE_WITH_SESSION');
      return startSession(call, raw, message.id, message.params);
    }
    const session = await sessionFor(call, presented);
    return forward(call, session, raw, message.kind === 'initialized');
  }

  async function get(call: Call) {
    const session = await sessionFor(call, call.req.headers[SESSION_HEADER]);
    return forward(call, session, undefined, false);
  }

  async function del(call: Call) {
    const session = await sessionFor(call, call.req.headers[SESSION_HEADER]);
    store.delete(session.id);
    // A sealed id would still open: refuse it here until it is too old anyway. Other replicas
    // do not learn of it (README: "Sessions across restarts and replicas").
    if (session.nonce !== undefined) terminated.add(session.nonce, session.expiresAt);
    log.info({ sid: session.logId }, 'session deleted by client');
    // Ended at once (a replay racing this DELETE cannot bring it back); the upstream may not
    // support DELETE (405) or may have lost the session already: either way it is over.
    await session.link.end(toUpstreamHeaders(call.req.headers, undefined));
    call.res.writeHead(200).end();
  }

  /**
   * The session named by the client's header: in memory (the hot path: nothing asynchronous), or
   * reopened from a sealed id. Unknown or malformed ids get 404, as the spec says.
   */
  function sessionFor(call: Call, presented: string | string[] | undefined): Session | Promise<Session> {
    if (presented === undefined) throw new ProxyError('SESSION_REQUIRED');
    const id = typeof presented === 'string' ? asClientSessionId(presented) : undefined;
    if (id === undefined) throw new ProxyError('SESSION_NOT_FOUND');
    const session = store.get(id);
    return session === undefined ? reopen(call, id) : admit(call, session);
  }

  /** The checks every use of a session passes, however it was found. */
  function admit(call: Call, session: Session): Session {
    // Other credentials than at initialize: answer exactly as for an id that does not exist.
    if (!binding.matches(session.credential, call.req.headers)) throw new ProxyError('SESSION_NOT_FOUND');
    if (session.expiresAt <= Date.now()) {
      // A sealed id past its age limit would be refused by every other replica: refuse it here too.
      store.delete(session.id, 'max_age');
      throw new ProxyError('SESSION_NOT_FOUND');
    }
    call.tracked.sessionLogId = session.logId;
    return session;
  }

  /**
   * A sealed id this process has no session for (it restarted, or another replica made it):
   * open it, check it, and take the session in. Its link starts unopened: the first message
   * replays initialize. Any failed check answers exactly as an unknown id does.
   */
  async function reopen(call: Call, id: ClientSessionId): Promise<Session> {
    if (sealer === undefined || !isSealedId(id)) throw new ProxyError('SESSION_NOT_FOUND');
    const opened = await sealer.open(id);
    const refused = opened.ok ? refusalOf(opened.session, call.req.headers) : opened.reason;
    if (!opened.ok || refused !== undefined) {
      metrics.sealedIdRejected(refused!);
      log.debug({ reason: refused }, 'sealed session id refused');
      throw new ProxyError('SESSION_NOT_FOUND');
    }
    // Another request with this id may have taken it in while this one was decrypting.
    const known = store.get(id);
    if (known !== undefined) return admit(call, known);
    const { session: state } = opened;
    const session = newSession({
      id,
      logId: fingerprint(id),
      // The caller's credentials matched the sealed digest; this process compares with its current key.
      credential: binding.of(call.req.headers),
      nonce: state.nonce,
      expiresAt: state.issuedAtMs + config.sessionMaxAgeMs,
      link: new UpstreamLink(links, state.initParams, { kind: 'reopened', protocolVersion: state.protocolVersion }),
    });
    store.add(session);
    metrics.sessionReopened();
    log.info({ sid: session.logId, link: session.link.label }, 'session reopened from its sealed id');
    return admit(call, session);
  }

  function refusalOf(opened: Opened, headers: IncomingHttpHeaders): SealedIdRejection | undefined {
    if (terminated.has(opened.nonce)) return 'terminated';
    if (!opened.binding.matches(opened.credential, headers)) return 'credentials';
    return undefined;
  }

  async function startSession(call: Call, raw: Buffer, requestId: JsonRpcId, params: object) {
    const { req, res, tracked } = call;
    const initParams = JSON.stringify(params);
    const { initialized, link } = await openLink(links, {
      initParams,
      headers: toUpstreamHeaders(req.headers, undefined),
      body: raw,
      requestId,
      cancel: tracked.gone,
    });
    if (link === undefined) {
      // The upstream refused (unsupported version, auth, ...): its answer goes back as is, no session.
      return relay(res, initialized.response.statusCode, toClientHeaders(initialized.response.headers, undefined), initialized.body);
    }
    const credential = binding.of(req.headers);
    const sealed = await sealer?.seal({ params, protocolVersion: link.protocolVersion, credential });
    const id = sealed?.id ?? mintClientSessionId();
    const session = newSession({
      id,
      logId: fingerprint(id),
      credential,
      nonce: sealed?.nonce,
      expiresAt: sealed === undefined ? Infinity : sealed.issuedAtMs + config.sessionMaxAgeMs,
      link,
    });
    if (sealer !== undefined && sealed === undefined) {
      log.warn({ sid: session.logId, paramsBytes: initParams.length }, 'initialize params too large to seal; this session lives in this process only');
    }
    store.add(session);
    metrics.sessionCreated();
    tracked.sessionLogId = session.logId;
    const upstreamId = initialized.kind === 'accepted' ? initialized.upstreamId : undefined;
    log.info({ sid: session.logId, link: link.label, upstream: upstreamId === undefined ? null : fingerprint(upstreamId) }, 'session created');
    return relay(res, initialized.response.statusCode, toClientHeaders(initialized.response.headers, id), initialized.body);
  }

  /** One message (or the GET stream) on the session's upstream link, its answer streamed back. */
  async function forward(call: Call, session: Session, body: Buffer | undefined, initialized: boolean) {
    const out: Outgoing = {
      headers: toUpstreamHeaders(call.req.headers, undefined),
      body,
      initialized,
      versionFromLink: false,
      cancel: call.tracked.gone,
      replayed: undefined,
    };
    let answer;
    try {
      answer = await session.link.send(out);
    } finally {
      call.tracked.replayedFor = out.replayed ?? null;
    }
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

/** A browser's CORS preflight before a cross-origin POST: the upstream decides CORS. */
async function preflight(call: Call, upstream: UpstreamClient) {
  const response = await upstream.request({
    method: 'OPTIONS',
    headers: toUpstreamHeaders(call.req.headers, undefined),
    signal: call.tracked.gone,
  });
  relay(call.res, response.statusCode, toClientHeaders(response.headers, undefined), response.body);
}
