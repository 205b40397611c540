/**
 * UpstreamLink: one upstream MCP session, from its initialize to its end. It owns the upstream's
 * id, the generation (bumped at each re-establishment), the negotiated protocol version and a
 * closed state, and it runs the whole upstream conversation: notifications/initialized (the
 * client's, or its own), the single-flight replay of initialize after a loss, following rotated
 * ids, and ending the upstream session. It knows nothing of client sessions: whoever holds it
 * calls `send` and streams the answer.
 *
 *   openLink (the client's initialize) ─▶ awaiting-initialized ─┬─ the client's initialized ─▶ live
 *                                                               └─ another message ─▶ acknowledging ─▶ live
 *   a sealed id reopened, or a session re-authenticated ─▶ unopened ─▶ replaying ─▶ live
 *                                                               (a failed replay: back to unopened)
 *   live ─ loss ─▶ unopened                                       anything ─ end ─▶ ended
 */
import type { Logger } from 'pino';
import { ProxyError, UpstreamAnswer, type JsonRpcId, type ProxyErrorReason } from '../errors.js';
import { initializeOutcomeOf } from '../mcp/initialize-result.js';
import { classifyLoss, mayBeLoss, type LossRules, type LossSignal, type ReplayReason } from '../mcp/loss.js';
import { isAuthChallenge, LAST_EVENT_ID_HEADER, POST_ACCEPT, PROTOCOL_VERSION_HEADER, SESSION_HEADER } from '../mcp/protocol.js';
import type { Metrics } from '../observability/metrics.js';
import type { Tracing } from '../observability/tracing.js';
import { readUpstreamId, type Fingerprint, type UpstreamSessionId } from '../session/ids.js';
import {
  discard,
  drain,
  readBody,
  toProxyError,
  type CancelSignal,
  type Cancellation,
  type UpstreamClient,
  type UpstreamHeaders,
  type UpstreamResponse,
} from './client.js';

/** Why a link is opening: a replay, or a pooled link's first use (not a replay: nothing was lost). */
export type OpenReason = ReplayReason | 'pooled';

export type LinkState =
  /** No upstream session in this process (a reopened sealed id, a new pooled link, a failed replay): open first. */
  | { readonly kind: 'unopened'; readonly reason: OpenReason }
  /** initialize + notifications/initialized in flight; every message waits for it. */
  | {
      readonly kind: 'replaying';
      readonly reason: OpenReason;
      readonly flight: Promise<void>;
      /** The replay's span (its traceparent) when it is traced: messages that wait for it link to it. */
      readonly traced: string | undefined;
    }
  /** The upstream answered the client's initialize; its notifications/initialized is next. */
  | { readonly kind: 'awaiting-initialized' }
  /** The proxy sends notifications/initialized itself (the client's went to another replica). */
  | { readonly kind: 'acknowledging'; readonly flight: Promise<void> }
  | { readonly kind: 'live' }
  /** Ended (DELETE, eviction, expiry): never revived; a replay that finishes ends its new session. */
  | { readonly kind: 'ended' };

type Kind = LinkState['kind'];

// Stateless states are shared, so the hot path never allocates one.
const LIVE: LinkState = { kind: 'live' };
const ENDED: LinkState = { kind: 'ended' };
const AWAITING_INITIALIZED: LinkState = { kind: 'awaiting-initialized' };

export interface LinkDeps {
  readonly upstream: UpstreamClient;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly fingerprint: Fingerprint;
  readonly loss: LossRules;
  /** Deadline of each exchange of a handshake (initialize answers may arrive over SSE). */
  readonly timeoutMs: number;
  /** Clock (ms), injectable for tests: replays log how long they took. */
  readonly now: () => number;
  /** Told of every loss: the upstream restarted or forgot sessions (the era probe asks again). */
  readonly onLoss?: () => void;
  /** Spans for replays and pooled openings (absent or off: none). */
  readonly tracing?: Tracing;
}

