import { PassThrough } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Cancellation, UpstreamClient, UpstreamRequest, UpstreamResponse } from '../../src/upstream/client.js';
import { ACK_TIMEOUT_MS, HostedListen, LISTEN_RETRY_MIN_MS, listenFilterOf, missedNotificationsOf } from '../../src/flows/hosted/listen.js';

/** An upstream whose listen answers the test writes by hand, event by event. */
function fakeUpstream(status = 200) {
  const requests: { body: Record<string, unknown>; stream: PassThrough }[] = [];
  const waiting: (() => void)[] = [];
  const upstream: UpstreamClient = {
    request(request: UpstreamRequest): Promise<UpstreamResponse> {
      const stream = new PassThrough();
      requests.push({ body: JSON.parse(String(request.body)) as Record<string, unknown>, stream });
      waiting.splice(0).forEach((w) => w());
      (request.signal as Cancellation | undefined)?.once('abort', () => stream.destroy());
      if (status !== 200) {
        stream.end('{"jsonrpc":"2.0","id":null,"error":{"code":-32601,"message":"Method not found"}}');
        return Promise.resolve({ statusCode: status, headers: { 'content-type': 'application/json' }, body: stream });
      }
      return Promise.resolve({ statusCode: 200, headers: { 'content-type': 'text/event-stream' }, body: stream });
    },
    probe: () => Promise.resolve(true),
    close: () => Promise.resolve(),
  };
  return {
    upstream,
    requests,
    /** Resolves once the n-th listen request (1-based) has been made. */
    async nth(n: number) {
      while (requests.length < n) await new Promise<void>((resolve) => waiting.push(resolve));
      return requests[n - 1]!;
    },
  };
}

function event(stream: PassThrough, message: object) {
  stream.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
}

const ACK = (notifications: object) => ({
  jsonrpc: '2.0',
  method: 'notifications/subscriptions/acknowledged',
  params: { notifications, _meta: { 'io.modelcontextprotocol/subscriptionId': 'x' } },
});

