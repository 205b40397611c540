/**
 * A hosted session's GET stream, served from an upstream `subscriptions/listen` (2026-07-28): the
 * legacy client's event stream on one side, a listen POST (SSE) on the other, carrying every
 * list-changed kind (the upstream acknowledges the subset it serves) and the resource URIs the
 * session subscribed to (resources/subscribe, answered by the proxy).
 *
 *   opening ──ack──▶ listening ──stream breaks──▶ backoff ──timer──▶ opening (…ack: the client
 *      ▲                 │                                          hears list_changed / updated
 *      └─filter changes──┘ (a new listen opens; the old one ends at the new one's ack)   for what it may have missed)
 *   idle: the upstream serves nothing asked for (empty ack); a filter change opens again
 *   ended: the client's stream closed, the session ended, shutdown
 *
 * Notifications reach the client without the 2026 `_meta` keys; the ack and the listen's final
 * result are not forwarded.
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { readEventStream } from '../../http/sse-reader.js';
import { toLegacyMessage, toModernRequest, routingHeadersFor, type LegacyClient } from '../../mcp/modern-upstream.js';
import { isEventStream, isJsonRpcMessage, parseJson, POST_ACCEPT } from '../../mcp/protocol.js';
import { Cancellation, readBody, type UpstreamClient, type UpstreamHeaders, type UpstreamResponse } from '../../upstream/client.js';

// How long an open listen may take to send its acknowledgement (a v2 server sends it at once).
export const ACK_TIMEOUT_MS = 30_000;
// An upstream's refusal of a listen is a short error; bigger than this, it is not read further.
const MAX_REFUSAL_BYTES = 64 * 1024;

type Obj = Record<string, unknown>;

export type HostedListenState = 'opening' | 'listening' | 'backoff' | 'idle' | 'ended';

/** Re-opening a broken listen: from this, doubling, up to the max (an upstream restart takes seconds). */
export const LISTEN_RETRY_MIN_MS = 100;
export const LISTEN_RETRY_MAX_MS = 5_000;

const ACK = 'notifications/subscriptions/acknowledged';
/** What a listen can announce, and the legacy notification a re-open sends for what may have been missed. */
const LIST_CHANGED: readonly (readonly [string, string])[] = [
  ['toolsListChanged', 'notifications/tools/list_changed'],
  ['promptsListChanged', 'notifications/prompts/list_changed'],
  ['resourcesListChanged', 'notifications/resources/list_changed'],
];

export interface HostedListenDeps {
  readonly upstream: UpstreamClient;
  readonly log: Logger;
  /** For log lines only. */
  readonly label: string;
  readonly client: LegacyClient;
  /** The client's request headers, for the upstream (credentials). */
  readonly headers: UpstreamHeaders;
  /** A notification for the client's stream. */
  readonly write: (message: Obj) => void;
  /** The listen could not be opened at all (first attempt): the upstream's answer (none: unreachable). */
  readonly refused: (answer: { response: UpstreamResponse; body: Buffer } | undefined) => void;
  /** The first listen is open: the client's stream may start. */
  readonly opened: () => void;
}

/** The filter a listen asks for: every list-changed kind, and the subscribed URIs. */
export function listenFilterOf(subscriptions: ReadonlySet<string>): Obj {
  const filter: Obj = { toolsListChanged: true, promptsListChanged: true, resourcesListChanged: true };
  if (subscriptions.size > 0) filter.resourceSubscriptions = [...subscriptions].sort();
  return filter;
}

/** What a re-open tells the client it may have missed, from the re-opened listen's ack. */
export function missedNotificationsOf(acknowledged: unknown): Obj[] {
  const honored = typeof acknowledged === 'object' && acknowledged !== null ? (acknowledged as Obj) : {};
  const out: Obj[] = [];
  for (const [flag, method] of LIST_CHANGED) if (honored[flag] === true) out.push({ jsonrpc: '2.0', method });
  const uris = Array.isArray(honored.resourceSubscriptions) ? honored.resourceSubscriptions : [];
  for (const uri of uris)
    if (typeof uri === 'string') out.push({ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri } });
  return out;
}

let listens = 0;

export class HostedListen {
  private state: HostedListenState = 'opening';
  /** The listen notifications come from; a filter change may open its successor beside it. */
  private current: Cancellation | undefined;
  private everOpened = false;
  private retryMs = LISTEN_RETRY_MIN_MS;
  private timer: NodeJS.Timeout | undefined;
  private missed = false;
  /** Listens opened so far, and the generation of the current one: a stale filter's late ack loses. */
  private opens = 0;
  private currentGeneration = 0;
  private waiters: { readonly generation: number; readonly resolve: () => void }[] = [];

  constructor(
    private readonly deps: HostedListenDeps,
    private readonly subscriptions: ReadonlySet<string>,
  ) {
    void this.open();
  }

  get kind(): HostedListenState {
    return this.state;
  }

  /**
   * The subscribed set changed: listen again with the new filter (the old one ends at the new
   * ack). Resolves once the new filter is in force upstream (or could not be: broken, ended), so
   * that resources/subscribe answers only when updates will be heard.
   */
  refilter(): Promise<void> {
    // In backoff the next open reads the set anyway.
    if (this.state === 'ended' || this.state === 'backoff') return Promise.resolve();
    return new Promise((resolve) => {
      const generation = this.opens + 1;
      this.waiters.push({ generation, resolve });
      void this.open();
    });
  }

