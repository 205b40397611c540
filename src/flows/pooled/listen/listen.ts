/**
 * A 2026-07-28 `subscriptions/listen` on a legacy upstream: the client side of it. The request is
 * checked (Accept, filter) as a v2 server checks it, the honoured subset is what the upstream's
 * InitializeResult declares, and the stream joins the notification feed of the caller's pooled
 * upstream session (flows/pooled/listen/feed.ts: one GET stream shared by every listener of that
 * session). Once the feed listens, the client gets its SSE stream, the ack first; then its
 * notifications, tagged with its subscription id (the listen request's id); keep-alive comments
 * meanwhile; and, when the proxy shuts down or the upstream session ends for good, the graceful
 * result. A client that closes its stream leaves the feed (closing is the cancellation).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { ProxyError, type JsonRpcId } from '../../../errors.js';
import { acceptsEventStream } from '../../../mcp/protocol.js';
import {
  acknowledgement,
  gapNotifications,
  honouredSubset,
  INVALID_FILTER_MESSAGE,
  isEmptyFilter,
  listenResult,
  notificationFor,
  parseListenFilter,
  type FeedEvent,
  type SubscriptionFilter,
} from '../../../mcp/subscriptions.js';
import type { Metrics } from '../../../observability/metrics.js';
import type { UpstreamHeaders } from '../../../upstream/client.js';
import type { UpstreamLink } from '../../../upstream/link.js';
import type { FeedListener, NotificationFeed, NotificationFeeds } from './feed.js';
import type { Tracked } from '../../../http/tracking.js';
import { sseEvent, SSE_KEEPALIVE } from '../../../http/reply.js';

export interface ListenDeps {
  readonly feeds: NotificationFeeds;
  /** Interval of `: keepalive` comments on every listen stream (each one also touches the pooled link). */
  readonly keepAliveMs: number;
  /**
   * How often an open stream keeps its pooled link from expiring as idle, when that must be more
   * often than the keep-alive (a pool idle TTL shorter than twice the keep-alive interval).
   */
  readonly touchEveryMs: number;
  /** Open listen streams at most; beyond, -32603 "Subscription limit reached" (the v2 server's answer). */
  readonly maxStreams: number;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly closing: () => boolean;
}

/** One listen request, as the route hands it over. */
export interface ListenRequest {
  readonly id: JsonRpcId;
  readonly params: Record<string, unknown>;
  /** The caller's pooled link. */
  readonly link: UpstreamLink;
  /** The caller's headers as the upstream must see them (its credentials). */
  readonly headers: UpstreamHeaders;
  /** The upstream's InitializeResult (opening the link if need be). */
  readonly describe: () => Promise<Record<string, unknown>>;
  /** Keeps the pooled link from expiring as idle while the stream is open. */
  readonly touch: () => void;
}

export interface Listens {
  serve(req: IncomingMessage, res: ServerResponse, tracked: Tracked, request: ListenRequest): Promise<void>;
  /** End every open listen stream with its graceful result (shutdown). */
  closeAll(): void;
  readonly size: number;
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
} as const;

function frame(message: object): string {
  return sseEvent(JSON.stringify(message));
}

/**
 * The pooled link ended while this listen came in (evicted, expired): not the client's session
 * (it has none) is gone but the upstream's, and a retry gets a new one.
 */
function linkGone(error: unknown): never {
  if (error instanceof ProxyError && error.reason === 'SESSION_NOT_FOUND') throw new ProxyError('UPSTREAM_UNAVAILABLE');
  throw error;
}

