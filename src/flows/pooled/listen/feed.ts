/**
 * One pooled upstream session's standing (GET) stream, shared by every `subscriptions/listen` of
 * its caller key and by its in-flight calls that may be asked something. A legacy session has at
 * most one GET stream (a second one gets 409), so the feed opens it for the first listener or
 * asker, fans each notification out to every listener (each filters and tags it itself), gives
 * each question to the call it belongs to (mcp/standing-questions.ts: exactly one call that can
 * take it, else the upstream gets an error), and closes it after the last listener leaves, or
 * STANDING_LINGER_MS after the last asker did (the next call of a burst finds it open). Resource
 * subscriptions belong to the upstream session, not to a listener: one `resources/subscribe` per
 * URI however many listeners want it, `resources/unsubscribe` when the last of them leaves.
 *
 *   idle ─ first join or asker ─▶ connecting ─▶ open ─ last leave (or release, after the linger) ─▶ idle
 *                           │            └─ stream ends, or the link renews its session ─▶ recovering ─▶ open (+ a gap signal)
 *                           └─ no GET stream upstream (405) ─▶ idle (listeners get an empty honoured set)
 *   anything ─ the link ends (evicted, expired, shutdown) ─▶ ended (every listener ends gracefully)
 *
 * Recovery: the link replays initialize when the upstream forgot the session, so reopening the GET
 * stream through it re-establishes the session too; every subscribed URI is subscribed again, and
 * each listener is told of a gap (it re-lists what it listens to, and re-reads its resources).
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { readEventStream } from '../../../http/sse-reader.js';
import { isEventStream, parseJson } from '../../../mcp/protocol.js';
import { attributeQuestion, unattributedRefusal, type Asker } from '../../../mcp/standing-questions.js';
import { feedEventOf, feedRequestRefusal, resourceRequest, type FeedEvent, type SubscriptionFilter } from '../../../mcp/subscriptions.js';
import type { Metrics } from '../../../observability/metrics.js';
import { ProxyError, UpstreamAnswer, type JsonRpcId } from '../../../errors.js';
import { discard, readBody, toProxyError, type UpstreamHeaders } from '../../../upstream/client.js';
import type { UpstreamLink } from '../../../upstream/link.js';
import { realSchedule, type Schedule } from '../mrtr/parked.js';

/** One `subscriptions/listen` stream, as the feed sees it. */
export interface FeedListener {
  /** What it listens to (the honoured subset): the feed keeps the upstream subscribed to its URIs. */
  readonly honoured: SubscriptionFilter;
  /** An upstream message; the listener decides whether it is one of its own. */
  hear(event: FeedEvent): void;
  /** The upstream stream was re-established: whatever happened meanwhile went unheard. */
  gap(): void;
  /** The upstream session is gone for good (its link ended): end gracefully. */
  end(): void;
}

/** An in-flight call on this session that may be asked (flows/pooled/mrtr/standing.ts). */
export interface FeedAsker extends Asker {
  /** A question on the standing stream that is this call's. */
  ask(id: JsonRpcId, method: string, params: unknown): void;
}

/** How a join ended: listening, or nothing to listen on (the upstream offers no GET stream). */
export type JoinOutcome = 'listening' | 'no-stream';

type FeedState =
  | { readonly kind: 'idle' }
  /** The GET stream opening (first listener) or re-opening after a loss (`recovering`). */
  | { readonly kind: 'connecting'; readonly recovering: boolean; readonly flight: Promise<JoinOutcome> }
  | {
      readonly kind: 'open';
      readonly stream: Readable;
      readonly stop: AbortController;
      readonly generation: number;
      readonly openedAt: number;
    }
  | { readonly kind: 'ended' };

/**
 * Why the calls on a link do not ask for its GET stream (the registry's, kept across its feeds): it
 * has none (on that generation of its session), or it refused the last ones (an auth challenge, a
 * server error), until a backoff has passed.
 */
type NoStream =
  | { readonly kind: 'streamless'; readonly generation: number }
  | { readonly kind: 'refused'; readonly until: number; readonly refusals: number };

export interface FeedDeps {
  readonly log: Logger;
  /** Clock (ms), injectable for tests. */
  readonly now: () => number;
  /** Waits before reopening a lost stream (attempt 1, 2, …); injectable so tests do not sleep. */
  readonly retryDelayMs: (attempt: number) => number;
  readonly metrics: Pick<Metrics, 'unattributedQuestion'>;
  /** Timers (the linger after the last asker); injectable so tests do not wait. */
  readonly schedule?: Schedule;
}

