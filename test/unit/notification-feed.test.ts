/**
 * The notification feed of a pooled upstream session (flows/pooled/listen/feed.ts): one GET stream
 * shared by every listener, resource subscriptions counted per URI, recovery after the stream or
 * the session is lost, and the end of the link. In-memory upstream; no sockets, no sleeping.
 */
import { describe, expect, it } from 'vitest';
import type { FeedEvent } from '../../src/mcp/subscriptions.js';
import { Cancellation } from '../../src/upstream/client.js';
import { UpstreamLink, type Outgoing } from '../../src/upstream/link.js';
import { createNotificationFeeds, STANDING_LINGER_MS, type FeedAsker, type FeedListener } from '../../src/flows/pooled/listen/feed.js';
import { fakeLinkDeps, FakeUpstream } from '../helpers/fake-upstream.js';
import pino from 'pino';

const HEADERS = { authorization: 'Bearer t' };

/** `retryMs`: what every backoff is (0: the recoveries' real timers fire at once). */
function harness(retryMs = 0) {
  const upstream = new FakeUpstream();
  upstream.capabilities = { tools: { listChanged: true }, resources: { subscribe: true } };
  const { deps } = fakeLinkDeps(upstream);
  const link = new UpstreamLink(
    deps,
    JSON.stringify({ protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'c', version: '1' } }),
    {
      kind: 'pooled',
      protocolVersion: '2025-11-25',
      logLevel: undefined,
    },
  );
  let time = 0;
  const delays: number[] = [];
  const unattributed: string[] = [];
  /** Timers the feed set (the linger after the last asker): the test runs them. */
  let timers: Array<{ run: () => void; ms: number }> = [];
  const feeds = createNotificationFeeds({
    log: pino({ level: 'silent' }),
    metrics: { unattributedQuestion: (reason) => void unattributed.push(reason) },
    schedule: (run, ms) => {
      const timer = { run, ms };
      timers.push(timer);
      return () => void (timers = timers.filter((t) => t !== timer));
    },
    now: () => time,
    retryDelayMs: (attempt) => {
      delays.push(attempt);
      return retryMs;
    },
  });
  const runTimers = () => {
    const due = timers;
    timers = [];
    for (const t of due) t.run();
    return due.map((t) => t.ms);
  };
  return {
    upstream,
    link,
    feeds,
    delays,
    unattributed,
    runTimers,
    pendingTimers: () => timers.length,
    advance: (ms: number) => void (time += ms),
  };
}

/** A listener that records what the feed tells it, and lets a test wait for it. */
function listener(uris: string[] = []) {
  const heard: FeedEvent[] = [];
  let gaps = 0;
  let ended = false;
  const waiting: Array<() => void> = [];
  const wake = () => {
    for (const w of waiting.splice(0)) w();
  };
  const l: FeedListener & { heard: FeedEvent[]; gaps(): number; ended(): boolean; changed(): Promise<void> } = {
    honoured: uris.length > 0 ? { toolsListChanged: true, resourceSubscriptions: uris } : { toolsListChanged: true },
    hear: (event) => {
      heard.push(event);
      wake();
    },
    gap: () => {
      gaps++;
      wake();
    },
    end: () => {
      ended = true;
      wake();
    },
    heard,
    gaps: () => gaps,
    ended: () => ended,
    changed: () => new Promise<void>((resolve) => waiting.push(resolve)),
  };
  return l;
}

const toolsChanged = { jsonrpc: '2.0', method: 'notifications/tools/list_changed' };
const rpc = (upstream: FakeUpstream, method: string) => upstream.seen.filter((s) => s.rpcMethod === method);
const gets = (upstream: FakeUpstream) => upstream.seen.filter((s) => s.httpMethod === 'GET');

function call(id: number): Outgoing {
  return {
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: `{"jsonrpc":"2.0","id":${id},"method":"tools/list"}`,
    initialized: false,
    versionFromLink: true,
    cancel: new Cancellation(),
    replayed: undefined,
  };
}