/** One message for the upstream session. */
export interface Outgoing {
  /**
   * The client's headers as the upstream must see them, without a session id: the link sets the
   * upstream's own on each try (this object is the request's own, so it is written in place).
   */
  readonly headers: UpstreamHeaders;
  /** A POST body (as received, or as the proxy rewrote it); undefined for a GET (the event stream). */
  readonly body: Buffer | string | undefined;
  /** The JSON-RPC message the body holds, as the flow parsed or built it (tracing names spans from it). */
  readonly message?: unknown;
  /** The client's own notifications/initialized: sent only while the upstream session needs one. */
  readonly initialized: boolean;
  /**
   * Send the link's negotiated protocol version as MCP-Protocol-Version (callers that are not the
   * session's own client: modern requests on a pooled link); else the client's header goes as is.
   */
  readonly versionFromLink: boolean;
  readonly cancel: CancelSignal;
  /** Set by the link when this message waited for the upstream session to be (re-)established. */
  replayed: ReplayReason | undefined;
}

/** What waiting for the upstream session reads of a message, and tells it (`replayed`). */
type Readying = Pick<Outgoing, 'headers' | 'initialized'> & { replayed: ReplayReason | undefined };

/** An upstream answer, its body still streaming, or already read because it might have been a loss. */
export interface Answer {
  readonly response: UpstreamResponse;
  readonly payload: UpstreamResponse['body'] | Buffer;
}

/** Told of a link's turns that long-lived users (a shared GET stream) must follow. */
export interface LinkWatcher {
  /** A new upstream session replaced the old one (a replay after a loss): streams on the old one hear nothing more. */
  renewed(generation: number): void;
  /** The link ended (DELETE, eviction, expiry, shutdown): it will never carry anything again. */
  ended(): void;
}

/** An InitializeResult is small; anything bigger than this is not one. */
const MAX_INITIALIZE_ANSWER_BYTES = 1024 * 1024;
// Loss errors are short JSON-RPC errors; reading more than this to classify one is never needed.
const MAX_ERROR_ANSWER_BYTES = 64 * 1024;
const INITIALIZED_NOTIFICATION = '{"jsonrpc":"2.0","method":"notifications/initialized"}';
// What the proxy's own handshake messages are, for tracing (their bodies are built as text).
const INITIALIZE_RPC = { method: 'initialize' };
const INITIALIZED_RPC = { method: 'notifications/initialized' };
const SET_LEVEL_RPC = { method: 'logging/setLevel' };

let links = 0;
let replays = 0;

/** How a link starts. */
export type LinkStart = { readonly protocolVersion: string } &
  /** The client's own initialize was answered (openLink); its notifications/initialized is next. */
  (
    | { readonly kind: 'initialized-by-client'; readonly upstreamId: UpstreamSessionId | undefined }
    /**
     * A sealed id reopened in this process, or a client session re-authenticated: replay the
     * client's initialize before its first message.
     */
    | { readonly kind: 'reopened' | 'reauthenticated' }
    /**
     * A pooled link for callers without a session: initialize (with `protocolVersion` requested) on
     * first use; `logLevel`, when set, is asked of the upstream session with logging/setLevel.
     */
    | { readonly kind: 'pooled'; readonly logLevel: string | undefined }
  );

export class UpstreamLink {
  /** Process-unique and log-safe: log lines of the link name it, never its upstream id. */
  readonly label = ++links;
  private state: LinkState;
  private upstreamId: UpstreamSessionId | undefined;
  /** Bumped at each re-establishment, to tell stale answers and failures from current ones. */
  private generation = 0;
  private negotiated: string;
  /**
   * A pooled link's InitializeResult (the last one): what server/discover is made of. Client
   * sessions' links never need it and do not keep it (it can hold kilobytes of instructions).
   */
  private serverResult: Record<string, unknown> | undefined;
  private readonly pooled: boolean;
  private readonly logLevel: string | undefined;
  /** Counter for the JSON-RPC ids of requests this link rewrites (callers sharing it). */
  private requests = 0;
  /**
   * Few (a pooled link's notification feed, if it has listeners); usually none, so made on first
   * use: an empty Set in every client session's link cost about 200 bytes per session
   * (bench/README.md, memory per session).
   */
  private watchers: Set<LinkWatcher> | undefined;

