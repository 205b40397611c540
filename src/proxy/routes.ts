/**
 * The MCP endpoint: the whole request flow, top to bottom.
 *
 *   POST initialize  → forward without a session id → mint the client's id, remember the
 *                      client's initialize params and the upstream's id → answer with our id
 *   POST / GET       → look up the client session → forward with the upstream's current id →
 *                      upstream lost it? replay initialize once (single flight), retry once →
 *                      stream the answer back untouched
 *   DELETE           → forget the session, tell the upstream if it has one, answer 200
 *   anything else    → 405
 *
 * Decisions live in pure modules (mcp/, proxy/headers.ts, session/ids.ts); this file does I/O.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import type { Config } from '../config.js';
import { errorBody, PROXY_ERRORS, ProxyError, type JsonRpcId } from '../errors.js';
import { initializeOutcomeOf } from '../mcp/initialize-result.js';
import { classifyLoss, mayBeLoss, type LossSignal } from '../mcp/loss.js';
import { classifyBody, isEventStream, SESSION_HEADER } from '../mcp/protocol.js';
import type { CredentialBinding } from '../session/binding.js';
import type { Handshake } from '../session/handshake.js';
import { MAX_INITIALIZE_ANSWER_BYTES } from '../session/handshake.js';
import { asClientSessionId, mintClientSessionId, readUpstreamId, type Fingerprint } from '../session/ids.js';
import type { Session, SessionStore } from '../session/store.js';
import { discard, readBody, toProxyError, type UpstreamClient, type UpstreamResponse } from '../upstream/client.js';
import { toClientHeaders, toUpstreamHeaders, type OutgoingHeaders } from './headers.js';

export interface McpRouteDeps {
  readonly config: Config;
  readonly store: SessionStore;
  readonly upstream: UpstreamClient;
  readonly handshake: Handshake;
  readonly fingerprint: Fingerprint;
  readonly binding: CredentialBinding;
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

declare module 'fastify' {
  interface FastifyRequest {
    /** Log-safe fingerprint of the client session this request belongs to, for the access log. */
    sessionLogId: string | null;
    /** Why this request needed a replay, if it did. */
    replayedFor: LossSignal | null;
    /** Aborts when the client goes away before its answer is complete; aborts the upstream call. */
    clientGone: AbortSignal | null;
  }
}