function listenWith(fake: ReturnType<typeof fakeUpstream>, subscriptions: Set<string>) {
  const written: unknown[] = [];
  const refused: unknown[] = [];
  let opened = 0;
  const listen = new HostedListen(
    {
      upstream: fake.upstream,
      log: pino({ level: 'silent' }),
      label: 'held-test',
      client: { clientInfo: { name: 'c', version: '1' }, capabilities: {} },
      headers: {},
      write: (m) => written.push(m),
      refused: (answer) => refused.push(answer?.response.statusCode ?? 'unreachable'),
      opened: () => opened++,
    },
    subscriptions,
  );
  return { listen, written, refused, opened: () => opened };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('a held session GET stream fed by subscriptions/listen', () => {
  it('asks for every list-changed kind and the subscribed URIs; tells what may have been missed from the ack', () => {
    expect(listenFilterOf(new Set())).toEqual({ toolsListChanged: true, promptsListChanged: true, resourcesListChanged: true });
    expect(listenFilterOf(new Set(['b', 'a']))).toMatchObject({ resourceSubscriptions: ['a', 'b'] });
    expect(missedNotificationsOf({ toolsListChanged: true, resourceSubscriptions: ['u', 3] })).toEqual([
      { jsonrpc: '2.0', method: 'notifications/tools/list_changed' },
      { jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri: 'u' } },
    ]);
    expect(missedNotificationsOf(null)).toEqual([]);
  });

  it('opens at the ack, forwards notifications without 2026 keys, drops the ack and the final result', async () => {
    const fake = fakeUpstream();
    const l = listenWith(fake, new Set());
    const first = await fake.nth(1);
    expect(first.body).toMatchObject({ method: 'subscriptions/listen', params: { notifications: listenFilterOf(new Set()) } });
    event(first.stream, ACK({ toolsListChanged: true }));
    await vi.waitFor(() => expect(l.opened()).toBe(1));
    expect(l.listen.kind).toBe('listening');
    event(first.stream, {
      jsonrpc: '2.0',
      method: 'notifications/tools/list_changed',
      params: { _meta: { 'io.modelcontextprotocol/subscriptionId': 'x' } },
    });
    event(first.stream, { jsonrpc: '2.0', id: first.body.id as string, result: { resultType: 'complete' } });
    await vi.waitFor(() => expect(l.written).toEqual([{ jsonrpc: '2.0', method: 'notifications/tools/list_changed' }]));
    l.listen.end();
    expect(l.listen.kind).toBe('ended');
  });

  it('does not wait forever for an ack: a first listen that never acknowledges is refused, a later one re-opened', async () => {
    vi.useFakeTimers();
    const fake = fakeUpstream();
    const l = listenWith(fake, new Set());
    await fake.nth(1);
    // The stream is open, but says nothing.
    await vi.advanceTimersByTimeAsync(ACK_TIMEOUT_MS - 1);
    expect(l.refused).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    await vi.waitFor(() => expect(l.refused).toEqual(['unreachable']));
    expect(l.listen.kind).toBe('ended');

    const again = fakeUpstream();
    const m = listenWith(again, new Set());
    event((await again.nth(1)).stream, ACK({ toolsListChanged: true }));
    await vi.waitFor(() => expect(m.listen.kind).toBe('listening'));
    // A filter change whose listen never acknowledges: the subscribe still answers, once the deadline passes.
    let settled = false;
    void m.listen.refilter().then(() => (settled = true));
    await again.nth(2);
    await vi.advanceTimersByTimeAsync(ACK_TIMEOUT_MS);
    await vi.waitFor(() => expect(settled).toBe(true));
    m.listen.end();
  });

  it('re-opens a broken listen after a backoff and announces what may have been missed', async () => {
    vi.useFakeTimers();
    const fake = fakeUpstream();
    const l = listenWith(fake, new Set(['test://u']));
    const first = await fake.nth(1);
    event(first.stream, ACK({ toolsListChanged: true, resourceSubscriptions: ['test://u'] }));
    await vi.waitFor(() => expect(l.listen.kind).toBe('listening'));
    first.stream.end();
    await vi.waitFor(() => expect(l.listen.kind).toBe('backoff'));
    expect(fake.requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(LISTEN_RETRY_MIN_MS);
    const second = await fake.nth(2);
    event(second.stream, ACK({ toolsListChanged: true, resourceSubscriptions: ['test://u'] }));
    await vi.waitFor(() => expect(l.listen.kind).toBe('listening'));
    expect(l.written).toEqual([
      { jsonrpc: '2.0', method: 'notifications/tools/list_changed' },
      { jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri: 'test://u' } },
    ]);
    expect(l.opened()).toBe(1);
    l.listen.end();
  });

  it('listens again when the subscribed set changes; the old listen ends at the new ack, which settles the change', async () => {
    const fake = fakeUpstream();
    const subscriptions = new Set<string>();
    const l = listenWith(fake, subscriptions);
    const first = await fake.nth(1);
    event(first.stream, ACK({ toolsListChanged: true }));
    await vi.waitFor(() => expect(l.opened()).toBe(1));
    subscriptions.add('test://u');
    let settled = false;
    const change = l.listen.refilter().then(() => (settled = true));
    const second = await fake.nth(2);
    expect(second.body).toMatchObject({ params: { notifications: { resourceSubscriptions: ['test://u'] } } });
    expect(settled).toBe(false);
    expect(first.stream.destroyed).toBe(false);
    event(second.stream, ACK({ toolsListChanged: true, resourceSubscriptions: ['test://u'] }));
    await change;
    expect(first.stream.destroyed).toBe(true);
    // No catch-up for a filter change: nothing was missed.
    expect(l.written).toEqual([]);
    l.listen.end();
  });

  it('a first listen the upstream refuses is answered as the upstream answered', async () => {
    const fake = fakeUpstream(404);
    const l = listenWith(fake, new Set());
    await vi.waitFor(() => expect(l.refused).toEqual([404]));
    expect(l.listen.kind).toBe('ended');
    expect(l.opened()).toBe(0);
  });
});

describe('reading a listen stream (the SSE reader)', () => {
  it('reads a listen stream that starts with a byte order mark', async () => {
    const fake = fakeUpstream();
    const l = listenWith(fake, new Set());
    const first = await fake.nth(1);
    first.stream.write(`\uFEFFdata: ${JSON.stringify(ACK({ toolsListChanged: true }))}\n\n`);
    await vi.waitFor(() => expect(l.opened()).toBe(1));
    expect(l.listen.kind).toBe('listening');
    l.listen.end();
  });

  it('hears the last notification of a listen stream that ends without its blank line', async () => {
    const fake = fakeUpstream();
    const l = listenWith(fake, new Set());
    const first = await fake.nth(1);
    event(first.stream, ACK({ toolsListChanged: true }));
    await vi.waitFor(() => expect(l.opened()).toBe(1));
    first.stream.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' })}`);
    await vi.waitFor(() => expect(l.listen.kind).toBe('backoff'));
    expect(l.written).toEqual([{ jsonrpc: '2.0', method: 'notifications/tools/list_changed' }]);
    l.listen.end();
  });
});