  constructor(
    private readonly deps: LinkDeps,
    /** The initialize params as JSON text: every (re-)establishment sends them verbatim. */
    readonly initParams: string,
    start: LinkStart,
  ) {
    this.negotiated = start.protocolVersion;
    this.pooled = start.kind === 'pooled';
    this.logLevel = start.kind === 'pooled' ? start.logLevel : undefined;
    if (start.kind === 'initialized-by-client') {
      this.state = AWAITING_INITIALIZED;
      this.upstreamId = start.upstreamId;
    } else {
      this.state = { kind: 'unopened', reason: start.kind };
    }
  }

  /** The protocol version the upstream negotiated (at the last initialize). */
  get protocolVersion(): string {
    return this.negotiated;
  }

  /** A JSON-RPC id no other request on this link's upstream sessions uses. */
  nextRequestId(): string {
    return `mcp-session-proxy-${this.label}-${++this.requests}`;
  }

  /** A pooled link's upstream serverInfo (from its last InitializeResult), once open. */
  get serverInfo(): Record<string, unknown> | undefined {
    const info = this.serverResult?.serverInfo;
    return typeof info === 'object' && info !== null ? (info as Record<string, unknown>) : undefined;
  }

  /**
   * A message of the proxy's own on the current upstream session (a cancellation, the answer to a
   * server request no client can take): best effort, never replayed or retried.
   */
  async notify(body: string, clientHeaders: UpstreamHeaders): Promise<void> {
    if (this.state !== LIVE) return;
    const { deps } = this;
    const headers = handshakeHeaders(clientHeaders, this.negotiated);
    if (this.upstreamId !== undefined) headers[SESSION_HEADER] = this.upstreamId;
    try {
      const answer = await deps.upstream.request({ method: 'POST', headers, body, signal: AbortSignal.timeout(deps.timeoutMs) });
      await drain(answer.body);
    } catch (error) {
      deps.log.debug({ link: this.label, reason: toProxyError(error).reason }, 'message to the upstream session failed');
    }
  }

  /** A pooled link's InitializeResult, opening the upstream session first if need be. */
  async describe(out: Outgoing): Promise<Record<string, unknown>> {
    if (!this.pooled) throw new Error('only pooled links keep the InitializeResult');
    await this.ready(out);
    return this.serverResult!;
  }

  /**
   * Open the upstream session now, with these credentials, before any message needs it (a
   * re-authentication proves the new credentials first). Rejects as a replay does: an auth
   * challenge as the upstream's own answer.
   */
  async open(headers: UpstreamHeaders): Promise<void> {
    await this.ready({ headers, initialized: false, replayed: undefined });
  }

  get kind(): Kind {
    return this.state.kind;
  }

  /** Which upstream session this is: bumped at each (re-)establishment. */
  get currentGeneration(): number {
    return this.generation;
  }

  /** Follow this link's renewals and its end; the returned function stops following. */
  watch(watcher: LinkWatcher): () => void {
    (this.watchers ??= new Set()).add(watcher);
    return () => void this.watchers?.delete(watcher);
  }

  /**
   * Send one message: wait until the upstream session is ready (replaying, or sending
   * notifications/initialized, first if need be), exchange, and if the upstream has lost the
   * session, re-establish it (once, however many messages meet the loss) and retry once.
   * Resolves to undefined when the message was the client's notifications/initialized and the
   * upstream session already had one (nothing was sent; the client gets 202).
   */
  async send(out: Outgoing): Promise<Answer | undefined> {
    const arrivedAt = this.generation;
    // The hot path: a live session and an ordinary message go straight to the exchange.
    if (this.state !== LIVE || out.initialized) {
      if (!(await this.ready(out))) return undefined;
    }
    let sentAt = this.generation;
    // Re-established since the client sent this: the old session's event ids mean nothing now.
    let answer = await this.exchange(out, sentAt !== arrivedAt);
    if (answer.loss !== undefined) {
      // The upstream did not process the message: it no longer knows the session.
      this.deps.log.info({ link: this.label, signal: answer.loss }, 'upstream lost the session; replaying initialize');
      this.deps.onLoss?.();
      this.lost(sentAt, answer.loss);
      // The client's notifications/initialized is then the replay's to send.
      if (!(await this.ready(out))) return undefined;
      sentAt = this.generation;
      // At most one retry: a second loss goes back to the client as the upstream said it.
      answer = await this.exchange(out, true);
    }
    if (answer.response.statusCode >= 200 && answer.response.statusCode < 300) this.followRotation(answer, sentAt);
    return answer;
  }