describe('one GET stream per pooled upstream session', () => {
  it('opens it for the first listener, shares it, fans every message out, and closes it after the last', async () => {
    const { upstream, link, feeds } = harness();
    const a = listener();
    const b = listener(['test://x']);
    const feed = feeds.of(link);
    expect(await Promise.all([feed.join(a, HEADERS), feeds.of(link).join(b, HEADERS)])).toEqual(['listening', 'listening']);
    expect(gets(upstream)).toHaveLength(1);
    expect(gets(upstream)[0]!.authorization).toBe('Bearer t');
    expect(upstream.count('initialize')).toBe(1);
    expect(rpc(upstream, 'resources/subscribe')).toHaveLength(1);

    const heard = Promise.all([a.changed(), b.changed()]);
    upstream.streams[0]!.send(toolsChanged);
    await heard;
    expect(a.heard).toEqual([{ kind: 'list-changed', list: 'tools', params: undefined }]);
    expect(b.heard).toEqual(a.heard);

    feed.leave(a);
    expect(upstream.streams[0]!.body.destroyed).toBe(false);
    feed.leave(b);
    expect(upstream.streams[0]!.body.destroyed).toBe(true);
    expect(feeds.size).toBe(0);
    // The last listener of the URI unsubscribes it.
    await Promise.resolve();
    expect(rpc(upstream, 'resources/unsubscribe')).toHaveLength(1);
  });

  it('subscribes a URI once however many listeners want it, and unsubscribes it when the last of them leaves', async () => {
    const { upstream, link, feeds } = harness();
    const feed = feeds.of(link);
    const a = listener(['test://x', 'test://y']);
    const b = listener(['test://x']);
    await feed.join(a, HEADERS);
    await feed.join(b, HEADERS);
    expect(rpc(upstream, 'resources/subscribe').map((s) => s.rpcId)).toHaveLength(2);
    feed.leave(a);
    await Promise.resolve();
    // y had only a; x still has b.
    expect(rpc(upstream, 'resources/unsubscribe')).toHaveLength(1);
    feed.leave(b);
    await Promise.resolve();
    expect(rpc(upstream, 'resources/unsubscribe')).toHaveLength(2);
  });

  it('answers a server request on the stream with an error (nobody can take it)', async () => {
    const { upstream, link, feeds } = harness();
    const a = listener();
    await feeds.of(link).join(a, HEADERS);
    const heard = a.changed();
    upstream.streams[0]!.send({ jsonrpc: '2.0', id: 'srv-1', method: 'ping' });
    upstream.streams[0]!.send(toolsChanged);
    await heard;
    // The refusal is a POST carrying the server's own request id.
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(upstream.seen.some((s) => s.httpMethod === 'POST' && s.rpcId === 'srv-1')).toBe(true);
    expect(a.heard).toEqual([{ kind: 'list-changed', list: 'tools', params: undefined }]);
  });

  it('reports no stream when the upstream offers none (405)', async () => {
    const { upstream, link, feeds } = harness();
    upstream.getStreams = false;
    const a = listener();
    expect(await feeds.of(link).join(a, HEADERS)).toBe('no-stream');
    expect(feeds.size).toBe(0);
  });
});

/** An in-flight call that may be asked, recording the questions the feed gives it. */
function asker(clientCapabilities: Record<string, unknown>) {
  const asked: unknown[] = [];
  const a: FeedAsker & { asked: unknown[] } = { clientCapabilities, asked, ask: (id) => void asked.push(id) };
  return a;
}

const question = (id: string, method: string) => ({ jsonrpc: '2.0', id, method, params: {} });

