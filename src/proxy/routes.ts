/**
 * The MCP endpoint: the whole request flow, top to bottom.
 *
 *   POST initialize  → forward without a session id → mint the client's id, remember the
 *                      client's initialize params and the upstream's id → answer with our id
 *   POST / GET       → look up the client session → forward with the upstream's current id →
 *                      upstream lost it? replay initialize once (single flight), retry once →
 *                      stream the answer back untouched
 *   DELETE           → forget the session, tell the upstream if it has one, answer 200
 *   OPTIONS          → CORS preflight: the upstream's answer, as is
 *   anything else    → 405
 *
 * Decisions live in pure modules (mcp/, proxy/headers.ts, session/ids.ts); this file does I/O.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import type { Config } from '../config.js';
import { ProxyError, type JsonRpcId } from '../errors.js';
import { initializeOutcomeOf } from '../mcp/initialize-result.js';
import { classifyLoss, mayBeLoss, type LossSignal } from '../mcp/loss.js';
import { classifyBody, LAST_EVENT_ID_HEADER, requestIdsOf, SESSION_HEADER } from '../mcp/protocol.js';
import type { Metrics } from '../observability/metrics.js';
import type { CredentialBinding } from '../session/binding.js';
import { MAX_INITIALIZE_ANSWER_BYTES, type Handshake } from '../session/handshake.js';
import { asClientSessionId, mintClientSessionId, readUpstreamId, type Fingerprint } from '../session/ids.js';
import type { Session, SessionStore } from '../session/store.js';
import { discard, readBody, type UpstreamClient, type UpstreamResponse } from '../upstream/client.js';
import { toClientHeaders, toUpstreamHeaders } from './headers.js';
import { errorEvents, relay, type OpenStreams, type RelayOptions } from './reply.js';

export interface McpRouteDeps {
  readonly config: Config;
  readonly store: SessionStore;
  readonly upstream: UpstreamClient;
  readonly handshake: Handshake;
  readonly fingerprint: Fingerprint;
  readonly binding: CredentialBinding;
  readonly metrics: Metrics;
  /** Open GET event streams: shutdown ends them, since they would otherwise never finish. */
  readonly openStreams: OpenStreams;
}

/** The parsed POST body: the bytes as received (forwarded as they are) and their JSON value. */
interface McpBody {
  readonly raw: Buffer;
  /** undefined when the bytes are not JSON. */
  readonly json: unknown;
}

/** An upstream answer, its body either still streaming or already read to classify it. */
interface Answer {
  readonly response: UpstreamResponse;
  readonly payload: Readable | Buffer;
  readonly loss: LossSignal | undefined;
}

// Loss errors are short JSON-RPC errors; reading more than this to classify one is never needed.
const MAX_ERROR_ANSWER_BYTES = 64 * 1024;
const ALLOWED_METHODS = 'GET, POST, DELETE';