  /**
   * End the upstream session (best effort: its answer does not matter). `headers` carry the
   * client's credentials when a client asked for the end. A replay in flight ends the session
   * it makes itself.
   */
  async end(headers: UpstreamHeaders = {}): Promise<void> {
    const previous = this.state;
    if (previous.kind === 'ended') return;
    this.state = ENDED;
    const watchers = this.watchers;
    this.watchers = undefined;
    for (const watcher of watchers ?? []) watcher.ended();
    if (previous.kind === 'replaying') return void (await previous.flight.catch(ignore));
    if (previous.kind === 'acknowledging') await previous.flight;
    if (this.upstreamId !== undefined && previous.kind !== 'unopened') await this.endUpstream(this.upstreamId, headers);
  }

  /**
   * Wait until the upstream session can take `out`. Returns false for the client's
   * notifications/initialized when the upstream session has had one already.
   */
  private async ready(out: Readying): Promise<boolean> {
    // Whether this message started the replay it waits for (else it waits for another's).
    let started = false;
    for (;;) {
      const state = this.state;
      switch (state.kind) {
        case 'live':
          return !out.initialized;
        case 'ended':
          throw new ProxyError('SESSION_NOT_FOUND');
        case 'awaiting-initialized':
          if (out.initialized) {
            this.state = LIVE;
            return true;
          }
          this.acknowledge(out.headers);
          break;
        case 'unopened':
          if (state.reason !== 'pooled') out.replayed = state.reason;
          this.replay(state.reason, out.headers);
          started = true;
          break;
        case 'replaying': {
          if (state.reason !== 'pooled') out.replayed ??= state.reason;
          const { tracing } = this.deps;
          // A failed replay fails every message that waited for it; the next one tries again.
          await (started || tracing?.on !== true ? state.flight : tracing.wait('replay wait', out.headers, state.traced, state.flight));
          break;
        }
        case 'acknowledging':
          await state.flight;
          break;
      }
    }
  }

  /** live → unopened: a message sent at `sentAt` met a loss, unless the session was re-established since. */
  private lost(sentAt: number, signal: LossSignal): void {
    if (this.generation !== sentAt || this.state !== LIVE) return;
    this.state = { kind: 'unopened', reason: signal };
    // Gone upstream: nothing to send it, nor to DELETE.
    this.upstreamId = undefined;
  }

  /** unopened → replaying → live (or back to unopened if the upstream refuses). */
  private replay(reason: OpenReason, clientHeaders: UpstreamHeaders): void {
    if (reason !== 'pooled') this.deps.metrics.replay(reason);
    const { tracing } = this.deps;
    // Traced: the handshake's exchanges are the children of a span under the request that needed it.
    let traced: string | undefined;
    const opening =
      tracing?.on === true
        ? tracing.step(
            reason === 'pooled' ? 'pool miss' : 'replay initialize',
            { 'mcp_session_proxy.replay.reason': reason },
            clientHeaders,
            (headers, own) => {
              traced = own;
              return this.reestablish(reason, headers as UpstreamHeaders);
            },
          )
        : this.reestablish(reason, clientHeaders);
    const flight = opening.catch((error: unknown) => {
      if (this.state.kind !== 'ended') {
        this.state = { kind: 'unopened', reason };
        if (reason !== 'pooled') this.deps.metrics.replayFailed();
      }
      throw error;
    });
    // Waiters attach their own handlers; this one keeps a failure nobody awaits from crashing.
    flight.catch(ignore);
    this.state = { kind: 'replaying', reason, flight, traced };
  }

