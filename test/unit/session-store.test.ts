import { describe, expect, it } from 'vitest';
import { mintClientSessionId, type LogId } from '../../src/session/ids.js';
import type { EndReason } from '../../src/observability/metrics.js';
import { createSessionStore, newSession, type Session, type SessionStoreOptions } from '../../src/session/store.js';
import { UpstreamLink } from '../../src/upstream/link.js';
import { fakeLinkDeps } from '../helpers/fake-upstream.js';

const { deps } = fakeLinkDeps();
const INIT_PARAMS = '{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}';

function session(): Session {
  const id = mintClientSessionId();
  return newSession({
    id,
    logId: `fp:${id.slice(0, 12)}` as LogId,
    credential: undefined,
    identity: undefined,
    nonce: undefined,
    expiresAt: Infinity,
    backend: { kind: 'relayed', link: new UpstreamLink(deps, INIT_PARAMS, { kind: 'reopened', protocolVersion: '2025-06-18' }) },
  });
}

const TTL = 60_000;

/**
 * A store on a hand-driven clock, recording every onEnd call. The clock starts at 0 and moves
 * several times within one real millisecond: both once tripped lru-cache's clock handling.
 */
function harness(overrides: Partial<SessionStoreOptions> = {}) {
  let time = 0;
  const ended: { id: string; reason: EndReason }[] = [];
  const store = createSessionStore({
    maxSessions: 3,
    idleTtlMs: TTL,
    now: () => time,
    onEnd: (s, reason) => ended.push({ id: s.id, reason }),
    ...overrides,
  });
  const advance = (ms: number) => {
    time += ms;
  };
  return { store, ended, advance };
}

describe('session store basics', () => {
  it('stores and returns sessions by id', () => {
    const { store, ended } = harness();
    const a = session();
    const b = session();
    store.add(a);
    store.add(b);
    expect(store.get(a.id)).toBe(a);
    expect(store.get(b.id)).toBe(b);
    expect(store.get(mintClientSessionId())).toBeUndefined();
    expect(store.size).toBe(2);
    expect(ended).toEqual([]);
  });

  it('returns the session object itself, so its backend is shared by every lookup', () => {
    const { store } = harness();
    const a = session();
    store.add(a);
    expect(store.get(a.id)).toBe(a);
    expect(store.get(a.id)?.backend).toBe(a.backend);
  });

  it('deletes with reason "delete", once', () => {
    const { store, ended } = harness();
    const a = session();
    store.add(a);
    expect(store.delete(a.id)).toBe(true);
    expect(store.get(a.id)).toBeUndefined();
    expect(store.size).toBe(0);
    expect(ended).toEqual([{ id: a.id, reason: 'delete' }]);
    expect(store.delete(a.id)).toBe(false);
    expect(ended).toHaveLength(1);
  });

  it('deletes a sealed session past its age limit with reason "max_age", and later deletes as "delete" again', () => {
    const { store, ended } = harness();
    const [a, b] = [session(), session()];
    store.add(a);
    store.add(b);
    expect(store.delete(a.id, 'max_age')).toBe(true);
    store.delete(b.id);
    expect(ended).toEqual([
      { id: a.id, reason: 'max_age' },
      { id: b.id, reason: 'delete' },
    ]);
  });

  it('newSession keeps exactly the identity fields, the backend and the renewal slot', () => {
    const s = session();
    expect(Object.keys(s).sort()).toEqual(['backend', 'credential', 'expiresAt', 'id', 'identity', 'logId', 'nonce', 'renewal']);
  });

  it('does not end a session that is added again', () => {
    const { store, ended } = harness();
    const a = session();
    store.add(a);
    store.add(a);
    expect(store.size).toBe(1);
    expect(ended).toEqual([]);
  });

  it('works without onEnd', () => {
    const store = createSessionStore({ maxSessions: 1, idleTtlMs: TTL });
    const a = session();
    const b = session();
    store.add(a);
    store.add(b);
    expect(store.get(a.id)).toBeUndefined();
    expect(store.get(b.id)).toBe(b);
    expect(store.delete(b.id)).toBe(true);
    expect(store.size).toBe(0);
  });
});

