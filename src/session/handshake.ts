/**
 * The upstream side of a session's life: re-establishing a lost upstream session (replay the
 * client's own initialize, consume the upstream's result, send notifications/initialized, adopt
 * the new upstream id), once per loss however many requests discover it at once (single flight),
 * and ending upstream sessions the proxy no longer needs.
 */
import type { FastifyBaseLogger as Logger } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import { ProxyError, UpstreamAnswer } from '../errors.js';
import { initializeOutcomeOf } from '../mcp/initialize-result.js';
import { LAST_EVENT_ID_HEADER, POST_ACCEPT, PROTOCOL_VERSION_HEADER, SESSION_HEADER } from '../mcp/protocol.js';
import { toUpstreamHeaders } from '../proxy/headers.js';
import { readBody, toProxyError, type UpstreamClient } from '../upstream/client.js';
import type { LossSignal } from '../mcp/loss.js';
import type { Metrics } from '../observability/metrics.js';
import { readUpstreamId, type Fingerprint, type UpstreamSessionId } from './ids.js';
import type { Session } from './store.js';

/** An InitializeResult is small; anything bigger than this is not one. */
export const MAX_INITIALIZE_ANSWER_BYTES = 1024 * 1024;

const INITIALIZED_NOTIFICATION = '{"jsonrpc":"2.0","method":"notifications/initialized"}';

// An auth challenge must reach the client as it is, so that its OAuth flow can start.
const AUTH_CHALLENGE_STATUSES = new Set([401, 403]);

export interface HandshakeOptions {
  readonly upstream: UpstreamClient;
  readonly fingerprint: Fingerprint;
  readonly metrics: Metrics;
  /** Deadline for each upstream exchange of a replay (initialize answers may arrive over SSE). */
  readonly timeoutMs: number;
}

export interface Handshake {
  /**
   * Make the upstream session live again after a request sent at `seenGeneration` found it lost.
   * Waits for a newer replay if one is in flight, joins the one for this loss, or runs it.
   * `clientHeaders` carry the caller's credentials to the upstream. Throws SESSION_NOT_FOUND
   * for a session that ended meanwhile (a DELETE must not be undone by a replay).
   */
  recover(
    session: Session,
    seenGeneration: number,
    signal: LossSignal,
    clientHeaders: IncomingHttpHeaders,
    log: Logger,
  ): Promise<void>;
  /**
   * Send notifications/initialized for a session whose client sent its own to another replica
   * (a strict upstream refuses every request until it has one). Once per session, shared by
   * concurrent requests; a failure is left to the request that follows, which meets it as a
   * lost session if that is what it was.
   */
  acknowledge(session: Session, clientHeaders: IncomingHttpHeaders, log: Logger): Promise<void>;
  /** Tell the upstream an upstream session is over (best effort; its answer does not matter). */
  endUpstream(upstreamId: UpstreamSessionId, clientHeaders: IncomingHttpHeaders | undefined, log: Logger): Promise<void>;
}