describe('questions on the standing stream', () => {
  it('holds the stream open for calls that may be asked, shares it with listeners, and closes it after the last of both', async () => {
    const { upstream, link, feeds, runTimers, pendingTimers } = harness();
    const call = asker({ elicitation: {} });
    const feed = feeds.of(link);
    await feed.keepOpenFor(call, HEADERS);
    expect(gets(upstream)).toHaveLength(1);
    const l = listener();
    expect(await feed.join(l, HEADERS)).toBe('listening');
    expect(gets(upstream)).toHaveLength(1);
    feed.release(call);
    expect(pendingTimers()).toBe(0);
    expect(upstream.streams[0]!.body.destroyed).toBe(false);
    feed.leave(l);
    expect(upstream.streams[0]!.body.destroyed).toBe(true);
    expect(feeds.size).toBe(0);

    // Calls alone: the stream lives while any of them is in flight, and lingers after the last.
    const a = asker({ elicitation: {} });
    const b = asker({ elicitation: {} });
    await Promise.all([feeds.of(link).keepOpenFor(a, HEADERS), feeds.of(link).keepOpenFor(b, HEADERS)]);
    expect(gets(upstream)).toHaveLength(2);
    feeds.of(link).release(a);
    feeds.of(link).release(a);
    expect(pendingTimers()).toBe(0);
    feeds.of(link).release(b);
    expect(upstream.streams[1]!.body.destroyed).toBe(false);
    // The next call of the burst finds it open: no new GET, and the linger starts again after it.
    const c = asker({ elicitation: {} });
    await feeds.of(link).keepOpenFor(c, HEADERS);
    expect(pendingTimers()).toBe(0);
    expect(gets(upstream)).toHaveLength(2);
    feeds.of(link).release(c);
    expect(runTimers()).toEqual([STANDING_LINGER_MS]);
    expect(upstream.streams[1]!.body.destroyed).toBe(true);
    expect(feeds.size).toBe(0);
  });

  it('gives a question to the one call that can take it; refuses it upstream and counts it when none or several can', async () => {
    const { upstream, link, feeds, unattributed } = harness();
    const feed = feeds.of(link);
    const a = asker({ elicitation: {} });
    await feed.keepOpenFor(a, HEADERS);
    const stream = upstream.streams[0]!;
    stream.send(question('q1', 'elicitation/create'));
    await expect.poll(() => a.asked).toEqual(['q1']);
    // Not declared, but the only call that may be asked: its own (it fails there with -32021).
    stream.send(question('q2', 'sampling/createMessage'));
    await expect.poll(() => a.asked).toEqual(['q1', 'q2']);
    const b = asker({ elicitation: {} });
    await feed.keepOpenFor(b, HEADERS);
    stream.send(question('q3', 'elicitation/create'));
    await expect.poll(() => unattributed).toEqual(['ambiguous']);
    // Two calls, neither declared sampling.
    stream.send(question('q4', 'sampling/createMessage'));
    await expect.poll(() => unattributed).toEqual(['ambiguous', 'no_caller']);
    expect(a.asked).toEqual(['q1', 'q2']);
    expect(b.asked).toEqual([]);
    await expect
      .poll(() => upstream.seen.filter((s) => s.httpMethod === 'POST').map((s) => s.rpcId))
      .toEqual(expect.arrayContaining(['q3', 'q4']));
    // Not a question: refused as before, not counted.
    stream.send(question('q5', 'ping'));
    await expect.poll(() => upstream.seen.some((s) => s.rpcId === 'q5')).toBe(true);
    expect(unattributed).toEqual(['ambiguous', 'no_caller']);
  });

  it('lets a call go ahead when the upstream has no GET stream (405), and forgets the feed after it', async () => {
    const { upstream, link, feeds, pendingTimers } = harness();
    upstream.getStreams = false;
    const call = asker({ sampling: {} });
    await feeds.of(link).keepOpenFor(call, HEADERS);
    expect(upstream.streams).toHaveLength(0);
    feeds.of(link).release(call);
    expect(pendingTimers()).toBe(0);
    expect(feeds.size).toBe(0);
    // The next calls on that session do not ask again; a listener still does (it answers its client).
    const next = asker({ sampling: {} });
    await feeds.of(link).keepOpenFor(next, HEADERS);
    feeds.of(link).release(next);
    expect(gets(upstream)).toHaveLength(1);
    expect(await feeds.of(link).join(listener(), HEADERS)).toBe('no-stream');
    expect(gets(upstream)).toHaveLength(2);
  });

  it('lets a new call go ahead at once while a lost stream is being recovered, however long the upstream refuses it', async () => {
    const { upstream, link, feeds } = harness();
    const feed = feeds.of(link);
    const a = asker({ elicitation: {} });
    await feed.keepOpenFor(a, HEADERS);
    upstream.getRefusal = 503;
    upstream.streams[0]!.body.end();
    await expect.poll(() => gets(upstream).length).toBeGreaterThanOrEqual(2);
    // The recovery retries for as long as anyone wants the stream; the call must not wait on it.
    let wentAhead = false;
    const b = asker({ elicitation: {} });
    void Promise.resolve(feed.keepOpenFor(b, HEADERS)).then(() => (wentAhead = true));
    const before = gets(upstream).length;
    await expect.poll(() => gets(upstream).length).toBeGreaterThanOrEqual(before + 2);
    expect(wentAhead).toBe(true);
    // Both calls over: the recovery gives up, and the feed is forgotten.
    feed.release(a);
    feed.release(b);
    await expect.poll(() => feeds.size).toBe(0);
  });

  it('holds an open stream for a call at once, with nothing to wait for', async () => {
    const { upstream, link, feeds } = harness();
    const feed = feeds.of(link);
    await feed.keepOpenFor(asker({ elicitation: {} }), HEADERS);
    const next = asker({ elicitation: {} });
    expect(feed.keepOpenFor(next, HEADERS)).toBeUndefined();
    expect(feed.size).toBe(2);
    expect(gets(upstream)).toHaveLength(1);
  });

  it('remembers a refused GET for a backoff: the calls meanwhile go ahead without asking again', async () => {
    const { upstream, link, feeds, advance } = harness(1_000);
    upstream.getRefusal = 401;
    const call = async () => {
      const a = asker({ elicitation: {} });
      await feeds.of(link).keepOpenFor(a, HEADERS);
      feeds.of(link).release(a);
    };
    await call();
    expect(gets(upstream)).toHaveLength(1);
    await call();
    await call();
    expect(gets(upstream)).toHaveLength(1);
    // The backoff passed: asked again, refused again.
    advance(1_000);
    await call();
    expect(gets(upstream)).toHaveLength(2);
    await call();
    expect(gets(upstream)).toHaveLength(2);
    // Accepted after the next backoff: the stream opens, and no refusal is remembered any more.
    upstream.getRefusal = undefined;
    advance(1_000);
    await call();
    expect(gets(upstream)).toHaveLength(3);
    expect(upstream.streams).toHaveLength(1);
  });

  it('closes a lingering stream when the link ends', async () => {
    const { upstream, link, feeds, pendingTimers } = harness();
    const call = asker({ roots: {} });
    await feeds.of(link).keepOpenFor(call, HEADERS);
    feeds.of(link).release(call);
    expect(pendingTimers()).toBe(1);
    await link.end();
    expect(upstream.streams[0]!.body.destroyed).toBe(true);
    expect(pendingTimers()).toBe(0);
    expect(feeds.size).toBe(0);
  });
});

