/** The sealed MRTR requestState (session/request-state.ts), with an injected clock. */
import { describe, expect, it } from 'vitest';
import { deriveKeys } from '../../src/session/sealing.js';
import { createRequestStateCodec, randomStateKey, type RequestState } from '../../src/session/request-state.js';

const STATE: RequestState = {
  request: 'digest-of-the-request',
  credential: Buffer.alloc(32, 7).toString('base64url'),
  parked: { handle: 'h', round: 2 },
  asked: { user_name: 'd1' },
  answers: { user_name: { action: 'accept', content: { name: 'Alice' } } },
};

describe('requestState sealing', () => {
  it('opens what it sealed, and is opaque', async () => {
    const codec = createRequestStateCodec({ key: await randomStateKey(), ttlMs: 60_000 });
    const token = await codec.seal(STATE);
    expect(token).not.toContain('Alice');
    expect(await codec.open(token)).toEqual({ ok: true, state: STATE });
    const bare = await codec.seal({ ...STATE, credential: undefined, parked: undefined });
    expect(await codec.open(bare)).toEqual({ ok: true, state: { ...STATE, credential: undefined, parked: undefined } });
  });

  it('refuses a tampered token, garbage, and a token sealed with another key', async () => {
    const codec = createRequestStateCodec({ key: await randomStateKey(), ttlMs: 60_000 });
    const token = await codec.seal(STATE);
    const flipped = token.slice(0, -3) + (token.at(-3) === 'A' ? 'B' : 'A') + token.slice(-2);
    for (const bad of [`${token}-TAMPERED`, flipped, '', 'x', 'a.b.c.d.e']) expect(await codec.open(bad)).toEqual({ ok: false, reason: 'invalid' });
    const other = createRequestStateCodec({ key: await randomStateKey(), ttlMs: 60_000 });
    expect(await other.open(token)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('is shared by replicas with the same secret (one HKDF purpose of its own)', async () => {
    const secret = Buffer.alloc(32, 3);
    const [a, b] = await Promise.all([deriveKeys(secret), deriveKeys(secret)]);
    const token = await createRequestStateCodec({ key: a.requestState, ttlMs: 60_000 }).seal(STATE);
    expect((await createRequestStateCodec({ key: b.requestState, ttlMs: 60_000 }).open(token)).ok).toBe(true);
    // Not the session-id key: a sealed id is no requestState and the other way round.
    expect((await createRequestStateCodec({ key: b.sealing, ttlMs: 60_000 }).open(token)).ok).toBe(false);
  });

  it('expires', async () => {
    let now = 1_000_000_000_000;
    const codec = createRequestStateCodec({ key: await randomStateKey(), ttlMs: 60_000, now: () => now });
    const token = await codec.seal(STATE);
    now += 59_000;
    expect((await codec.open(token)).ok).toBe(true);
    now += 2_000;
    expect(await codec.open(token)).toEqual({ ok: false, reason: 'expired' });
  });

  it('leaves large answers out rather than growing without bound', async () => {
    const codec = createRequestStateCodec({ key: await randomStateKey(), ttlMs: 60_000 });
    const big = { ...STATE, answers: { user_name: { text: 'x'.repeat(100_000) } } };
    const opened = await codec.open(await codec.seal(big));
    expect(opened).toEqual({ ok: true, state: { ...STATE, answers: {} } });
  });
});