describe('session store bound', () => {
  it('never holds more than maxSessions, evicting the oldest with reason "evict"', () => {
    const { store, ended } = harness();
    const sessions = [session(), session(), session(), session(), session()];
    for (const s of sessions) store.add(s);
    expect(store.size).toBe(3);
    expect(ended).toEqual([
      { id: sessions[0]?.id, reason: 'evict' },
      { id: sessions[1]?.id, reason: 'evict' },
    ]);
    expect(store.get(sessions[0]!.id)).toBeUndefined();
    expect(store.get(sessions[1]!.id)).toBeUndefined();
    for (const s of sessions.slice(2)) expect(store.get(s.id)).toBe(s);
  });

  it('evicts the least recently used session, not the oldest one', () => {
    const { store, ended } = harness();
    const [a, b, c, d] = [session(), session(), session(), session()];
    store.add(a);
    store.add(b);
    store.add(c);
    expect(store.get(a.id)).toBe(a); // a is now the most recently used
    store.add(d);
    expect(ended).toEqual([{ id: b.id, reason: 'evict' }]);
    expect(store.get(a.id)).toBe(a);
    expect(store.get(b.id)).toBeUndefined();
    expect(store.get(c.id)).toBe(c);
    expect(store.get(d.id)).toBe(d);
  });

  it('holds a flood of sessions to the bound', () => {
    const { store, ended } = harness({ maxSessions: 100 });
    for (let i = 0; i < 1000; i++) store.add(session());
    expect(store.size).toBe(100);
    expect(ended).toHaveLength(900);
    expect(ended.every((e) => e.reason === 'evict')).toBe(true);
  });
});

describe('session store idle TTL', () => {
  it('keeps a session until it has been idle for longer than the TTL', () => {
    const { store, ended, advance } = harness();
    const a = session();
    store.add(a);
    advance(TTL - 1);
    expect(store.get(a.id)).toBe(a);
    expect(ended).toEqual([]);
  });

  it('expires an idle session with reason "expire"', () => {
    const { store, ended, advance } = harness();
    const a = session();
    store.add(a);
    advance(TTL + 1);
    expect(store.get(a.id)).toBeUndefined();
    expect(ended).toEqual([{ id: a.id, reason: 'expire' }]);
  });

  it('restarts the idle clock on every use', () => {
    const { store, ended, advance } = harness();
    const a = session();
    store.add(a);
    advance(TTL - 1);
    expect(store.get(a.id)).toBe(a);
    advance(TTL - 1); // 2 × TTL - 2 since creation, but only TTL - 1 since last use
    expect(store.get(a.id)).toBe(a);
    advance(TTL - 1);
    expect(store.get(a.id)).toBe(a);
    expect(ended).toEqual([]);
    advance(TTL + 1);
    expect(store.get(a.id)).toBeUndefined();
    expect(ended).toEqual([{ id: a.id, reason: 'expire' }]);
  });

  it('expires each session on its own clock', () => {
    const { store, ended, advance } = harness();
    const a = session();
    const b = session();
    store.add(a);
    advance(TTL / 2);
    store.add(b);
    advance(TTL / 2 + 1);
    expect(store.get(a.id)).toBeUndefined();
    expect(store.get(b.id)).toBe(b);
    expect(ended).toEqual([{ id: a.id, reason: 'expire' }]);
  });

  it('reports each ending once, with its own reason', () => {
    const { store, ended, advance } = harness({ maxSessions: 2 });
    const [a, b, c] = [session(), session(), session()];
    store.add(a);
    store.add(b);
    store.add(c); // evicts a
    expect(store.delete(b.id)).toBe(true);
    advance(TTL + 1);
    expect(store.get(c.id)).toBeUndefined();
    expect(store.get(a.id)).toBeUndefined();
    expect(store.get(b.id)).toBeUndefined();
    expect(ended).toEqual([
      { id: a.id, reason: 'evict' },
      { id: b.id, reason: 'delete' },
      { id: c.id, reason: 'expire' },
    ]);
  });
});
