/**
 * subscriptions/listen (2026-07-28) through the proxy in front of a legacy upstream (the v1-SDK
 * fixture): the TypeScript SDK v2 client pinned to 2026-07-28 listens for tool list changes and
 * resource updates, which the upstream sends on its GET stream of the pooled session; the
 * upstream restarts in the middle. Raw requests check the wire where the client hides it.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { connectModern, envelope, MODERN, modernHeaders, post, type ModernConnected } from '../helpers/modern-client.js';
import { FIXTURE_TOOLS, killAll, startFixture, startProxy } from '../helpers/processes.js';

afterAll(killAll);

const SUBSCRIPTION_ID = 'io.modelcontextprotocol/subscriptionId';
// Generous: a restarted tsx fixture can take many seconds to start on a busy 2-core machine.
const WAIT = { timeout: 60_000, interval: 50 };

type Note = { method: string; params?: { uri?: string; _meta?: Record<string, unknown> } };

/** Every listen-delivered notification the client's handlers see, and a way to wait for the next ones. */
function recordNotifications(c: ModernConnected) {
  const seen: Note[] = [];
  const waiters: Array<{ test: (n: Note) => boolean; resolve: (n: Note) => void }> = [];
  const record = (n: Note) => {
    seen.push(n);
    for (const w of [...waiters]) {
      if (w.test(n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(n);
      }
    }
  };
  c.client.setNotificationHandler('notifications/tools/list_changed', (n) => record(n as Note));
  c.client.setNotificationHandler('notifications/prompts/list_changed', (n) => record(n as Note));
  c.client.setNotificationHandler('notifications/resources/list_changed', (n) => record(n as Note));
  c.client.setNotificationHandler('notifications/resources/updated', (n) => record(n as Note));
  return {
    seen,
    /** The next notification (from now on) that passes `test`. */
    next(test: (n: Note) => boolean): Promise<Note> {
      return new Promise((resolve) => waiters.push({ test, resolve }));
    },
  };
}

const isTools = (n: Note) => n.method === 'notifications/tools/list_changed';
const isUpdate = (uri: string) => (n: Note) => n.method === 'notifications/resources/updated' && n.params?.uri === uri;

/** A raw listen POST: its status and the messages of its SSE body as they arrive. */
async function rawListen(url: string, id: number | string, notifications: unknown, accept = 'application/json, text/event-stream') {
  const res = await fetch(url, {
    method: 'POST',
    headers: { ...modernHeaders('subscriptions/listen'), accept },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'subscriptions/listen', params: { _meta: envelope(), notifications } }),
  });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  const queue: Record<string, unknown>[] = [];
  let done = false;
  /** The next JSON-RPC message of the stream; undefined once it ended. */
  async function next(): Promise<Record<string, unknown> | undefined> {
    for (;;) {
      const message = queue.shift();
      if (message !== undefined) return message;
      if (done) return undefined;
      const chunk = await reader.read();
      if (chunk.done) done = true;
      else buffered += decoder.decode(chunk.value, { stream: true });
      let end: number;
      while ((end = buffered.indexOf('\n\n')) >= 0) {
        const event = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const data = event
          .split('\n')
          .filter((line) => line.startsWith('data: '))
          .map((line) => line.slice(6))
          .join('\n');
        if (data !== '') queue.push(JSON.parse(data) as Record<string, unknown>);
      }
    }
  }
  return { status: res.status, headers: res.headers, next, cancel: () => reader.cancel() };
}