  /** initialize (the client's own params) + notifications/initialized on a new upstream session. */
  private async reestablish(reason: OpenReason, clientHeaders: UpstreamHeaders): Promise<void> {
    const { deps } = this;
    const started = deps.now();
    const headers = handshakeHeaders(clientHeaders, this.negotiated);
    const signal = AbortSignal.timeout(deps.timeoutMs);
    // A proxy-owned JSON-RPC id: the answer is consumed here and never reaches a client.
    const requestId = `mcp-session-proxy-replay-${++replays}`;
    const params = deps.tracing?.on === true ? deps.tracing.inParams(this.initParams, headers) : this.initParams;
    const body = `{"jsonrpc":"2.0","id":${JSON.stringify(requestId)},"method":"initialize","params":${params}}`;
    const result = await initialize(deps.upstream, { headers, body, requestId, signal, rpc: INITIALIZE_RPC }, 'REPLAY_FAILED');
    if (result.kind === 'refused') {
      const status = result.response.statusCode;
      if (isAuthChallenge(status)) throw new UpstreamAnswer(status, result.response.headers, result.body);
      throw new ProxyError('REPLAY_FAILED', { detail: { upstreamStatus: status } });
    }
    // Strict servers reject every request until the handshake is complete.
    if (result.upstreamId !== undefined) headers[SESSION_HEADER] = result.upstreamId;
    headers[PROTOCOL_VERSION_HEADER] = result.protocolVersion;
    const acknowledged = await this.sendInitialized(headers, signal);
    if (acknowledged < 200 || acknowledged >= 300) {
      throw new ProxyError('REPLAY_FAILED', { detail: { upstreamStatus: acknowledged } });
    }
    // A pooled link's log level, asked once per upstream session (legacy servers keep it per session).
    if (
      this.logLevel !== undefined &&
      typeof result.result.capabilities === 'object' &&
      result.result.capabilities !== null &&
      'logging' in result.result.capabilities
    ) {
      await this.setLevel(headers, signal);
    }
    if (this.state.kind === 'ended') {
      // Ended (DELETE, eviction) while the replay ran: the new upstream session has no owner.
      if (result.upstreamId !== undefined) await this.endUpstream(result.upstreamId, clientHeaders);
      throw new ProxyError('SESSION_NOT_FOUND');
    }
    if (result.protocolVersion !== this.negotiated) {
      // The client keeps speaking the version it negotiated; worth knowing when calls then fail.
      deps.log.warn({ link: this.label }, 'replayed initialize negotiated another protocol version');
    }
    this.upstreamId = result.upstreamId;
    this.negotiated = result.protocolVersion;
    if (this.pooled) this.serverResult = result.result;
    this.generation++;
    this.state = LIVE;
    if (this.watchers !== undefined) for (const watcher of [...this.watchers]) watcher.renewed(this.generation);
    deps.log.info(
      {
        link: this.label,
        upstream: result.upstreamId === undefined ? null : deps.fingerprint(result.upstreamId),
        generation: this.generation,
        ms: Math.round(deps.now() - started),
      },
      reason === 'pooled' ? 'pooled upstream session opened' : 'upstream session re-established',
    );
  }

  /**
   * awaiting-initialized → acknowledging → live: the client's notifications/initialized went to
   * another replica, and a strict upstream refuses everything until it has one. A failure is left
   * to the message that follows, which meets it as a lost session if that is what it was.
   */
  private acknowledge(clientHeaders: UpstreamHeaders): void {
    const headers = handshakeHeaders(clientHeaders, this.negotiated);
    if (this.upstreamId !== undefined) headers[SESSION_HEADER] = this.upstreamId;
    const flight = this.sendInitialized(headers, AbortSignal.timeout(this.deps.timeoutMs)).then(
      (status) => this.deps.log.debug({ link: this.label, status }, 'sent notifications/initialized for the client'),
      (error: unknown) => this.deps.log.debug({ link: this.label, reason: toProxyError(error).reason }, 'notifications/initialized failed'),
    );
    this.state = { kind: 'acknowledging', flight: flight.finally(() => this.moveTo(['acknowledging'], LIVE)) };
  }