// A 409 on GET: the upstream has not yet seen the previous stream of this session close (the
// last listener left a moment ago). It will within milliseconds; a few quick tries cover it.
const CONFLICT_RETRIES = 5;
const CONFLICT_DELAY_MS = 50;
// A stream that ends sooner than this after opening is reopened only after a backoff: a server
// that closes every stream at once (or a proxy in front of it that does) must not get a
// reconnection loop, nor its listeners a storm of gap signals.
const MIN_STREAM_LIFE_MS = 1_000;
// After the last call that may be asked, the stream stays open this long: an agent makes its calls
// one after another, and each would otherwise wait for a new GET before going upstream (and often
// meet a 409 while the upstream has not yet seen the previous stream close).
export const STANDING_LINGER_MS = 10_000;
// A GET answered with one of these means "no GET stream here" (the spec allows 405).
const NO_STREAM_STATUSES = new Set([404, 405]);
// An auth challenge reaches a client waiting for its ack as it is, so that its OAuth flow can start.
const AUTH_CHALLENGE_STATUSES = new Set([401, 403]);
// A refusal is a short JSON-RPC error; reading more to relay one is never needed.
const MAX_REFUSAL_BYTES = 64 * 1024;

/** The upstream's refusal of the GET stream, as the client waiting for its ack gets it. */
interface Refusal {
  readonly refused: ProxyError | UpstreamAnswer;
}

/** Backoff for reopening a lost stream: quick at first (a restart takes a second or two), then every 5 s. */
export function defaultRetryDelayMs(attempt: number): number {
  return Math.min(100 * 2 ** (attempt - 1), 5_000);
}

export class NotificationFeed {
  private state: FeedState = { kind: 'idle' };
  private readonly listeners = new Set<FeedListener>();
  /** In-flight calls that may be asked on the standing stream. */
  private readonly askers = new Set<FeedAsker>();
  /** Listeners per resource URI. */
  private readonly uriCounts = new Map<string, number>();
  /** URIs subscribed on the current upstream session. */
  private readonly subscribed = new Set<string>();
  /** The latest listener's headers (its credentials): what the GET and subscriptions are sent with. */
  private headers: UpstreamHeaders = {};
  /** Streams in a row that ended sooner than MIN_STREAM_LIFE_MS. */
  private shortLived = 0;
  /** The listeners that were listening when the stream was lost: they are told of the gap. */
  private gapFor = new Set<FeedListener>();
  private readonly unwatch: () => void;
  /** Cancels the pending close after the last asker left (undefined: none pending). */
  private lingering: (() => void) | undefined;

  constructor(
    private readonly link: UpstreamLink,
    private readonly deps: FeedDeps,
    /** Told when the feed has no listener left, or ended: the registry forgets it. */
    private readonly onIdle: (feed: NotificationFeed) => void,
    /** Links whose calls do not ask for the GET stream, and why (the registry's, kept across its feeds). */
    private readonly noStream: WeakMap<UpstreamLink, NoStream> = new WeakMap(),
  ) {
    this.unwatch = link.watch({
      renewed: (generation) => this.renewed(generation),
      ended: () => this.ended(),
    });
  }

  /** Listeners and askers: while any is left the stream stays open. */
  get size(): number {
    return this.listeners.size + this.askers.size;
  }

  /** Stop following the link (the registry forgot this feed). */
  detach(): void {
    this.unwatch();
  }

  /**
   * Add a listener: once the GET stream is open and its URIs are subscribed upstream, it is
   * listening (answer its ack then). Rejects when the stream cannot be opened (the listener is
   * then removed); `no-stream` when the upstream has none to offer.
   */
  async join(listener: FeedListener, headers: UpstreamHeaders): Promise<JoinOutcome> {
    // The link ended before this listener came (a race with eviction): a retry gets a new one.
    if (this.state.kind === 'ended') throw new ProxyError('UPSTREAM_UNAVAILABLE');
    this.headers = headers;
    this.listeners.add(listener);
    this.stopLingering();
    for (const uri of listener.honoured.resourceSubscriptions ?? []) this.uriCounts.set(uri, (this.uriCounts.get(uri) ?? 0) + 1);
    let outcome: JoinOutcome;
    try {
      outcome = await this.ready();
    } catch (error) {
      this.leave(listener);
      throw error;
    }
    if (outcome === 'no-stream') {
      this.leave(listener);
      return outcome;
    }
    await this.subscribeAll();
    return 'listening';
  }