export async function mcpRoutes(app: FastifyInstance, deps: McpRouteDeps): Promise<void> {
  const { config, store, upstream, handshake, fingerprint, binding, openStreams, metrics } = deps;
  const path = config.mcpPath;

  // Keep the bytes: the proxy forwards what the client sent instead of re-serializing it.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer', bodyLimit: config.bodyLimitBytes },
    (_request, raw: Buffer, done) => done(null, { raw, json: parseJson(raw) } satisfies McpBody),
  );

  app.post(path, async (request, reply) => {
    const body = request.body as McpBody | undefined;
    const message = classifyBody(body?.json);
    if (message.kind === 'invalid') throw new ProxyError(message.reason, { requestId: message.id });

    const presented = request.headers[SESSION_HEADER];
    if (message.kind === 'initialize') {
      // Replacing a live session silently would strand its other users; a new one needs no id.
      if (presented !== undefined) throw new ProxyError('INITIALIZE_WITH_SESSION', { requestId: message.id });
      return startSession(request, reply, body!.raw, message.id, message.params);
    }
    const session = sessionFor(request, presented, message.id);
    return forward(request, reply, session, body!);
  });

  // No automatic HEAD: it would open (and drop) an upstream SSE stream.
  app.get(path, { exposeHeadRoute: false }, async (request, reply) => {
    const session = sessionFor(request, request.headers[SESSION_HEADER], null);
    return forward(request, reply, session, undefined);
  });

  app.delete(path, async (request, reply) => {
    const session = sessionFor(request, request.headers[SESSION_HEADER], null);
    // Marks the session ended, so a replay racing this DELETE cannot bring it back.
    store.delete(session.id);
    request.log.info({ sid: session.logId }, 'session deleted by client');
    await session.replaying?.catch(() => undefined);
    // The upstream may not support DELETE (405) or may have lost the session already: either
    // way the client's session is over.
    if (session.upstreamId !== undefined) await handshake.endUpstream(session.upstreamId, request.headers, request.log);
    return reply.code(200).send();
  });

  // Browsers send a CORS preflight before a cross-origin POST; the upstream decides CORS.
  app.options(path, async (request, reply) => {
    const response = await upstream.request({
      method: 'OPTIONS',
      headers: toUpstreamHeaders(request.headers, undefined),
      signal: request.clientGone!,
    });
    return relay(reply, response.statusCode, toClientHeaders(response.headers, undefined), response.body);
  });

  app.route({
    method: ['PUT', 'PATCH', 'HEAD', 'TRACE'],
    url: path,
    handler: async (_request, reply) => {
      reply.header('allow', ALLOWED_METHODS);
      throw new ProxyError('METHOD_NOT_ALLOWED');
    },
  });

  /** The session named by the client's header; unknown or malformed ids get 404, as the spec says. */
  function sessionFor(request: FastifyRequest, presented: string | string[] | undefined, requestId: JsonRpcId | null) {
    if (presented === undefined) throw new ProxyError('SESSION_REQUIRED', { requestId });
    const id = typeof presented === 'string' ? asClientSessionId(presented) : undefined;
    const session = id === undefined ? undefined : store.get(id);
    // Other credentials than at initialize: answer exactly as for an id that does not exist.
    if (session === undefined || !binding.matches(session.credential, request.headers)) {
      throw new ProxyError('SESSION_NOT_FOUND', { requestId });
    }
    request.sessionLogId = session.logId;
    return session;
  }

  async function startSession(
    request: FastifyRequest,
    reply: FastifyReply,
    raw: Buffer,
    requestId: JsonRpcId,
    params: object,
  ) {
    // The initialize answer is read whole (it is one small result) to learn the negotiated version.
    const signal = AbortSignal.any([request.clientGone!, AbortSignal.timeout(config.upstreamTimeoutMs)]);
    const response = await upstream.request({
      method: 'POST',
      headers: toUpstreamHeaders(request.headers, undefined),
      body: raw,
      signal,
    });
    if (request.log.level === 'trace') {
      request.log.trace({ status: response.statusCode, headers: response.headers }, 'initialize answer from upstream');
    }
    const answer = await readBody(response.body, MAX_INITIALIZE_ANSWER_BYTES, 'UPSTREAM_BAD_INITIALIZE', signal);
    const ok = response.statusCode >= 200 && response.statusCode < 300;
    const outcome = ok ? initializeOutcomeOf(answer.toString(), response.headers['content-type'], requestId) : undefined;
    if (outcome === undefined) {
      // The upstream refused (unsupported version, auth, ...): its answer goes back as is, no session.
      return relay(reply, response.statusCode, toClientHeaders(response.headers, undefined), answer);
    }
    const upstreamId = readUpstreamId(response.headers[SESSION_HEADER]);
    if (upstreamId.kind === 'invalid') throw new ProxyError('UPSTREAM_BAD_SESSION_ID', { requestId });

    const id = mintClientSessionId();
    const session: Session = {
      id,
      logId: fingerprint(id),
      credential: binding.of(request.headers),
      initParams: JSON.stringify(params),
      protocolVersion: outcome.protocolVersion,
      upstreamId: upstreamId.kind === 'valid' ? upstreamId.id : undefined,
      generation: 0,
      replaying: undefined,
      ended: false,
    };
    store.add(session);
    metrics.sessionCreated();
    request.sessionLogId = session.logId;
    request.log.info(
      { sid: session.logId, upstream: session.upstreamId === undefined ? null : fingerprint(session.upstreamId) },
      'session created',
    );
    return relay(reply, response.statusCode, toClientHeaders(response.headers, id), answer);
  }

  async function forward(request: FastifyRequest, reply: FastifyReply, session: Session, body: McpBody | undefined) {
    // A replay in flight will hand out a new upstream id: sending with the old one would only fail.
    if (session.replaying !== undefined) await session.replaying.catch(() => undefined);
    let generation = session.generation;
    let answer = await exchange(request, session, body, false);
    if (answer.loss !== undefined) {
      // The upstream did not process the message: it no longer knows the session.
      request.replayedFor = answer.loss;
      request.log.info({ sid: session.logId, signal: answer.loss }, 'upstream lost the session; replaying initialize');
      await handshake.recover(session, generation, answer.loss, request.headers, request.log);
      generation = session.generation;
      // At most one retry: a second loss goes back to the client as the upstream said it.
      answer = await exchange(request, session, body, true);
    }
    const { response } = answer;
    if (response.statusCode >= 200 && response.statusCode < 300) followRotation(session, generation, answer);
    const options: RelayOptions =
      body === undefined
        ? { streams: openStreams, metrics }
        : // A cut SSE answer: every request of this POST still waiting gets a JSON-RPC error.
          { cutEvents: () => errorEvents('UPSTREAM_CUT', requestIdsOf(body.json)), metrics };
    return relay(reply, response.statusCode, toClientHeaders(response.headers, session.id), answer.payload, options);
  }

  /** One upstream round trip; bodies of answers that may signal a loss are read to classify them. */
  async function exchange(
    request: FastifyRequest,
    session: Session,
    body: McpBody | undefined,
    afterReplay: boolean,
  ): Promise<Answer> {
    const headers = toUpstreamHeaders(request.headers, session.upstreamId);
    // Event ids belong to the upstream session that was lost; the new one never issued them.
    if (afterReplay) delete headers[LAST_EVENT_ID_HEADER];
    const traced = request.log.level === 'trace';
    // Whole header maps at trace: the logger's redaction removes ids, credentials and cookies.
    if (traced) request.log.trace({ sid: session.logId, headers }, 'to upstream');
    const response = await upstream.request({
      method: body === undefined ? 'GET' : 'POST',
      headers,
      ...(body === undefined ? {} : { body: body.raw }),
      signal: request.clientGone!,
    });
    if (traced) {
      request.log.trace({ sid: session.logId, status: response.statusCode, headers: response.headers }, 'from upstream');
    }
    if (!mayBeLoss(response.statusCode, config.loss)) return { response, payload: response.body, loss: undefined };
    const payload = await readBody(response.body, MAX_ERROR_ANSWER_BYTES, 'UPSTREAM_UNAVAILABLE', request.clientGone!);
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

function parseJson(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString()) as unknown;
  } catch {
    return undefined;
  }
}