  /** Resolve refilter() callers whose listen (or a newer one) is in force, or all of them. */
  private settleWaiters(upTo: number): void {
    const still: typeof this.waiters = [];
    for (const waiter of this.waiters) waiter.generation <= upTo ? waiter.resolve() : still.push(waiter);
    this.waiters = still;
  }

  end(): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    this.settleWaiters(Infinity);
    clearTimeout(this.timer);
    this.current?.cancel();
    this.current = undefined;
  }

  private async open(): Promise<void> {
    if (this.state === 'ended') return;
    if (this.state !== 'listening') this.state = 'opening';
    const cancel = new Cancellation();
    const generation = ++this.opens;
    const id = `mcp-session-proxy-listen-${++listens}`;
    const headers: UpstreamHeaders = {
      ...this.deps.headers,
      'content-type': 'application/json',
      accept: POST_ACCEPT,
      ...routingHeadersFor('subscriptions/listen', undefined),
    };
    const body = toModernRequest(
      id,
      'subscriptions/listen',
      { notifications: listenFilterOf(this.subscriptions) },
      this.deps.client,
      undefined,
    );
    let response: UpstreamResponse;
    try {
      response = await this.deps.upstream.request({ method: 'POST', headers, body, signal: cancel });
    } catch {
      return this.broken(cancel);
    }
    if (this.kind === 'ended') return void response.body.destroy();
    if (response.statusCode !== 200 || !isEventStream(response.headers['content-type'])) {
      // A refusal is short; one that is not is cut off rather than held in memory.
      let refusal: Buffer;
      try {
        refusal = await readBody(response.body, MAX_REFUSAL_BYTES, 'UPSTREAM_BAD_ANSWER', cancel);
      } catch {
        return this.broken(cancel);
      }
      if (!this.everOpened) {
        this.state = 'ended';
        this.deps.refused({ response, body: refusal });
      } else this.broken(cancel);
      return;
    }
    this.read(response.body, cancel, generation);
  }

  private read(body: Readable, cancel: Cancellation, generation: number): void {
    let acked = false;
    cancel.once('abort', () => body.destroy());
    // An upstream that opens the stream but never acknowledges it would hold the client's GET (or
    // its resources/subscribe) forever: past the deadline the listen counts as broken.
    const deadline = setTimeout(() => {
      if (!acked) body.destroy();
    }, ACK_TIMEOUT_MS);
    body.once('close', () => clearTimeout(deadline));
    // A notification the translation cannot take makes the stream broken (re-opened).
    readEventStream(
      body,
      {
        event: (data) => {
          const message = parseJson(data);
          if (!isJsonRpcMessage(message) || this.state === 'ended') return;
          if (message.method === ACK) {
            acked = true;
            clearTimeout(deadline);
            this.acknowledged(cancel, generation, (message.params as Obj | undefined)?.notifications);
            return;
          }
          // Only the current listen's notifications go out (a replaced one may still be draining).
          if (typeof message.method !== 'string' || 'id' in message || cancel !== this.current) return;
          const translated = toLegacyMessage(message, 'subscriptions/listen');
          if (translated.kind === 'forward') this.deps.write(translated.message);
        },
      },
      () => {
        // Ended by the upstream with nothing to serve (an empty ack): nothing to re-open for.
        if (acked && cancel === this.current && this.state === 'idle') return;
        this.broken(cancel);
      },
    );
  }

  private acknowledged(cancel: Cancellation, generation: number, honored: unknown): void {
    if (generation < this.currentGeneration) return void cancel.cancel();
    this.currentGeneration = generation;
    this.settleWaiters(generation);
    const previous = this.current;
    this.current = cancel;
    if (previous !== undefined && previous !== cancel) previous.cancel();
    this.retryMs = LISTEN_RETRY_MIN_MS;
    const empty = typeof honored !== 'object' || honored === null || Object.keys(honored).length === 0;
    this.state = empty ? 'idle' : 'listening';
    if (!this.everOpened) {
      this.everOpened = true;
      this.deps.opened();
    }
    if (this.missed) {
      this.missed = false;
      for (const message of missedNotificationsOf(honored)) this.deps.write(message);
      this.deps.log.info({ link: this.deps.label }, 'hosted session: subscriptions/listen re-opened');
    }
  }

  /** A listen broke or could not be opened: the current one means re-open, later; others are let go. */
  private broken(cancel: Cancellation): void {
    cancel.cancel();
    // A filter change that could not be made: its subscribe answers anyway (the next open carries it).
    this.settleWaiters(Infinity);
    if (this.state === 'ended' || (this.current !== undefined && cancel !== this.current)) return;
    if (!this.everOpened) {
      // The very first attempt failed without an answer (upstream down): the client hears it now.
      this.state = 'ended';
      return this.deps.refused(undefined);
    }
    this.current = undefined;
    this.missed = this.everOpened;
    this.state = 'backoff';
    const wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, LISTEN_RETRY_MAX_MS);
    this.deps.log.debug({ link: this.deps.label, retryInMs: wait }, 'hosted session: subscriptions/listen broke; re-opening');
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.state === 'backoff') void this.open();
    }, wait);
  }
}
