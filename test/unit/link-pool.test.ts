/**
 * The pool of upstream sessions shared by callers without a session: who shares, the bounds, and
 * that every upstream session leaving the pool is ended upstream. In-memory upstream, hand clock.
 */
import { describe, expect, it } from 'vitest';
import { Cancellation } from '../../src/upstream/client.js';
import type { Outgoing } from '../../src/upstream/link.js';
import { createLinkPool, type PoolEntry } from '../../src/upstream/pool.js';
import { fakeLinkDeps, FakeUpstream } from '../helpers/fake-upstream.js';

const params = (name: string, capabilities: object = {}) =>
  JSON.stringify({ protocolVersion: '2025-11-25', capabilities, clientInfo: { name, version: '1' } });

function entry(overrides: Partial<PoolEntry> = {}): PoolEntry {
  return { credential: Buffer.from('alice'), initParams: params('app'), protocolVersion: '2025-11-25', logLevel: undefined, ...overrides };
}

function call(id: number): Outgoing {
  return {
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: Buffer.from(`{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"echo"}}`),
    initialized: false,
    versionFromLink: true,
    cancel: new Cancellation(),
    replayed: undefined,
  };
}

async function ok(promise: Promise<unknown>) {
  const answer = (await promise) as { response: { statusCode: number }; payload: NodeJS.ReadableStream | Buffer };
  if (!Buffer.isBuffer(answer.payload)) answer.payload.resume();
  return answer.response.statusCode;
}

function harness(max = 3) {
  let time = 0;
  const upstream = new FakeUpstream();
  const { deps, metrics } = fakeLinkDeps(upstream);
  const pool = createLinkPool(deps, { max, idleTtlMs: 60_000, now: () => time });
  return { pool, upstream, metrics, advance: (ms: number) => void (time += ms) };
}

describe('who shares a pooled upstream session', () => {
  it('callers with the same credentials, client and capabilities share one; concurrent first calls open it once', async () => {
    const { pool, upstream, metrics } = harness();
    const a = pool.link(entry());
    const b = pool.link(entry());
    expect(b).toBe(a);
    expect(await Promise.all([ok(a.send(call(1))), ok(b.send(call(2)))])).toEqual([200, 200]);
    expect(upstream.count('initialize')).toBe(1);
    expect(upstream.count('notifications/initialized')).toBe(1);
    // Opening a pooled session is not a replay.
    expect(metrics.replays).toEqual([]);
    expect(metrics.pool).toEqual(['miss', 'hit']);
  });

  it('never shares across credentials, capabilities, clients, log levels or protocol versions', () => {
    const { pool } = harness(10);
    const base = pool.link(entry());
    const others = [
      entry({ credential: Buffer.from('mallory') }),
      entry({ credential: undefined }),
      entry({ initParams: params('app', { sampling: {} }) }),
      entry({ initParams: params('other-app') }),
      entry({ logLevel: 'debug' }),
      entry({ protocolVersion: '2025-06-18' }),
    ].map((e) => pool.link(e));
    expect(new Set([base, ...others]).size).toBe(7);
  });

  it('sends logging/setLevel once per upstream session when the caller asked a level and the upstream logs', async () => {
    const { pool, upstream } = harness();
    upstream.capabilities = { logging: {} };
    const link = pool.link(entry({ logLevel: 'warning' }));
    expect(await ok(link.send(call(1)))).toBe(200);
    expect(await ok(link.send(call(2)))).toBe(200);
    expect(upstream.count('logging/setLevel')).toBe(1);
    upstream.capabilities = {};
    const quiet = pool.link(entry({ logLevel: 'info', credential: Buffer.from('bob') }));
    expect(await ok(quiet.send(call(3)))).toBe(200);
    expect(upstream.count('logging/setLevel')).toBe(1);
  });

  it('describes the upstream with its InitializeResult, opening the session if need be', async () => {
    const { pool, upstream } = harness();
    upstream.capabilities = { tools: { listChanged: true } };
    const result = await pool.link(entry()).describe(call(0));
    expect(result).toEqual({
      protocolVersion: '2025-06-18',
      capabilities: { tools: { listChanged: true } },
      serverInfo: { name: 'fake', version: '1' },
    });
  });
});

describe('the pool is bounded, and what leaves it is ended upstream', () => {
  it('evicts the least recently used beyond its count limit and DELETEs its upstream session', async () => {
    const { pool, upstream, metrics } = harness(2);
    const [a, b] = [pool.link(entry({ credential: Buffer.from('a') })), pool.link(entry({ credential: Buffer.from('b') }))];
    await ok(a.send(call(1)));
    await ok(b.send(call(2)));
    pool.link(entry({ credential: Buffer.from('a') })); // a is now the most recently used
    const c = pool.link(entry({ credential: Buffer.from('c') }));
    expect(pool.size).toBe(2);
    expect(b.kind).toBe('ended');
    expect(a.kind).toBe('live');
    expect(c.kind).toBe('unopened');
    await expect.poll(() => upstream.deletes().map((s) => s.sessionId)).toEqual(['upstream-2']);
    expect(metrics.pool).toContain('evicted');
  });

  it('ends pooled sessions idle longer than the TTL', async () => {
    const { pool, upstream, advance } = harness();
    const link = pool.link(entry());
    await ok(link.send(call(1)));
    advance(60_001);
    const fresh = pool.link(entry());
    expect(fresh).not.toBe(link);
    expect(link.kind).toBe('ended');
    await expect.poll(() => upstream.deletes().map((s) => s.sessionId)).toEqual(['upstream-1']);
  });

  it('touch() restarts the idle clock (a link with listeners stays pooled), and counts no lookup', async () => {
    const { pool, advance, metrics } = harness();
    const link = pool.link(entry());
    await ok(link.send(call(1)));
    for (let i = 0; i < 3; i++) {
      advance(40_000);
      pool.touch(entry());
    }
    expect(pool.link(entry())).toBe(link);
    expect(link.kind).toBe('live');
    expect(metrics.pool).toEqual(['miss', 'hit']);
  });

  it('clear() ends every pooled session', async () => {
    const { pool, upstream } = harness();
    const links = [pool.link(entry()), pool.link(entry({ credential: Buffer.from('b') }))];
    await Promise.all(links.map((l, i) => ok(l.send(call(i)))));
    pool.clear();
    expect(pool.size).toBe(0);
    await expect.poll(() => upstream.deletes().length).toBe(2);
  });
});
