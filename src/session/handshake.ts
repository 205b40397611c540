/**
 * Re-establishing a lost upstream session: replay the client's own initialize, consume the
 * upstream's result, send notifications/initialized, and adopt the new upstream id. One replay
 * per loss, however many requests of the session discover the loss at once (single flight).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyBaseLogger as Logger } from 'fastify';
import { ProxyError } from '../errors.js';
import { initializeOutcomeOf } from '../mcp/initialize-result.js';
import { LAST_EVENT_ID_HEADER, POST_ACCEPT, PROTOCOL_VERSION_HEADER, SESSION_HEADER } from '../mcp/protocol.js';
import { toUpstreamHeaders } from '../proxy/headers.js';
import { readBody, type UpstreamClient } from '../upstream/client.js';
import { readUpstreamId, type Fingerprint } from './ids.js';
import type { Session } from './store.js';

/** An InitializeResult is small; anything bigger than this is not one. */
export const MAX_INITIALIZE_ANSWER_BYTES = 1024 * 1024;

const INITIALIZED_NOTIFICATION = '{"jsonrpc":"2.0","method":"notifications/initialized"}';

export interface HandshakeOptions {
  readonly upstream: UpstreamClient;
  readonly fingerprint: Fingerprint;
  /** Deadline for each upstream exchange of a replay (initialize answers may arrive over SSE). */
  readonly timeoutMs: number;
}

export interface Handshake {
  /**
   * Make the upstream session live again after a request sent at `seenGeneration` found it lost.
   * Resolves at once if another request already re-established it since; joins a replay in
   * flight; otherwise runs one. `clientHeaders` carry the caller's credentials to the upstream.
   */
  recover(session: Session, seenGeneration: number, clientHeaders: IncomingHttpHeaders, log: Logger): Promise<void>;
}

export function createHandshake(options: HandshakeOptions): Handshake {
  const { upstream, fingerprint, timeoutMs } = options;
  let replays = 0;

  async function replay(session: Session, clientHeaders: IncomingHttpHeaders, log: Logger): Promise<void> {
    // A proxy-owned JSON-RPC id: the answer is consumed here and never reaches a client.
    const requestId = `mcp-session-proxy-replay-${++replays}`;
    const headers = toUpstreamHeaders(clientHeaders, undefined);
    delete headers[LAST_EVENT_ID_HEADER];
    headers['content-type'] = 'application/json';
    headers.accept = POST_ACCEPT;
    headers[PROTOCOL_VERSION_HEADER] = session.protocolVersion;
    const signal = AbortSignal.timeout(timeoutMs);

    const answer = await upstream.request({
      method: 'POST',
      headers,
      body: `{"jsonrpc":"2.0","id":${JSON.stringify(requestId)},"method":"initialize","params":${session.initParams}}`,
      signal,
    });
    const text = (await readBody(answer.body, MAX_INITIALIZE_ANSWER_BYTES, 'REPLAY_FAILED', signal)).toString();
    const upstreamStatus = answer.statusCode;
    log.trace({ sid: session.logId, status: upstreamStatus, headers: answer.headers }, 'replayed initialize answered');
    const outcome =
      upstreamStatus >= 200 && upstreamStatus < 300
        ? initializeOutcomeOf(text, answer.headers['content-type'], requestId)
        : undefined;
    if (outcome === undefined) throw new ProxyError('REPLAY_FAILED', { detail: { upstreamStatus } });
    const upstreamId = readUpstreamId(answer.headers[SESSION_HEADER]);
    if (upstreamId.kind === 'invalid') throw new ProxyError('UPSTREAM_BAD_SESSION_ID');
    const newId = upstreamId.kind === 'valid' ? upstreamId.id : undefined;

    // Strict servers reject every request until the handshake is complete.
    if (newId !== undefined) headers[SESSION_HEADER] = newId;
    headers[PROTOCOL_VERSION_HEADER] = outcome.protocolVersion;
    const ack = await upstream.request({ method: 'POST', headers, body: INITIALIZED_NOTIFICATION, signal });
    await ack.body.dump();
    if (ack.statusCode < 200 || ack.statusCode >= 300) {
      throw new ProxyError('REPLAY_FAILED', { detail: { upstreamStatus: ack.statusCode } });
    }

    session.upstreamId = newId;
    session.protocolVersion = outcome.protocolVersion;
    session.generation++;
    log.info(
      { sid: session.logId, upstream: newId === undefined ? null : fingerprint(newId), generation: session.generation },
      'upstream session re-established',
    );
  }

  return {
    async recover(session, seenGeneration, clientHeaders, log) {
      if (session.generation !== seenGeneration) return;
      session.replaying ??= replay(session, clientHeaders, log).finally(() => {
        session.replaying = undefined;
      });
      await session.replaying;
    },
  };
}
