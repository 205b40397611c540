/**
 * The MCP endpoint: the whole request flow, top to bottom.
 *
 *   POST initialize  → forward without a session id → mint the client's id (random, or sealed
 *                      with the session secret), remember the client's initialize params and
 *                      the upstream's id → answer with our id
 *   POST / GET       → look up the client session (not here but sealed: open and check it,
 *                      replay initialize) → forward with the upstream's current id → upstream
 *                      lost it? replay initialize once (single flight), retry once → stream
 *                      the answer back untouched
 *   DELETE           → forget the session (a sealed id: refuse it here from now on), tell the
 *                      upstream if it has one, answer 200
 *   OPTIONS          → CORS preflight: the upstream's answer, as is
 *
 * Before any of that, the gate (gate.ts) decides for every method on the MCP path: shutting
 * down (503), Host or Origin not allowed (403), another method (405), or the flow to run. All of
 * it runs on the raw node:http server (app.ts hands every request over before Fastify routes
 * anything): Fastify's per-request machinery alone cost more than the whole proxying
 * (bench/README.md). Every other path is Fastify's.
 * Decisions live in pure modules (mcp/, proxy/headers.ts, session/ids.ts); this file does I/O.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { ProxyError, type JsonRpcId } from '../errors.js';
import { initializeOutcomeOf } from '../mcp/initialize-result.js';
import { classifyLoss, mayBeLoss, type LossSignal } from '../mcp/loss.js';
import { classifyBody, LAST_EVENT_ID_HEADER, requestIdsOf, SESSION_HEADER } from '../mcp/protocol.js';
import type { Metrics, SealedIdRejection } from '../observability/metrics.js';
import type { CredentialBinding } from '../session/binding.js';
import { MAX_INITIALIZE_ANSWER_BYTES, type Handshake } from '../session/handshake.js';
import { asClientSessionId, isSealedId, mintClientSessionId, readUpstreamId, type ClientSessionId, type Fingerprint } from '../session/ids.js';
import type { Opened, Sealer } from '../session/sealing.js';
import { newSession, type Session, type SessionStore, type TerminatedIds } from '../session/store.js';
import { discard, readBody, type UpstreamClient, type UpstreamResponse } from '../upstream/client.js';
import { toClientHeaders, toUpstreamHeaders } from './headers.js';
import { decide, gatePolicyOf, type McpFlow } from './gate.js';
import { answerError, errorEvents, relay, type OpenStreams, type RelayOptions } from './reply.js';
import { readJsonBody } from './request-body.js';
import { track, type Tracked, type TrackingDeps } from './tracking.js';

export interface McpEndpointDeps extends TrackingDeps {
  readonly config: Config;
  readonly store: SessionStore;
  readonly upstream: UpstreamClient;
  readonly handshake: Handshake;
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

/** An upstream answer, its body either still streaming or already read to classify it. */
interface Answer {
  readonly response: UpstreamResponse;
  readonly payload: Readable | Buffer;
  readonly loss: LossSignal | undefined;
}

// Loss errors are short JSON-RPC errors; reading more than this to classify one is never needed.
const MAX_ERROR_ANSWER_BYTES = 64 * 1024;

export interface McpEndpoint {
  /** Answer the request if it is for the MCP path, whatever its method; false: it is Fastify's. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
}

export function createMcpEndpoint(deps: McpEndpointDeps): McpEndpoint {
  const { config, store, upstream, handshake, fingerprint, binding, sealer, terminated, openStreams, metrics, log } = deps;
  const policy = gatePolicyOf(config);
  const flows: Record<McpFlow, (call: Call) => Promise<void>> = {
    POST: post,
    GET: get,
    DELETE: del,
    OPTIONS: (call) => preflight(call, upstream),
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
    if (message.kind === 'initialized') return initialized(call, session, raw);
    return forward(call, session, raw);
  }

  /** The client's notifications/initialized: forwarded, unless the upstream session has one already. */
  async function initialized(call: Call, session: Session, raw: Buffer) {
    // A reopened session's replay sends its own; so does any replay.
    if (session.needsReplay) await rebuild(call, session);
    if (session.upstreamInitialized) return void call.res.writeHead(202).end();
    session.upstreamInitialized = true;
    return forward(call, session, raw);
  }

  async function get(call: Call) {
    const session = await sessionFor(call, call.req.headers[SESSION_HEADER]);
    return forward(call, session, undefined);
  }