export async function mcpRoutes(app: FastifyInstance, deps: McpRouteDeps): Promise<void> {
  const { config, store, upstream, handshake, fingerprint, binding } = deps;
  const { allowedOrigins } = config;
  const path = config.mcpPath;

  app.decorateRequest('sessionLogId', null);
  app.decorateRequest('replayedFor', null);
  app.decorateRequest('clientGone', null);

  // Keep the bytes: the proxy forwards what the client sent instead of re-serializing it.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer', bodyLimit: config.bodyLimitBytes },
    (_request, raw: Buffer, done) => done(null, { raw, json: parseJson(raw) } satisfies McpBody),
  );

  app.setErrorHandler(replyWithError);
  // One listener per request does both jobs: abort the upstream call if the client leaves early,
  // and write the access line once the answer is over (relayed answers bypass Fastify's hooks).
  app.addHook('onRequest', (request, reply, done) => {
    const controller = new AbortController();
    request.clientGone = controller.signal;
    const res = reply.raw;
    res.once('close', () => {
      if (!res.writableFinished) controller.abort();
      request.log.info(
        {
          method: request.method,
          status: res.statusCode,
          ms: Math.round(reply.elapsedTime * 10) / 10,
          sid: request.sessionLogId,
          replayed: request.replayedFor,
          complete: res.writableFinished,
        },
        'mcp request',
      );
    });
    // Browsers send Origin; a page from a site not on the list must not drive a session (DNS
    // rebinding, cross-site requests). Clients that send no Origin are not browsers.
    const origin = request.headers.origin;
    if (allowedOrigins !== undefined && origin !== undefined && !allowedOrigins.has(origin)) {
      done(new ProxyError('ORIGIN_NOT_ALLOWED'));
      return;
    }
    done();
  });

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
    return forward(request, reply, session, body!.raw);
  });

  // No automatic HEAD: it would open (and drop) an upstream SSE stream.
  app.get(path, { exposeHeadRoute: false }, async (request, reply) => {
    const session = sessionFor(request, request.headers[SESSION_HEADER], null);
    return forward(request, reply, session, undefined);
  });

  app.delete(path, async (request, reply) => {
    const session = sessionFor(request, request.headers[SESSION_HEADER], null);
    store.delete(session.id);
    request.log.info({ sid: session.logId }, 'session deleted by client');
    // A replay in flight would otherwise create an upstream session nobody ever ends.
    await session.replaying?.catch(() => undefined);
    if (session.upstreamId !== undefined) {
      // The upstream may not support DELETE (405) or may have lost the session already: either
      // way the client's session is over, so its answer only goes to the debug log.
      try {
        const answer = await upstream.request({
          method: 'DELETE',
          headers: toUpstreamHeaders(request.headers, session.upstreamId),
          signal: AbortSignal.timeout(config.upstreamTimeoutMs),
        });
        await answer.body.dump();
        request.log.debug({ sid: session.logId, status: answer.statusCode }, 'upstream session ended');
      } catch (error) {
        request.log.debug({ sid: session.logId, reason: toProxyError(error).reason }, 'upstream DELETE failed');
      }
    }
    return reply.code(200).send();
  });

  app.route({
    method: ['PUT', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE'],
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
    request.log.trace({ status: response.statusCode, headers: response.headers }, 'initialize answer from upstream');
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
    };
    store.add(session);
    request.sessionLogId = session.logId;
    request.log.info(
      { sid: session.logId, upstream: session.upstreamId === undefined ? null : fingerprint(session.upstreamId) },
      'session created',
    );
    return relay(reply, response.statusCode, toClientHeaders(response.headers, id), answer);
  }

  async function forward(request: FastifyRequest, reply: FastifyReply, session: Session, body: Buffer | undefined) {
    const signal = request.clientGone!;
    // A replay in flight will hand out a new upstream id: sending with the old one would only fail.
    if (session.replaying !== undefined) await session.replaying.catch(() => undefined);
    let generation = session.generation;
    let answer = await exchange(request, session, body, signal);
    if (answer.loss !== undefined) {
      // The upstream did not process the message: it no longer knows the session.
      request.replayedFor = answer.loss;
      request.log.info({ sid: session.logId, signal: answer.loss }, 'upstream lost the session; replaying initialize');
      await handshake.recover(session, generation, request.headers, request.log);
      generation = session.generation;
      // At most one retry: a second loss goes back to the client as the upstream said it.
      answer = await exchange(request, session, body, signal);
    }
    const { response } = answer;
    if (response.statusCode >= 200 && response.statusCode < 300) followRotation(session, generation, answer);
    return relay(reply, response.statusCode, toClientHeaders(response.headers, session.id), answer.payload);
  }

  /** One upstream round trip; bodies of answers that may signal a loss are read to classify them. */
  async function exchange(
    request: FastifyRequest,
    session: Session,
    body: Buffer | undefined,
    signal: AbortSignal,
  ): Promise<Answer> {
    const headers = toUpstreamHeaders(request.headers, session.upstreamId);
    // Whole header maps at trace: the logger's redaction removes ids, credentials and cookies.
    request.log.trace({ sid: session.logId, headers }, 'to upstream');
    const response = await upstream.request({
      method: request.method as 'GET' | 'POST',
      headers,
      ...(body === undefined ? {} : { body }),
      signal,
    });
    request.log.trace({ sid: session.logId, status: response.statusCode, headers: response.headers }, 'from upstream');
    if (!mayBeLoss(response.statusCode, config.loss)) return { response, payload: response.body, loss: undefined };
    const payload = await readBody(response.body, MAX_ERROR_ANSWER_BYTES, 'UPSTREAM_UNAVAILABLE', signal);
    return { response, payload, loss: classifyLoss(response.statusCode, payload.toString(), config.loss) };
  }

  /** Upstreams that issue a new id on a later answer: follow the newest, the client never notices. */
  function followRotation(session: Session, sentAtGeneration: number, answer: Answer) {
    const offered = readUpstreamId(answer.response.headers[SESSION_HEADER]);
    if (offered.kind === 'absent') return;
    if (offered.kind === 'invalid') {
      // Storing it would poison every later request of the session.
      if (!Buffer.isBuffer(answer.payload)) discard(answer.response.body);
      throw new ProxyError('UPSTREAM_BAD_SESSION_ID');
    }
    // An answer to a request sent before a replay carries an id from a session that is gone.
    if (sentAtGeneration === session.generation && offered.id !== session.upstreamId) {
      session.upstreamId = offered.id;
    }
  }
}

/**
 * Send the upstream's answer on the raw response. Headers go out at once (an SSE client must
 * learn its stream is open before the first event; Fastify's stream mode would hold them back
 * until the first chunk) and the body is piped as it arrives, never buffered.
 */
function relay(reply: FastifyReply, status: number, headers: OutgoingHeaders, payload: Readable | Buffer): FastifyReply {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(status, headers);
  if (Buffer.isBuffer(payload)) {
    res.end(payload);
    return reply;
  }
  res.flushHeaders();
  // An upstream that dies mid-answer must not leave the client hanging. An SSE stream is ended
  // cleanly (events are self-delimiting: a cut event is dropped, and the client may resume); any
  // other body is cut, so a truncated JSON answer can never pass for a complete one.
  const eventStream = isEventStream(headers['content-type']);
  payload.once('error', () => (eventStream ? res.end() : res.destroy()));
  // A client that leaves aborts the upstream request through request.clientGone.
  payload.pipe(res);
  return reply;
}

function parseJson(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString()) as unknown;
  } catch {
    return undefined;
  }
}

// Fastify's own body errors, mapped onto the proxy's table.
const FASTIFY_ERRORS: Record<string, ProxyError['reason']> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'PARSE_ERROR',
};

function replyWithError(error: FastifyError | ProxyError, request: FastifyRequest, reply: FastifyReply) {
  const proxyError =
    error instanceof ProxyError
      ? error
      : new ProxyError(FASTIFY_ERRORS[error.code] ?? 'INTERNAL_ERROR', { cause: error });
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
  return reply
    .code(proxyError.status)
    .header('content-type', 'application/json')
    .send(errorBody(proxyError.reason, proxyError.requestId, proxyError.detail));
}