export function createHandshake(options: HandshakeOptions): Handshake {
  const { upstream, fingerprint, timeoutMs, metrics } = options;
  let replays = 0;

  async function replay(session: Session, clientHeaders: IncomingHttpHeaders, log: Logger): Promise<void> {
    // A proxy-owned JSON-RPC id: the answer is consumed here and never reaches a client.
    const requestId = `mcp-session-proxy-replay-${++replays}`;
    const headers = upstreamHeaders(session, clientHeaders);
    delete headers[SESSION_HEADER];
    const signal = AbortSignal.timeout(timeoutMs);

    const answer = await upstream.request({
      method: 'POST',
      headers,
      body: `{"jsonrpc":"2.0","id":${JSON.stringify(requestId)},"method":"initialize","params":${session.initParams}}`,
      signal,
    });
    const body = await readBody(answer.body, MAX_INITIALIZE_ANSWER_BYTES, 'REPLAY_FAILED', signal);
    const upstreamStatus = answer.statusCode;
    log.trace({ sid: session.logId, status: upstreamStatus, headers: answer.headers }, 'replayed initialize answered');
    if (AUTH_CHALLENGE_STATUSES.has(upstreamStatus)) throw new UpstreamAnswer(upstreamStatus, answer.headers, body);
    const outcome =
      upstreamStatus >= 200 && upstreamStatus < 300
        ? initializeOutcomeOf(body.toString(), answer.headers['content-type'], requestId)
        : undefined;
    if (outcome === undefined) throw new ProxyError('REPLAY_FAILED', { detail: { upstreamStatus } });
    const upstreamId = readUpstreamId(answer.headers[SESSION_HEADER]);
    if (upstreamId.kind === 'invalid') throw new ProxyError('UPSTREAM_BAD_SESSION_ID');
    const newId = upstreamId.kind === 'valid' ? upstreamId.id : undefined;

    // Strict servers reject every request until the handshake is complete.
    if (newId !== undefined) headers[SESSION_HEADER] = newId;
    headers[PROTOCOL_VERSION_HEADER] = outcome.protocolVersion;
    const ackStatus = await sendInitialized(headers, signal);
    if (ackStatus < 200 || ackStatus >= 300) {
      throw new ProxyError('REPLAY_FAILED', { detail: { upstreamStatus: ackStatus } });
    }

    if (session.ended) {
      // Ended (DELETE, eviction) while the replay ran: the new upstream session has no owner.
      if (newId !== undefined) void endUpstream(newId, clientHeaders, log);
      throw new ProxyError('SESSION_NOT_FOUND');
    }
    if (outcome.protocolVersion !== session.protocolVersion) {
      // The client keeps speaking the version it negotiated; worth knowing when calls then fail.
      log.warn({ sid: session.logId }, 'replayed initialize negotiated another protocol version');
    }
    session.upstreamId = newId;
    session.protocolVersion = outcome.protocolVersion;
    session.needsReplay = false;
    session.upstreamInitialized = true;
    session.generation++;
    log.info(
      { sid: session.logId, upstream: newId === undefined ? null : fingerprint(newId), generation: session.generation },
      'upstream session re-established',
    );
  }

  async function sendInitialized(headers: Record<string, string | string[]>, signal: AbortSignal): Promise<number> {
    const answer = await upstream.request({ method: 'POST', headers, body: INITIALIZED_NOTIFICATION, signal });
    await answer.body.dump();
    return answer.statusCode;
  }

  function upstreamHeaders(session: Session, clientHeaders: IncomingHttpHeaders) {
    const headers = toUpstreamHeaders(clientHeaders, session.upstreamId);
    delete headers[LAST_EVENT_ID_HEADER];
    headers['content-type'] = 'application/json';
    headers.accept = POST_ACCEPT;
    headers[PROTOCOL_VERSION_HEADER] = session.protocolVersion;
    return headers;
  }

  async function endUpstream(
    upstreamId: UpstreamSessionId,
    clientHeaders: IncomingHttpHeaders | undefined,
    log: Logger,
  ): Promise<void> {
    try {
      const answer = await upstream.request({
        method: 'DELETE',
        headers: toUpstreamHeaders(clientHeaders ?? {}, upstreamId),
        signal: AbortSignal.timeout(timeoutMs),
      });
      await answer.body.dump();
      log.debug({ upstream: fingerprint(upstreamId), status: answer.statusCode }, 'upstream session ended');
    } catch (error) {
      log.debug({ upstream: fingerprint(upstreamId), reason: toProxyError(error).reason }, 'upstream DELETE failed');
    }
  }

  return {
    async recover(session, seenGeneration, signal, clientHeaders, log) {
      if (session.ended) throw new ProxyError('SESSION_NOT_FOUND');
      if (session.generation === seenGeneration && session.replaying === undefined) {
        metrics.replay(signal);
        session.replaying = replay(session, clientHeaders, log)
          .catch((error: unknown) => {
            if (!(error instanceof ProxyError && error.reason === 'SESSION_NOT_FOUND')) metrics.replayFailed();
            throw error;
          })
          .finally(() => {
            session.replaying = undefined;
          });
      }
      // Either this loss's replay, or a newer one that will hand out the id to retry with.
      await session.replaying;
      if (session.ended) throw new ProxyError('SESSION_NOT_FOUND');
    },
    acknowledge(session, clientHeaders, log) {
      if (session.acknowledging === undefined && !session.upstreamInitialized) {
        session.upstreamInitialized = true;
        session.acknowledging = sendInitialized(upstreamHeaders(session, clientHeaders), AbortSignal.timeout(timeoutMs))
          .then(
            (status) => log.debug({ sid: session.logId, status }, 'sent notifications/initialized for the client'),
            (error: unknown) => log.debug({ sid: session.logId, reason: toProxyError(error).reason }, 'notifications/initialized failed'),
          )
          .finally(() => {
            session.acknowledging = undefined;
          });
      }
      return session.acknowledging ?? Promise.resolve();
    },
    endUpstream,
  };
}