describe('an upstream refusing the stream', () => {
  it('fails the first listener with the refusal: an auth challenge as the upstream sent it, anything else as 502', async () => {
    const { upstream, link, feeds } = harness();
    upstream.getRefusal = 401;
    await expect(feeds.of(link).join(listener(), HEADERS)).rejects.toMatchObject({ name: 'UpstreamAnswer', status: 401 });
    expect(feeds.size).toBe(0);
    upstream.getRefusal = 500;
    await expect(feeds.of(link).join(listener(), HEADERS)).rejects.toMatchObject({
      reason: 'UPSTREAM_UNAVAILABLE',
      detail: { upstreamStatus: 500 },
    });
    upstream.getRefusal = undefined;
    expect(await feeds.of(link).join(listener(), HEADERS)).toBe('listening');
  });

  it('keeps retrying a recovery the upstream refuses, until it accepts', async () => {
    const { upstream, link, feeds } = harness();
    const a = listener();
    await feeds.of(link).join(a, HEADERS);
    upstream.getRefusal = 503;
    const gap = a.changed();
    upstream.streams[0]!.body.end();
    // Two refusals, then the upstream takes the stream again.
    await expect.poll(() => gets(upstream).length).toBeGreaterThanOrEqual(3);
    upstream.getRefusal = undefined;
    await gap;
    expect(a.gaps()).toBe(1);
    expect(upstream.streams).toHaveLength(2);
  });
});