export function createListens(deps: ListenDeps): Listens {
  const open = new Set<ListenStream>();
  // Listens between the limit check and their stream's start (two awaits): counted too, or a burst
  // of concurrent listens would all pass the check.
  let starting = 0;
  return {
    async serve(req, res, tracked, request) {
      if (!acceptsEventStream(req.headers.accept)) throw new ProxyError('LISTEN_NOT_ACCEPTABLE');
      const filter = parseListenFilter(request.params);
      if (filter === undefined) throw new ProxyError('MODERN_INVALID_PARAMS', { detail: { message: INVALID_FILTER_MESSAGE } });
      if (open.size + starting >= deps.maxStreams) {
        deps.log.warn({ max: deps.maxStreams }, 'subscriptions/listen refused: stream limit reached');
        throw new ProxyError('LISTEN_LIMIT');
      }
      starting++;
      try {
        await startListen(res, tracked, request, filter);
      } finally {
        starting--;
      }
    },
    closeAll() {
      for (const stream of [...open]) stream.end();
    },
    get size() {
      return open.size;
    },
  };

  async function startListen(res: ServerResponse, tracked: Tracked, request: ListenRequest, filter: SubscriptionFilter) {
    const { capabilities } = await request.describe().catch(linkGone);
    const honoured = honouredSubset(filter, capabilities);
    const stream = new ListenStream(res, request, honoured, deps);
    // Nothing to deliver (not asked, or not offered upstream): acknowledged, and over at once.
    if (isEmptyFilter(honoured)) return stream.answerEmpty();
    const feed = deps.feeds.of(request.link);
    const outcome = await feed.join(stream, request.headers).catch(linkGone);
    if (tracked.gone.aborted) return feed.leave(stream);
    if (deps.closing()) {
      feed.leave(stream);
      throw new ProxyError('SHUTTING_DOWN');
    }
    if (outcome === 'no-stream') return stream.answerEmpty();
    stream.start(feed, () => open.delete(stream));
    open.add(stream);
  }
}

/** One client's listen stream: a feed listener writing to the client's response. */
class ListenStream implements FeedListener {
  /** Frames that arrived before the ack went out; undefined once it has. */
  private pending: string[] | undefined = [];
  /** Ended (gracefully) before it started: start answers the ack and the result at once. */
  private over = false;
  private readonly id: JsonRpcId;

  constructor(
    private readonly res: ServerResponse,
    private readonly request: ListenRequest,
    readonly honoured: SubscriptionFilter,
    private readonly deps: ListenDeps,
  ) {
    this.id = request.id;
  }

  hear(event: FeedEvent): void {
    const note = notificationFor(event, this.honoured, this.id);
    if (note !== undefined) this.write(frame(note));
  }

  gap(): void {
    for (const note of gapNotifications(this.honoured, this.id)) this.write(frame(note));
  }

  end(): void {
    if (this.pending !== undefined) {
      this.over = true;
      return;
    }
    if (this.res.writableEnded) return;
    this.res.end(frame(listenResult(this.id, this.request.link.serverInfo)));
  }

  /** The ack of an empty honoured set and the result: nothing will ever be delivered. */
  answerEmpty(): void {
    this.res.writeHead(200, SSE_HEADERS);
    this.res.write(frame(acknowledgement(this.id, {})));
    this.res.end(frame(listenResult(this.id, this.request.link.serverInfo)));
  }

  start(feed: NotificationFeed, forget: () => void): void {
    const { res, deps } = this;
    res.writeHead(200, SSE_HEADERS);
    const queued = this.pending ?? [];
    this.pending = undefined;
    res.write(frame(acknowledgement(this.id, this.honoured)) + queued.join(''));
    deps.metrics.streamOpened();
    const keepAlive = setInterval(() => {
      res.write(SSE_KEEPALIVE);
      this.request.touch();
    }, deps.keepAliveMs);
    keepAlive.unref();
    const touch = deps.touchEveryMs < deps.keepAliveMs ? setInterval(this.request.touch, deps.touchEveryMs) : undefined;
    touch?.unref();
    res.once('close', () => {
      clearInterval(keepAlive);
      clearInterval(touch);
      feed.leave(this);
      forget();
      deps.metrics.streamClosed();
    });
    deps.log.debug({ link: this.request.link.label, listeners: feed.size }, 'subscriptions/listen stream open');
    if (this.over) this.end();
  }

  private write(text: string): void {
    if (this.pending !== undefined) this.pending.push(text);
    else if (!this.res.writableEnded) this.res.write(text);
  }
}