  private async setLevel(headers: UpstreamHeaders, signal: AbortSignal): Promise<void> {
    const body = JSON.stringify({ jsonrpc: '2.0', id: this.nextRequestId(), method: 'logging/setLevel', params: { level: this.logLevel } });
    const answer = await this.deps.upstream.request({ method: 'POST', headers, body, signal, rpc: SET_LEVEL_RPC });
    await drain(answer.body);
  }

  private async sendInitialized(headers: UpstreamHeaders, signal: AbortSignal): Promise<number> {
    const answer = await this.deps.upstream.request({
      method: 'POST',
      headers,
      body: INITIALIZED_NOTIFICATION,
      signal,
      rpc: INITIALIZED_RPC,
    });
    await drain(answer.body);
    return answer.statusCode;
  }

  /**
   * One upstream round trip with the current upstream id. Answers that may signal a loss are read
   * whole to classify them: a loss comes back as its signal, anything else as the answer.
   */
  private async exchange(out: Outgoing, afterReplay: boolean): Promise<Answer & { readonly loss?: LossSignal }> {
    const { deps } = this;
    const headers = out.headers;
    if (this.upstreamId === undefined) delete headers[SESSION_HEADER];
    else headers[SESSION_HEADER] = this.upstreamId;
    if (out.versionFromLink) headers[PROTOCOL_VERSION_HEADER] = this.negotiated;
    // Event ids belong to an upstream session that is gone (lost, or another replica's).
    if (afterReplay) delete headers[LAST_EVENT_ID_HEADER];
    const traced = deps.log.isLevelEnabled('trace');
    // Whole header maps at trace: the logger's redaction removes ids, credentials and cookies.
    if (traced) deps.log.trace({ link: this.label, headers }, 'to upstream');
    const response = await deps.upstream.request({
      method: out.body === undefined ? 'GET' : 'POST',
      headers,
      ...(out.body === undefined ? {} : { body: out.body }),
      signal: out.cancel,
      rpc: out.message,
    });
    if (traced) deps.log.trace({ link: this.label, status: response.statusCode, headers: response.headers }, 'from upstream');
    if (!mayBeLoss(response.statusCode, deps.loss)) return { response, payload: response.body };
    const payload = await readBody(response.body, MAX_ERROR_ANSWER_BYTES, 'UPSTREAM_UNAVAILABLE', out.cancel);
    // A bare 404 to a GET often means "no GET stream here", not a lost session.
    const loss = classifyLoss(response.statusCode, payload.toString(), deps.loss, out.body !== undefined);
    return loss === undefined ? { response, payload } : { response, payload, loss };
  }

  /** Upstreams that issue a new id on a later answer: follow the newest, the client never notices. */
  private followRotation(answer: Answer, sentAt: number): void {
    const header = answer.response.headers[SESSION_HEADER];
    if (header === undefined || header === this.upstreamId) return;
    const offered = readUpstreamId(header);
    if (offered.kind !== 'valid') {
      // Storing it would poison every later message of the session.
      if (!Buffer.isBuffer(answer.payload)) discard(answer.payload);
      throw new ProxyError('UPSTREAM_BAD_SESSION_ID');
    }
    // An answer to a message sent before a replay carries an id from a session that is gone.
    if (sentAt === this.generation && this.state === LIVE) this.upstreamId = offered.id;
  }

  private async endUpstream(upstreamId: UpstreamSessionId, clientHeaders: UpstreamHeaders): Promise<void> {
    const { deps } = this;
    const headers: UpstreamHeaders = { ...clientHeaders, [SESSION_HEADER]: upstreamId };
    delete headers[LAST_EVENT_ID_HEADER];
    try {
      const answer = await deps.upstream.request({ method: 'DELETE', headers, signal: AbortSignal.timeout(deps.timeoutMs) });
      await drain(answer.body);
      deps.log.debug({ link: this.label, upstream: deps.fingerprint(upstreamId), status: answer.statusCode }, 'upstream session ended');
    } catch (error) {
      deps.log.debug(
        { link: this.label, upstream: deps.fingerprint(upstreamId), reason: toProxyError(error).reason },
        'upstream DELETE failed',
      );
    }
  }