describe('recovery', () => {
  it('reopens a stream that ended on a session the upstream forgot: replays initialize, subscribes again, tells each listener of the gap', async () => {
    const { upstream, link, feeds } = harness();
    const a = listener(['test://x']);
    await feeds.of(link).join(a, HEADERS);
    upstream.forgetAll();
    const gap = a.changed();
    upstream.streams[0]!.body.end();
    await gap;
    expect(a.gaps()).toBe(1);
    expect(upstream.count('initialize')).toBe(2);
    expect(gets(upstream)).toHaveLength(3); // the lost one, the one that met the loss, the new one
    expect(upstream.streams).toHaveLength(2);
    expect(upstream.streams[1]!.sessionId).not.toBe(upstream.streams[0]!.sessionId);
    expect(rpc(upstream, 'resources/subscribe').map((s) => s.sessionId)).toEqual([
      upstream.streams[0]!.sessionId,
      upstream.streams[1]!.sessionId,
    ]);
    // The new stream is the one listened to.
    const heard = a.changed();
    upstream.streams[1]!.send(toolsChanged);
    await heard;
    expect(a.heard).toHaveLength(1);
  });

  it('reopens a stream that lived long at once, and backs off more each time streams end as soon as they open', async () => {
    const { upstream, link, feeds, delays, advance } = harness();
    const a = listener();
    await feeds.of(link).join(a, HEADERS);
    advance(60_000);
    let gap = a.changed();
    upstream.streams[0]!.body.end();
    await gap;
    expect(delays).toEqual([]);
    for (let i = 1; i <= 3; i++) {
      gap = a.changed();
      upstream.streams.at(-1)!.body.end();
      await gap;
    }
    // Three short-lived streams in a row: pauses growing with the count.
    expect(delays).toEqual([1, 2, 3]);
    expect(a.gaps()).toBe(4);
  });

  it('moves to the new upstream session when another request re-establishes it (the old stream hears nothing more)', async () => {
    const { upstream, link, feeds } = harness();
    const a = listener();
    await feeds.of(link).join(a, HEADERS);
    upstream.forgetAll();
    const gap = a.changed();
    // A request meets the loss and replays; the old GET stream is still open (nobody closed it).
    const answer = await link.send(call(1));
    expect(answer!.response.statusCode).toBe(200);
    await gap;
    expect(a.gaps()).toBe(1);
    expect(upstream.streams[0]!.body.destroyed).toBe(true);
    expect(upstream.streams.at(-1)!.sessionId).toBe(rpc(upstream, 'tools/list').at(-1)!.sessionId);
  });

  it('ends its listeners gracefully when the upstream comes back without GET streams', async () => {
    const { upstream, link, feeds } = harness();
    const a = listener();
    await feeds.of(link).join(a, HEADERS);
    upstream.getStreams = false;
    const ended = a.changed();
    upstream.streams[0]!.body.end();
    await ended;
    expect(a.ended()).toBe(true);
    expect(a.gaps()).toBe(0);
    expect(feeds.size).toBe(0);
  });

  it('ends every listener when the link ends (evicted, expired, shut down)', async () => {
    const { upstream, link, feeds } = harness();
    const a = listener();
    const b = listener();
    const feed = feeds.of(link);
    await feed.join(a, HEADERS);
    await feed.join(b, HEADERS);
    await link.end();
    expect([a.ended(), b.ended()]).toEqual([true, true]);
    expect(upstream.streams[0]!.body.destroyed).toBe(true);
    expect(feeds.size).toBe(0);
    await expect(feeds.of(link).join(listener(), HEADERS)).rejects.toThrow();
  });
});

describe('reading the GET stream (the SSE reader)', () => {
  it('reads a stream that starts with a byte order mark', async () => {
    const { upstream, link, feeds } = harness();
    const a = listener();
    await feeds.of(link).join(a, HEADERS);
    upstream.streams[0]!.body.write(`\uFEFFdata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/prompts/list_changed' })}\n\n`);
    upstream.streams[0]!.send(toolsChanged);
    await expect.poll(() => a.heard.length).toBeGreaterThan(0);
    await expect.poll(() => a.heard.at(-1)).toEqual({ kind: 'list-changed', list: 'tools', params: undefined });
    expect(a.heard).toEqual([
      { kind: 'list-changed', list: 'prompts', params: undefined },
      { kind: 'list-changed', list: 'tools', params: undefined },
    ]);
  });

  it('hears the last notification of a stream that ends without its blank line, then reopens the stream', async () => {
    const { upstream, link, feeds } = harness();
    const a = listener();
    await feeds.of(link).join(a, HEADERS);
    upstream.streams[0]!.body.end(`event: message\ndata: ${JSON.stringify(toolsChanged)}`);
    await expect.poll(() => a.gaps()).toBe(1);
    expect(a.heard).toEqual([{ kind: 'list-changed', list: 'tools', params: undefined }]);
    expect(upstream.streams).toHaveLength(2);
  });
});