  async function del(call: Call) {
    const session = await sessionFor(call, call.req.headers[SESSION_HEADER]);
    // Marks the session ended, so a replay racing this DELETE cannot bring it back.
    store.delete(session.id);
    // A sealed id would still open: refuse it here until it is too old anyway. Other replicas
    // do not learn of it (README: "Sessions across restarts and replicas").
    if (session.nonce !== undefined) terminated.add(session.nonce, session.expiresAt);
    log.info({ sid: session.logId }, 'session deleted by client');
    await session.replaying?.catch(() => undefined);
    // The upstream may not support DELETE (405) or may have lost the session already: either
    // way the client's session is over.
    if (session.upstreamId !== undefined) await handshake.endUpstream(session.upstreamId, call.req.headers, log);
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
   * open it, check it, and take the session in. Its upstream session is made on first use
   * (forward). Any failed check answers exactly as an unknown id does.
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
      initParams: state.initParams,
      protocolVersion: state.protocolVersion,
      upstreamId: undefined,
      nonce: state.nonce,
      expiresAt: state.issuedAtMs + config.sessionMaxAgeMs,
      needsReplay: true,
    });
    store.add(session);
    metrics.sessionReopened();
    log.info({ sid: session.logId }, 'session reopened from its sealed id');
    return admit(call, session);
  }

  function refusalOf(opened: Opened, headers: IncomingHttpHeaders): SealedIdRejection | undefined {
    if (terminated.has(opened.nonce)) return 'terminated';
    if (!opened.binding.matches(opened.credential, headers)) return 'credentials';
    return undefined;
  }

  async function startSession(call: Call, raw: Buffer, requestId: JsonRpcId, params: object) {
    const { req, res, tracked } = call;
    // The initialize answer is read whole (it is one small result) to learn the negotiated version.
    const controller = new AbortController();
    tracked.gone.once('abort', () => controller.abort());
    const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(config.upstreamTimeoutMs)]);
    const response = await upstream.request({
      method: 'POST',
      headers: toUpstreamHeaders(req.headers, undefined),
      body: raw,
      signal,
    });
    if (log.isLevelEnabled('trace')) {
      log.trace({ status: response.statusCode, headers: response.headers }, 'initialize answer from upstream');
    }
    const answer = await readBody(response.body, MAX_INITIALIZE_ANSWER_BYTES, 'UPSTREAM_BAD_INITIALIZE', signal);
    const ok = response.statusCode >= 200 && response.statusCode < 300;
    const outcome = ok ? initializeOutcomeOf(answer.toString(), response.headers['content-type'], requestId) : undefined;
    if (outcome === undefined) {
      // The upstream refused (unsupported version, auth, ...): its answer goes back as is, no session.
      return relay(res, response.statusCode, toClientHeaders(response.headers, undefined), answer);
    }
    const upstreamId = readUpstreamId(response.headers[SESSION_HEADER]);
    if (upstreamId.kind === 'invalid') throw new ProxyError('UPSTREAM_BAD_SESSION_ID');

    const credential = binding.of(req.headers);
    const sealed = await sealer?.seal({ params, protocolVersion: outcome.protocolVersion, credential });
    const id = sealed?.id ?? mintClientSessionId();
    const session = newSession({
      id,
      logId: fingerprint(id),
      credential,
      initParams: JSON.stringify(params),
      protocolVersion: outcome.protocolVersion,
      upstreamId: upstreamId.kind === 'valid' ? upstreamId.id : undefined,
      nonce: sealed?.nonce,
      expiresAt: sealed === undefined ? Infinity : sealed.issuedAtMs + config.sessionMaxAgeMs,
      needsReplay: false,
    });
    if (sealer !== undefined && sealed === undefined) {
      log.warn({ sid: session.logId, paramsBytes: session.initParams.length }, 'initialize params too large to seal; this session lives in this process only');
    }
    store.add(session);
    metrics.sessionCreated();
    tracked.sessionLogId = session.logId;
    log.info(
      { sid: session.logId, upstream: session.upstreamId === undefined ? null : fingerprint(session.upstreamId) },
      'session created',
    );
    return relay(res, response.statusCode, toClientHeaders(response.headers, id), answer);
  }

  async function forward(call: Call, session: Session, body: Buffer | undefined) {
    const arrivedAt = session.generation;
    // A replay in flight will hand out a new upstream id: sending with the old one would only fail.
    if (session.replaying !== undefined) await session.replaying.catch(() => undefined);
    // Reopened from a sealed id: make this process's upstream session before the first message.
    if (session.needsReplay) await rebuild(call, session);
    // The client sent its notifications/initialized to another replica: send one (or wait for
    // the one being sent) before anything else reaches the upstream session.
    else if (!session.upstreamInitialized || session.acknowledging !== undefined) {
      await handshake.acknowledge(session, call.req.headers, log);
    }
    let generation = session.generation;
    // The upstream session was re-established since the client sent this: its event ids are gone.
    let answer = await exchange(call, session, body, generation !== arrivedAt);
    if (answer.loss !== undefined) {
      // The upstream did not process the message: it no longer knows the session.
      call.tracked.replayedFor = answer.loss;
      log.info({ sid: session.logId, signal: answer.loss }, 'upstream lost the session; replaying initialize');
      await handshake.recover(session, generation, answer.loss, call.req.headers, log);
      generation = session.generation;
      // At most one retry: a second loss goes back to the client as the upstream said it.
      answer = await exchange(call, session, body, true);
    }
    const { response } = answer;
    if (body === undefined && deps.closing()) {
      // A GET stream opening after shutdown began would never be ended: refuse it instead.
      if (!Buffer.isBuffer(answer.payload)) discard(response.body);
      throw new ProxyError('SHUTTING_DOWN');
    }
    if (response.statusCode >= 200 && response.statusCode < 300) followRotation(session, generation, answer);
    const options: RelayOptions =
      body === undefined
        ? { streams: openStreams, metrics }
        : // A cut SSE answer: every request of this POST still waiting gets a JSON-RPC error.
          { cutEvents: () => errorEvents('UPSTREAM_CUT', requestIdsOf(parseJson(body))), metrics };
    relay(call.res, response.statusCode, toClientHeaders(response.headers, session.id), answer.payload, options);
  }

  /** This process's upstream session for a session reopened from its sealed id. */
  async function rebuild(call: Call, session: Session) {
    call.tracked.replayedFor = 'reopened';
    await handshake.recover(session, session.generation, 'reopened', call.req.headers, log);
  }

  /** One upstream round trip; bodies of answers that may signal a loss are read to classify them. */
  async function exchange(call: Call, session: Session, body: Buffer | undefined, afterReplay: boolean): Promise<Answer> {
    const headers = toUpstreamHeaders(call.req.headers, session.upstreamId);
    // Event ids belong to an upstream session that is gone (lost, or another replica's); the
    // current one never issued them.
    if (afterReplay) delete headers[LAST_EVENT_ID_HEADER];
    const traced = log.isLevelEnabled('trace');
    // Whole header maps at trace: the logger's redaction removes ids, credentials and cookies.
    if (traced) log.trace({ sid: session.logId, headers }, 'to upstream');
    const gone = call.tracked.gone;
    const response = await upstream.request({
      method: body === undefined ? 'GET' : 'POST',
      headers,
      ...(body === undefined ? {} : { body }),
      signal: gone,
    });
    if (traced) log.trace({ sid: session.logId, status: response.statusCode, headers: response.headers }, 'from upstream');
    if (!mayBeLoss(response.statusCode, config.loss)) return { response, payload: response.body, loss: undefined };
    const payload = await readBody(response.body, MAX_ERROR_ANSWER_BYTES, 'UPSTREAM_UNAVAILABLE', gone);
    // A bare 404 to a GET often means "no GET stream here", not a lost session.
    const loss = classifyLoss(response.statusCode, payload.toString(), config.loss, body !== undefined);
    return { response, payload, loss };
  }

  /** Upstreams that issue a new id on a later answer: follow the newest, the client never notices. */
  function followRotation(session: Session, sentAtGeneration: number, answer: Answer) {
    const header = answer.response.headers[SESSION_HEADER];
    if (header === undefined || header === session.upstreamId) return;
    const offered = readUpstreamId(header);
    if (offered.kind !== 'valid') {
      // Storing it would poison every later request of the session.
      if (!Buffer.isBuffer(answer.payload)) discard(answer.response.body);
      throw new ProxyError('UPSTREAM_BAD_SESSION_ID');
    }
    // An answer to a request sent before a replay carries an id from a session that is gone.
    if (sentAtGeneration === session.generation) session.upstreamId = offered.id;
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

function parseJson(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString()) as unknown;
  } catch {
    return undefined;
  }
}
