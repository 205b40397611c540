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

/** The token's bytes with one of them changed. */
function withByte(token: string, index: number, change: (byte: number) => number): string {
  const bytes = Buffer.from(token, 'base64url');
  bytes[index] = change(bytes[index]!);
  return bytes.toString('base64url');
}

describe('requestState sealing', () => {
  it('opens what it sealed, and is opaque', () => {
    const codec = createRequestStateCodec({ key: randomStateKey(), ttlMs: 60_000 });
    const token = codec.seal(STATE);
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(token).not.toContain('Alice');
    expect(Buffer.from(token, 'base64url').toString('latin1')).not.toContain('Alice');
    expect(codec.open(token)).toEqual({ ok: true, state: STATE });
    const bare = codec.seal({ ...STATE, credential: undefined, parked: undefined });
    expect(codec.open(bare)).toEqual({ ok: true, state: { ...STATE, credential: undefined, parked: undefined } });
    // A fresh IV each time: the same state never seals to the same token.
    expect(codec.seal(STATE)).not.toBe(token);
  });

  it('refuses a tampered token, garbage, and a token sealed with another key', () => {
    const codec = createRequestStateCodec({ key: randomStateKey(), ttlMs: 60_000 });
    const token = codec.seal(STATE);
    const length = Buffer.from(token, 'base64url').length;
    const tampered = [
      withByte(token, 0, (b) => (b === 1 ? 2 : 1)), // the format byte (authenticated)
      withByte(token, 5, (b) => b ^ 1), // the IV
      withByte(token, 20, (b) => b ^ 1), // the ciphertext
      withByte(token, length - 1, (b) => b ^ 1), // the tag
      Buffer.from(token, 'base64url')
        .subarray(0, length - 4)
        .toString('base64url'), // a shortened tag
    ];
    for (const bad of [...tampered, `${token}-TAMPERED`, `${token}=`, ` ${token}`, '', 'x', 'a.b.c.d.e', 'A'.repeat(200_000)]) {
      expect(codec.open(bad)).toEqual({ ok: false, reason: 'invalid' });
    }
    const other = createRequestStateCodec({ key: randomStateKey(), ttlMs: 60_000 });
    expect(other.open(token)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('is shared by replicas with the same secret (one HKDF purpose of its own)', async () => {
    const secret = Buffer.alloc(32, 3);
    const [a, b] = await Promise.all([deriveKeys(secret), deriveKeys(secret)]);
    const token = createRequestStateCodec({ key: a.requestState, ttlMs: 60_000 }).seal(STATE);
    expect(createRequestStateCodec({ key: b.requestState, ttlMs: 60_000 }).open(token).ok).toBe(true);
    // Not another purpose's key: the binding key (a Buffer like this one) opens nothing.
    expect(createRequestStateCodec({ key: b.binding, ttlMs: 60_000 }).open(token).ok).toBe(false);
  });

  it('refuses a key of the wrong size at startup', () => {
    expect(() => createRequestStateCodec({ key: Buffer.alloc(16), ttlMs: 60_000 })).toThrow(/32 bytes/);
  });

  it('expires', () => {
    let now = 1_000_000_000_000;
    const codec = createRequestStateCodec({ key: randomStateKey(), ttlMs: 60_000, now: () => now });
    const token = codec.seal(STATE);
    now += 59_000;
    expect(codec.open(token).ok).toBe(true);
    now += 2_000;
    expect(codec.open(token)).toEqual({ ok: false, reason: 'expired' });
  });

  it('compresses a large state, and leaves answers too large to carry out', () => {
    const codec = createRequestStateCodec({ key: randomStateKey(), ttlMs: 60_000 });
    const large = { ...STATE, answers: { user_name: { text: 'x'.repeat(20_000) } } };
    const token = codec.seal(large);
    expect(token.length).toBeLessThan(2_000);
    expect(codec.open(token)).toEqual({ ok: true, state: large });
    const big = { ...STATE, answers: { user_name: { text: 'x'.repeat(100_000) } } };
    expect(codec.open(codec.seal(big))).toEqual({ ok: true, state: { ...STATE, answers: {} } });
  });
});