  /**
   * Hold the stream open for a call that may be asked, until `release`. The promise (none when
   * there is nothing to wait for) resolves once the stream is open (a question the upstream sends
   * before that would be lost: a v1 SDK server drops what it would send on a GET stream that is
   * not there), or could not be (the call goes ahead regardless).
   */
  keepOpenFor(asker: FeedAsker, headers: UpstreamHeaders): Promise<void> | undefined {
    if (this.state.kind === 'ended') return;
    this.headers = headers;
    this.askers.add(asker);
    this.stopLingering();
    const state = this.state;
    if (state.kind === 'open') return;
    // Being recovered: that flight retries for as long as the stream is wanted, and this call now
    // wants it; waiting on it could be for ever (an upstream that keeps refusing). Go ahead.
    if (state.kind === 'connecting' && state.recovering) return;
    // No GET stream there (questions can only come on the call's own answer), or refused lately:
    // asking again only costs.
    if (state.kind === 'idle' && this.skipsGet()) return;
    // Otherwise the wait is for one attempt at most (a first open never retries).
    return this.ready().then(
      (outcome) => {
        if (outcome === 'no-stream') this.noStream.set(this.link, { kind: 'streamless', generation: this.link.currentGeneration });
      },
      (error: unknown) => {
        this.deps.log.debug({ link: this.link.label, reason: toProxyError(error).reason }, 'standing stream for questions not opened');
        const last = this.noStream.get(this.link);
        const refusals = last?.kind === 'refused' ? last.refusals + 1 : 1;
        this.noStream.set(this.link, { kind: 'refused', until: this.deps.now() + this.deps.retryDelayMs(refusals), refusals });
      },
    );
  }

  /** Calls on this link go ahead without asking for the GET stream. */
  private skipsGet(): boolean {
    const known = this.noStream.get(this.link);
    if (known === undefined) return false;
    return known.kind === 'streamless' ? known.generation === this.link.currentGeneration : this.deps.now() < known.until;
  }

  /** The call is over: after the last one (with no listener) the stream lingers, then closes. */
  release(asker: FeedAsker): void {
    if (!this.askers.delete(asker) || this.wanted()) return;
    if (this.state.kind !== 'open') return this.closeIfUnwanted();
    this.stopLingering();
    const schedule = this.deps.schedule ?? realSchedule;
    this.lingering = schedule(() => {
      this.lingering = undefined;
      this.closeIfUnwanted();
    }, STANDING_LINGER_MS);
  }

  private stopLingering(): void {
    this.lingering?.();
    this.lingering = undefined;
  }

  /** Remove a listener (its client left, or its stream ended): the last one closes the stream. */
  leave(listener: FeedListener): void {
    if (!this.listeners.delete(listener)) return;
    for (const uri of listener.honoured.resourceSubscriptions ?? []) {
      const count = (this.uriCounts.get(uri) ?? 0) - 1;
      if (count > 0) {
        this.uriCounts.set(uri, count);
        continue;
      }
      this.uriCounts.delete(uri);
      if (this.subscribed.delete(uri))
        void this.link.notify(resourceRequest('resources/unsubscribe', this.link.nextRequestId(), uri), this.headers);
    }
    this.closeIfUnwanted();
  }

  private closeIfUnwanted(): void {
    if (this.wanted()) return;
    this.closeStream();
    if (this.state.kind === 'open') this.state = { kind: 'idle' };
    // A connecting flight finds nobody left and closes what it opened.
    if (this.state.kind !== 'connecting') this.onIdle(this);
  }

  private async ready(): Promise<JoinOutcome> {
    const state = this.state;
    switch (state.kind) {
      case 'open':
        return 'listening';
      case 'connecting':
        return state.flight;
      case 'ended':
        throw new ProxyError('UPSTREAM_UNAVAILABLE');
      case 'idle': {
        const flight = this.connect(false);
        this.state = { kind: 'connecting', recovering: false, flight };
        return flight;
      }
    }
  }