  /** Move to `to` only from one of `from`; whether it moved. */
  private moveTo(from: readonly Kind[], to: LinkState): boolean {
    if (!from.includes(this.state.kind)) return false;
    this.state = to;
    return true;
  }
}

/** What the upstream made of an initialize. */
export type Initialized =
  /** Not an InitializeResult (unsupported version, auth, a server error...): its answer, read whole. */
  | { readonly kind: 'refused'; readonly response: UpstreamResponse; readonly body: Buffer }
  | {
      readonly kind: 'accepted';
      readonly response: UpstreamResponse;
      readonly body: Buffer;
      readonly protocolVersion: string;
      readonly upstreamId: UpstreamSessionId | undefined;
      /** The InitializeResult itself. */
      readonly result: Record<string, unknown>;
    };

/**
 * Send an initialize and read its answer whole (one small result, as JSON or a short SSE stream):
 * the one place that does it, for the client's own initialize and for every replay.
 */
export async function initialize(
  upstream: UpstreamClient,
  request: { headers: UpstreamHeaders; body: Buffer | string; requestId: JsonRpcId; signal: CancelSignal; rpc?: unknown },
  tooLarge: ProxyErrorReason,
): Promise<Initialized> {
  const { signal } = request;
  const response = await upstream.request({
    method: 'POST',
    headers: request.headers,
    body: request.body,
    signal,
    rpc: request.rpc ?? INITIALIZE_RPC,
  });
  const body = await readBody(response.body, MAX_INITIALIZE_ANSWER_BYTES, tooLarge, signal);
  const ok = response.statusCode >= 200 && response.statusCode < 300;
  const outcome = ok ? initializeOutcomeOf(body.toString(), response.headers['content-type'], request.requestId) : undefined;
  if (outcome === undefined) return { kind: 'refused', response, body };
  const upstreamId = readUpstreamId(response.headers[SESSION_HEADER]);
  if (upstreamId.kind === 'invalid') throw new ProxyError('UPSTREAM_BAD_SESSION_ID');
  return {
    kind: 'accepted',
    response,
    body,
    protocolVersion: outcome.protocolVersion,
    upstreamId: upstreamId.kind === 'valid' ? upstreamId.id : undefined,
    result: outcome.result,
  };
}

/**
 * The client's initialize, forwarded: an upstream that accepts it yields a new link, waiting for
 * the client's notifications/initialized; a refusal goes back to the client as the upstream sent it.
 */
export async function openLink(
  deps: LinkDeps,
  first: { initParams: string; headers: UpstreamHeaders; body: Buffer; requestId: JsonRpcId; cancel: Cancellation },
): Promise<{ readonly initialized: Initialized; readonly link: UpstreamLink | undefined }> {
  // The client leaving, or the upstream taking longer than any exchange may.
  const controller = new AbortController();
  first.cancel.once('abort', () => controller.abort());
  const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(deps.timeoutMs)]);
  const initialized = await initialize(deps.upstream, { ...first, signal }, 'UPSTREAM_BAD_INITIALIZE');
  if (deps.log.isLevelEnabled('trace')) {
    deps.log.trace({ status: initialized.response.statusCode, headers: initialized.response.headers }, 'initialize answer from upstream');
  }
  if (initialized.kind === 'refused') return { initialized, link: undefined };
  const link = new UpstreamLink(deps, first.initParams, {
    kind: 'initialized-by-client',
    protocolVersion: initialized.protocolVersion,
    upstreamId: initialized.upstreamId,
  });
  return { initialized, link };
}

/** Headers for the proxy's own handshake messages, from the client's (for its credentials). */
function handshakeHeaders(clientHeaders: UpstreamHeaders, protocolVersion: string): UpstreamHeaders {
  const headers = { ...clientHeaders };
  delete headers[SESSION_HEADER];
  delete headers[LAST_EVENT_ID_HEADER];
  headers['content-type'] = 'application/json';
  headers.accept = POST_ACCEPT;
  headers[PROTOCOL_VERSION_HEADER] = protocolVersion;
  return headers;
}

function ignore(): void {}