describe('a pinned 2026-07-28 client listening through the proxy (legacy sdk upstream)', () => {
  it('gets the honoured subset, tagged tool list changes and resource updates, and does not notice an upstream restart', async () => {
    let upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl);
    const c = await connectModern(proxy.url, 'listener');
    // server/discover now declares what listen delivers, as the upstream declares it.
    expect(c.client.getServerCapabilities()).toMatchObject({
      tools: { listChanged: true },
      resources: { subscribe: true, listChanged: true },
    });
    const notes = recordNotifications(c);

    const subscription = await c.client.listen({
      toolsListChanged: true,
      // This upstream has no prompts: not honoured.
      promptsListChanged: true,
      resourceSubscriptions: ['test://readme'],
    });
    expect(subscription.honoredFilter).toEqual({ toolsListChanged: true, resourceSubscriptions: ['test://readme'] });
    // Acknowledged only once the upstream session listens: its GET stream is open, the URI subscribed.
    let stats = await upstream.stats();
    expect(stats.getsOpen).toBe(1);
    expect(stats.subscribes).toEqual(['test://readme']);

    const toolsChanged = notes.next(isTools);
    expect(await upstream.notify('tools')).toBe(1);
    const tools = await toolsChanged;
    const subscriptionId = tools.params?._meta?.[SUBSCRIPTION_ID];
    expect(typeof subscriptionId).toBe('string');
    const updated = notes.next(isUpdate('test://readme'));
    await upstream.notify('updated', 'test://readme');
    expect((await updated).params?._meta?.[SUBSCRIPTION_ID]).toBe(subscriptionId);
    // Not subscribed: never delivered.
    await upstream.notify('updated', 'test://other');

    // The upstream restarts: its sessions, GET streams and subscriptions are gone. The proxy
    // re-establishes the session and the stream, subscribes again, and tells the client that
    // anything may have changed meanwhile: it re-lists tools and re-reads its resource.
    const gapTools = notes.next(isTools);
    const gapUpdate = notes.next(isUpdate('test://readme'));
    await upstream.stop();
    upstream = await startFixture('sdk', { port: upstream.port });
    expect((await gapTools).params?._meta?.[SUBSCRIPTION_ID]).toBe(subscriptionId);
    expect((await gapUpdate).params?._meta?.[SUBSCRIPTION_ID]).toBe(subscriptionId);
    stats = await upstream.stats();
    expect(stats.initializes.listener).toBe(1);
    expect(stats.subscribes).toEqual(['test://readme']);
    expect(stats.getsOpen).toBe(1);
    // And the new upstream session's notifications reach the same subscription.
    const after = notes.next(isTools);
    expect(await upstream.notify('tools')).toBe(1);
    expect((await after).params?._meta?.[SUBSCRIPTION_ID]).toBe(subscriptionId);
    expect(notes.seen.filter((n) => n.params?.uri === 'test://other')).toEqual([]);

    // Closing the subscription closes the upstream stream and unsubscribes.
    await subscription.close();
    expect(await subscription.closed).toBe('local');
    await vi.waitFor(async () => {
      const s = await upstream.stats();
      expect(s.getsOpen).toBe(0);
      expect(s.unsubscribes).toEqual(['test://readme']);
    }, WAIT);
    // Other requests carry on as before.
    expect((await c.client.listTools()).tools.length).toBeGreaterThan(0);
    await c.close();
  }, 120_000);

  it("serves the v2 client's own listChanged option: it opens a subscription at connect and re-lists tools on each change", async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl);
    const lists: string[][] = [];
    let changed!: () => void;
    let next = new Promise<void>((resolve) => (changed = resolve));
    const client = new Client(
      { name: 'auto-listener', version: '2.4.0' },
      {
        capabilities: {},
        versionNegotiation: { mode: { pin: MODERN } },
        listChanged: {
          tools: {
            debounceMs: 0,
            onChanged: (error, items) => {
              expect(error).toBeNull();
              lists.push((items ?? []).map((tool) => tool.name));
              changed();
              next = new Promise<void>((resolve) => (changed = resolve));
            },
          },
        },
      },
    );
    await client.connect(new StreamableHTTPClientTransport(new URL(proxy.url)));
    // discover declared tools.listChanged, so the client listened at connect.
    expect(client.autoOpenedSubscription?.honoredFilter).toEqual({ toolsListChanged: true });
    const first = next;
    expect(await upstream.notify('tools')).toBe(1);
    await first;
    expect(lists).toEqual([FIXTURE_TOOLS]);
    await client.close();
  }, 120_000);

  it('keeps reopening while the upstream is down (killed, connections refused), and signals the gap once it is back', async () => {
    let upstream = await startFixture('sdk');
    // No connect retries inside a request: every reopen attempt fails at once while the upstream is down.
    const proxy = await startProxy(upstream.mcpUrl, { UPSTREAM_RETRY_MS: '0' });
    const c = await connectModern(proxy.url, 'patient');
    const notes = recordNotifications(c);
    const subscription = await c.client.listen({ toolsListChanged: true });
    const gap = notes.next(isTools);
    await upstream.kill();
    // The proxy has tried and failed at least twice before the upstream comes back.
    await vi.waitFor(
      () => expect(proxy.output().match(/upstream notification stream not back yet; retrying/g)?.length ?? 0).toBeGreaterThanOrEqual(2),
      WAIT,
    );
    upstream = await startFixture('sdk', { port: upstream.port });
    const heard = await gap;
    expect(heard.params?._meta?.[SUBSCRIPTION_ID]).toEqual(expect.any(String));
    expect((await upstream.stats()).initializes.patient).toBe(1);
    // Listening on the new process.
    const next = notes.next(isTools);
    expect(await upstream.notify('tools')).toBe(1);
    await next;
    await subscription.close();
    await c.close();
  }, 120_000);

  it('shares one upstream GET stream among the listeners of one pooled session, each getting only what it asked for', async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl);
    // Same clientInfo and capabilities, no credentials: one pool key, one upstream session.
    const a = await connectModern(proxy.url, 'sharer');
    const b = await connectModern(proxy.url, 'sharer');
    const notesA = recordNotifications(a);
    const notesB = recordNotifications(b);
    const subA = await a.client.listen({ toolsListChanged: true });
    const subB = await b.client.listen({ resourceSubscriptions: ['test://readme'] });
    const subB2 = await b.client.listen({ toolsListChanged: true, resourceSubscriptions: ['test://readme'] });
    let stats = await upstream.stats();
    expect(stats.gets).toBe(1);
    expect(stats.activeSessions).toBe(1);
    // One upstream subscription however many listeners want the URI.
    expect(stats.subscribes).toEqual(['test://readme']);
    const metrics = await (await fetch(`${proxy.origin}/metrics`)).text();
    expect(metrics).toMatch(/^mcp_session_proxy_listen_streams 3$/m);
    expect(metrics).toMatch(/^mcp_session_proxy_upstream_notification_streams 1$/m);

    const toolsA = notesA.next(isTools);
    const toolsB = notesB.next(isTools);
    expect(await upstream.notify('tools')).toBe(1);
    const [fromA, fromB] = await Promise.all([toolsA, toolsB]);
    expect(fromA.params?._meta?.[SUBSCRIPTION_ID]).not.toBe(fromB.params?._meta?.[SUBSCRIPTION_ID]);
    // b's resource-only subscription did not get it: b heard it once (on subB2).
    expect(notesB.seen.filter(isTools)).toHaveLength(1);

    const updatesB = notesB.next(isUpdate('test://readme'));
    await upstream.notify('updated', 'test://readme');
    await updatesB;
    // Both of b's subscriptions hear the update, a's does not.
    await vi.waitFor(() => expect(notesB.seen.filter(isUpdate('test://readme'))).toHaveLength(2), WAIT);
    expect(notesA.seen.filter((n) => n.method === 'notifications/resources/updated')).toEqual([]);

    // The last listener of a URI unsubscribes it; the last listener closes the stream.
    await subB.close();
    await subA.close();
    stats = await upstream.stats();
    expect(stats.unsubscribes).toEqual([]);
    expect(stats.getsOpen).toBe(1);
    await subB2.close();
    await vi.waitFor(async () => {
      const s = await upstream.stats();
      expect(s.getsOpen).toBe(0);
      expect(s.unsubscribes).toEqual(['test://readme']);
    }, WAIT);
    // A new listener opens a new stream (no 409 from the upstream's memory of the old one).
    const again = await a.client.listen({ toolsListChanged: true });
    expect(again.honoredFilter).toEqual({ toolsListChanged: true });
    await again.close();
    await a.close();
    await b.close();
  }, 120_000);

  it('answers on the wire as a v2 server does: ack first, stamped; -32602 for a bad filter; 406 without SSE; an empty subset ends at once', async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl);

    const bad = await post(proxy.url, modernHeaders('subscriptions/listen'), {
      jsonrpc: '2.0',
      id: 7,
      method: 'subscriptions/listen',
      params: { _meta: envelope(), notifications: { toolsListChanged: 'yes' } },
    });
    expect(bad.status).toBe(200);
    expect(bad.messages).toEqual([
      {
        jsonrpc: '2.0',
        id: 7,
        error: expect.objectContaining({
          code: -32602,
          message: "Invalid params: 'notifications' is required and must be a valid SubscriptionFilter",
        }),
      },
    ]);
    const missing = await post(proxy.url, modernHeaders('subscriptions/listen'), {
      jsonrpc: '2.0',
      id: 8,
      method: 'subscriptions/listen',
      params: { _meta: envelope() },
    });
    expect(missing.messages[0]).toMatchObject({ id: 8, error: { code: -32602 } });

    const json = await post(
      proxy.url,
      { ...modernHeaders('subscriptions/listen'), accept: 'application/json' },
      {
        jsonrpc: '2.0',
        id: 9,
        method: 'subscriptions/listen',
        params: { _meta: envelope(), notifications: { toolsListChanged: true } },
      },
    );
    expect(json.status).toBe(406);
    expect(json.messages[0]).toMatchObject({ id: 9, error: { code: -32000 } });

    // Nothing honourable (no prompts upstream): acknowledged with {}, then the graceful result.
    const empty = await rawListen(proxy.url, 10, { promptsListChanged: true });
    expect(empty.status).toBe(200);
    expect(empty.headers.get('content-type')).toBe('text/event-stream');
    expect(await empty.next()).toEqual({
      jsonrpc: '2.0',
      method: 'notifications/subscriptions/acknowledged',
      params: { notifications: {}, _meta: { [SUBSCRIPTION_ID]: 10 } },
    });
    expect(await empty.next()).toEqual({
      jsonrpc: '2.0',
      id: 10,
      result: {
        resultType: 'complete',
        _meta: { [SUBSCRIPTION_ID]: 10, 'io.modelcontextprotocol/serverInfo': { name: 'legacy-sdk', version: '1.0.0' } },
      },
    });
    expect(await empty.next()).toBeUndefined();

    // A real one: the ack, then notifications, each stamped with the listen id.
    const listening = await rawListen(proxy.url, 'raw-1', { toolsListChanged: true, resourcesListChanged: true });
    expect(await listening.next()).toEqual({
      jsonrpc: '2.0',
      method: 'notifications/subscriptions/acknowledged',
      params: { notifications: { toolsListChanged: true, resourcesListChanged: true }, _meta: { [SUBSCRIPTION_ID]: 'raw-1' } },
    });
    await upstream.notify('resources');
    expect(await listening.next()).toEqual({
      jsonrpc: '2.0',
      method: 'notifications/resources/list_changed',
      params: { _meta: { [SUBSCRIPTION_ID]: 'raw-1' } },
    });

    // Shutdown: the stream ends with the graceful result.
    await proxy.stop();
    expect(await listening.next()).toMatchObject({
      id: 'raw-1',
      result: { resultType: 'complete', _meta: { [SUBSCRIPTION_ID]: 'raw-1' } },
    });
    expect(await listening.next()).toBeUndefined();
    expect(MODERN).toBe('2026-07-28');
  }, 120_000);

  it('refuses a listen beyond LISTEN_MAX_STREAMS with -32603, as a v2 server at its limit does', async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl, { LISTEN_MAX_STREAMS: '1' });
    const first = await rawListen(proxy.url, 1, { toolsListChanged: true });
    expect(await first.next()).toMatchObject({ method: 'notifications/subscriptions/acknowledged' });
    const refused = await post(proxy.url, modernHeaders('subscriptions/listen'), {
      jsonrpc: '2.0',
      id: 2,
      method: 'subscriptions/listen',
      params: { _meta: envelope(), notifications: { toolsListChanged: true } },
    });
    expect(refused.messages).toEqual([
      { jsonrpc: '2.0', id: 2, error: expect.objectContaining({ code: -32603, message: 'Subscription limit reached' }) },
    ]);
    await first.cancel();
    // Closed streams free their place.
    await vi.waitFor(async () => expect((await upstream.stats()).getsOpen).toBe(0), WAIT);
    const again = await rawListen(proxy.url, 3, { toolsListChanged: true });
    expect(await again.next()).toMatchObject({ method: 'notifications/subscriptions/acknowledged' });
    await again.cancel();
    await vi.waitFor(async () => expect((await upstream.stats()).getsOpen).toBe(0), WAIT);

    // A burst: listens still starting count toward the limit, so exactly one of five gets a stream.
    const controller = new AbortController();
    const burst = await Promise.all(
      [4, 5, 6, 7, 8].map((id) =>
        fetch(proxy.url, {
          method: 'POST',
          headers: modernHeaders('subscriptions/listen'),
          body: JSON.stringify({
            jsonrpc: '2.0',
            id,
            method: 'subscriptions/listen',
            params: { _meta: envelope(), notifications: { toolsListChanged: true } },
          }),
          signal: controller.signal,
        }),
      ),
    );
    const streams = burst.filter((res) => res.headers.get('content-type')?.startsWith('text/event-stream'));
    const refusals = await Promise.all(
      burst.filter((res) => !streams.includes(res)).map(async (res) => (await res.json()) as { error?: { code?: number } }),
    );
    expect(streams).toHaveLength(1);
    expect(refusals.map((r) => r.error?.code)).toEqual([-32603, -32603, -32603, -32603]);
    controller.abort();
  }, 120_000);

  it('sends keep-alive comments, and keeps the pooled session of an open stream from expiring as idle', async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl, { LISTEN_KEEPALIVE_MS: '1000', POOL_IDLE_TTL_MS: '1000' });
    const res = await fetch(proxy.url, {
      method: 'POST',
      headers: modernHeaders('subscriptions/listen'),
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'subscriptions/listen',
        params: { _meta: envelope(), notifications: { toolsListChanged: true } },
      }),
    });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    // Three keep-alives: three idle TTLs of the pooled session have passed without a request.
    while ((text.match(/^: keepalive$/gm) ?? []).length < 3) {
      const chunk = await reader.read();
      expect(chunk.done).toBe(false);
      text += decoder.decode(chunk.value, { stream: true });
    }
    expect(text).toMatch(/^event: message\ndata: \{"jsonrpc":"2.0","method":"notifications\/subscriptions\/acknowledged"/);
    // A request of the same caller finds the same pooled session (an expired one would be ended
    // here, and its listeners with it).
    const listed = await post(proxy.url, modernHeaders('tools/list'), {
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/list',
      params: { _meta: envelope() },
    });
    expect(listed.messages[0]).toMatchObject({ id: 2, result: { resultType: 'complete' } });
    const stats = await upstream.stats();
    expect(stats.deletes).toBe(0);
    expect(stats.initializes['raw-modern']).toBe(1);
    expect(stats.getsOpen).toBe(1);
    expect(await upstream.notify('tools')).toBe(1);
    while (!text.includes('notifications/tools/list_changed')) {
      const chunk = await reader.read();
      expect(chunk.done).toBe(false);
      text += decoder.decode(chunk.value, { stream: true });
    }
    await reader.cancel();
  }, 120_000);

  it('ends a pinned client subscription gracefully when the proxy shuts down', async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl);
    const c = await connectModern(proxy.url, 'graceful');
    const subscription = await c.client.listen({ toolsListChanged: true });
    await proxy.stop();
    expect(await subscription.closed).toBe('graceful');
    await c.close().catch(() => {});
  }, 120_000);
});

describe('an upstream without a GET stream (legacy stateless: GET is 405)', () => {
  it('acknowledges an empty subset and ends the subscription gracefully', async () => {
    const upstream = await startFixture('stateless');
    const proxy = await startProxy(upstream.mcpUrl);
    const c = await connectModern(proxy.url, 'no-stream');
    const subscription = await c.client.listen({ toolsListChanged: true });
    expect(subscription.honoredFilter).toEqual({});
    expect(await subscription.closed).toBe('graceful');
    await c.close();
  }, 120_000);
});