  /**
   * Open the GET stream through the link (which (re-)establishes the upstream session if need be).
   * A first open tries once (the client waiting for its ack gets the failure); a recovery tries
   * until it succeeds, the listeners are gone or the link ended.
   */
  private async connect(recovering: boolean, pauseMs = 0): Promise<JoinOutcome> {
    if (pauseMs > 0) {
      await delay(pauseMs);
      if (this.unwanted()) return this.settle('no-stream', recovering);
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const outcome = await this.openOnce();
        if (typeof outcome === 'string') return this.settle(outcome, recovering);
        // The upstream refused the stream: a first open fails its client with the refusal.
        throw outcome.refused;
      } catch (error) {
        if (!recovering || this.state.kind === 'ended' || !this.wanted()) {
          if (this.state.kind === 'connecting') this.state = { kind: 'idle' };
          if (!this.wanted() && this.state.kind !== 'ended') this.onIdle(this);
          throw error;
        }
        const status = error instanceof UpstreamAnswer ? error.status : toProxyError(error).detail?.upstreamStatus;
        this.deps.log.info(
          {
            link: this.link.label,
            attempt,
            reason: error instanceof UpstreamAnswer ? 'UPSTREAM_REFUSED' : toProxyError(error).reason,
            upstreamStatus: status,
          },
          'upstream notification stream not back yet; retrying',
        );
      }
      await delay(this.deps.retryDelayMs(attempt));
      // (Read through a method: the state changes while this waits.)
      if (this.unwanted()) return this.settle('no-stream', recovering);
    }
  }

  /**
   * One GET (with quick retries on 409): the stream installed, no GET stream, or the upstream's
   * refusal (an auth challenge, a server error), which a first open hands to its client and a
   * recovery retries.
   */
  private async openOnce(): Promise<JoinOutcome | Refusal> {
    const headers: UpstreamHeaders = { ...this.headers, accept: 'text/event-stream' };
    delete headers['content-type'];
    for (let conflict = 0; ; conflict++) {
      const stop = new AbortController();
      const answer = await this.link.send({
        headers,
        body: undefined,
        initialized: false,
        versionFromLink: true,
        cancel: stop.signal,
        replayed: undefined,
      });
      const { response, payload } = answer!;
      const status = response.statusCode;
      if (status === 200 && !Buffer.isBuffer(payload) && isEventStream(response.headers['content-type'])) {
        if (this.state.kind === 'ended' || !this.wanted()) {
          // Nobody left to listen (or the link ended while this opened).
          stop.abort();
          payload.destroy();
          return 'no-stream';
        }
        this.install(payload, stop);
        return 'listening';
      }
      if (status === 409 && conflict < CONFLICT_RETRIES) {
        if (!Buffer.isBuffer(payload)) discard(payload);
        await delay(CONFLICT_DELAY_MS * (conflict + 1));
        continue;
      }
      if (NO_STREAM_STATUSES.has(status)) {
        if (!Buffer.isBuffer(payload)) discard(payload);
        this.deps.log.info({ link: this.link.label, status }, 'upstream offers no GET stream; subscriptions/listen honours nothing');
        return 'no-stream';
      }
      const body = Buffer.isBuffer(payload)
        ? payload
        : await readBody(payload, MAX_REFUSAL_BYTES, 'UPSTREAM_BAD_ANSWER').catch(() => Buffer.alloc(0));
      return {
        refused: AUTH_CHALLENGE_STATUSES.has(status)
          ? new UpstreamAnswer(status, response.headers, body)
          : new ProxyError('UPSTREAM_UNAVAILABLE', { detail: { upstreamStatus: status } }),
      };
    }
  }

  /** The link ended, or nobody listens any more. */
  private unwanted(): boolean {
    return this.state.kind === 'ended' || !this.wanted();
  }

  /** Someone needs the stream: a listener, or a call that may be asked. */
  private wanted(): boolean {
    return this.listeners.size > 0 || this.askers.size > 0;
  }

  private settle(outcome: JoinOutcome, recovering: boolean): JoinOutcome {
    if (this.state.kind === 'ended') return 'no-stream';
    if (outcome === 'no-stream' && this.state.kind === 'connecting') this.state = { kind: 'idle' };
    if (outcome === 'no-stream' && recovering && this.listeners.size > 0) {
      // The upstream came back without GET streams (replaced by a server that has none): nothing
      // will ever arrive, so the listeners end gracefully rather than wait forever.
      this.endListeners();
      return outcome;
    }
    if (!this.wanted() && this.state.kind !== 'open') this.onIdle(this);
    if (outcome === 'listening' && recovering) {
      // A new upstream session (or a new stream on the old one): subscribe again, then tell
      // every listener what may have gone unheard.
      this.subscribed.clear();
      const told = this.gapFor;
      this.gapFor = new Set();
      void this.subscribeAll().then(() => {
        for (const listener of told) if (this.listeners.has(listener)) listener.gap();
      });
    }
    return outcome;
  }

  private install(stream: Readable, stop: AbortController): void {
    this.noStream.delete(this.link);
    this.state = { kind: 'open', stream, stop, generation: this.link.currentGeneration, openedAt: this.deps.now() };
    this.deps.log.debug({ link: this.link.label, listeners: this.listeners.size }, 'upstream notification stream open');
    // A notification the translation cannot take makes the stream lost (re-opened, the gap signalled).
    readEventStream(stream, { event: (data) => this.dispatch(feedEventOf(parseJson(data))) }, () => {
      if (this.state.kind === 'open' && this.state.stream === stream) this.lost('the upstream notification stream ended');
    });
  }

  private dispatch(event: FeedEvent): void {
    if (event.kind === 'drop') return;
    if (event.kind === 'refuse') {
      void this.link.notify(feedRequestRefusal(event.id, event.method), this.headers);
      return;
    }
    if (event.kind === 'question') return this.attribute(event);
    for (const listener of [...this.listeners]) listener.hear(event);
  }

  /** A question on the standing stream: to the one call that can take it, else refused upstream. */
  private attribute(question: Extract<FeedEvent, { kind: 'question' }>): void {
    const attribution = attributeQuestion(question.method, this.askers);
    if (attribution.kind === 'deliver') return attribution.to.ask(question.id, question.method, question.params);
    this.deps.metrics.unattributedQuestion(attribution.reason);
    this.deps.log.info(
      { link: this.link.label, method: question.method, reason: attribution.reason, askers: this.askers.size },
      'question on the upstream standing stream refused: no single request can take it',
    );
    void this.link.notify(unattributedRefusal(question.id, question.method, attribution), this.headers);
  }

  /** The open stream is gone (ended, or its session was replaced): reopen it while anyone listens. */
  private lost(why: string): void {
    const lived = this.state.kind === 'open' ? this.deps.now() - this.state.openedAt : Infinity;
    this.shortLived = lived < MIN_STREAM_LIFE_MS ? this.shortLived + 1 : 0;
    this.closeStream();
    if (!this.wanted()) {
      this.state = { kind: 'idle' };
      this.onIdle(this);
      return;
    }
    this.deps.log.info({ link: this.link.label, listeners: this.listeners.size }, `${why}; reopening it`);
    for (const listener of this.listeners) this.gapFor.add(listener);
    const flight = this.connect(true, this.shortLived === 0 ? 0 : this.deps.retryDelayMs(this.shortLived));
    // Nobody awaits a recovery but later joins: a failure is logged in connect, never thrown here.
    flight.catch(() => {});
    this.state = { kind: 'connecting', recovering: true, flight };
  }

  private renewed(generation: number): void {
    // A stream opened on an older upstream session hears nothing of the new one.
    if (this.state.kind === 'open' && this.state.generation < generation) this.lost('the upstream session was re-established');
  }

  private ended(): void {
    this.closeStream();
    this.state = { kind: 'ended' };
    // Their calls meet the end of the link themselves.
    this.askers.clear();
    this.unwatch();
    this.endListeners();
  }

  /** Every listener ends gracefully, and the feed is forgotten. */
  private endListeners(): void {
    const listeners = [...this.listeners];
    this.listeners.clear();
    this.uriCounts.clear();
    this.subscribed.clear();
    for (const listener of listeners) listener.end();
    this.onIdle(this);
  }

  private closeStream(): void {
    this.stopLingering();
    if (this.state.kind !== 'open') return;
    const { stream, stop } = this.state;
    stop.abort();
    stream.destroy();
  }

  /** Subscribe the upstream session to every wanted URI it is not subscribed to yet. */
  private async subscribeAll(): Promise<void> {
    const wanted = [...this.uriCounts.keys()].filter((uri) => !this.subscribed.has(uri));
    for (const uri of wanted) this.subscribed.add(uri);
    await Promise.all(
      wanted.map((uri) => this.link.notify(resourceRequest('resources/subscribe', this.link.nextRequestId(), uri), this.headers)),
    );
  }
}

/** The feeds of the pooled links that have listeners. */
export interface NotificationFeeds {
  /** The link's feed, made on first use. */
  of(link: UpstreamLink): NotificationFeed;
  readonly size: number;
}

export function createNotificationFeeds(deps: FeedDeps): NotificationFeeds {
  const feeds = new Map<UpstreamLink, NotificationFeed>();
  const noStream = new WeakMap<UpstreamLink, NoStream>();
  return {
    of(link) {
      let feed = feeds.get(link);
      if (feed === undefined) {
        const onIdle = (idle: NotificationFeed) => {
          if (feeds.get(link) !== idle || (idle.size > 0 && link.kind !== 'ended')) return;
          feeds.delete(link);
          idle.detach();
        };
        feed = new NotificationFeed(link, deps, onIdle, noStream);
        feeds.set(link, feed);
      }
      return feed;
    },
    get size() {
      return feeds.size;
    },
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
