import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCredentialBinding } from '../../src/session/binding.js';
import { asClientSessionId, isSealedId } from '../../src/session/ids.js';
import { EncryptJWT } from 'jose';
import { createSealer, deriveKeys, type OpenResult, type Sealer, type SessionState } from '../../src/session/sealing.js';
import { parseSecret, readSecretFile } from '../../src/session/secrets.js';
import { createTerminatedIds } from '../../src/session/store.js';

// What the official TypeScript SDK client sends (with a typical client's capabilities).
const SDK_PARAMS = {
  protocolVersion: '2025-11-25',
  capabilities: { sampling: {}, elicitation: { form: {}, url: {} }, roots: { listChanged: true } },
  clientInfo: { name: 'claude-code', version: '2.0.14' },
};
const HOUR = 3600_000;
const ALICE = { authorization: 'Bearer alice-token' };

async function sealerFor(secrets: Buffer[], options: { maxAgeMs?: number; now?: () => number } = {}) {
  const keys = await Promise.all(secrets.map(deriveKeys));
  const bindings = keys.map((k) => createCredentialBinding(undefined, k.binding));
  const sealer = createSealer({
    keys: keys.map((k, i) => ({ sealing: k.sealing, binding: bindings[i]! })),
    maxAgeMs: options.maxAgeMs ?? HOUR,
    ...(options.now ? { now: options.now } : {}),
  });
  return { sealer, binding: bindings[0]! };
}

function state(binding: ReturnType<typeof createCredentialBinding>, params: object = SDK_PARAMS): SessionState {
  return { params, protocolVersion: '2025-11-25', credential: binding.of(ALICE) };
}

async function sealOne(sealer: Sealer, s: SessionState) {
  const sealed = await sealer.seal(s);
  if (sealed === undefined) throw new Error('not sealed');
  return sealed;
}

function expectRefused(result: OpenResult, reason: 'invalid' | 'expired') {
  expect(result).toEqual({ ok: false, reason });
}

const secret = () => randomBytes(32);

describe('sealed session ids', () => {
  it('open to exactly what was sealed, with the nonce and issue time', async () => {
    const { sealer, binding } = await sealerFor([secret()], { now: () => 1_795_000_000_500 });
    const s = state(binding);
    const sealed = await sealOne(sealer, s);
    const opened = await sealer.open(sealed.id);
    expect(opened.ok).toBe(true);
    if (!opened.ok) return;
    expect(JSON.parse(opened.session.initParams)).toEqual(SDK_PARAMS);
    expect(opened.session.protocolVersion).toBe('2025-11-25');
    expect(opened.session.credential).toEqual(s.credential);
    expect(opened.session.nonce).toBe(sealed.nonce);
    // Whole seconds, as JWT's iat.
    expect(opened.session.issuedAtMs).toBe(1_795_000_000_000);
    expect(sealed.issuedAtMs).toBe(1_795_000_000_000);
    expect(opened.session.binding.matches(opened.session.credential, ALICE)).toBe(true);
    expect(opened.session.binding.matches(opened.session.credential, { authorization: 'Bearer mallory' })).toBe(false);
  });

  it('are compact JWEs (dir, A256GCM) of visible ASCII, under 1 KB for SDK client params, and never repeat', async () => {
    const { sealer, binding } = await sealerFor([secret()]);
    const a = await sealOne(sealer, state(binding));
    const b = await sealOne(sealer, state(binding));
    expect(a.id.length).toBeLessThanOrEqual(1024);
    expect(a.id).toMatch(/^[\x21-\x7e]+$/);
    expect(JSON.parse(Buffer.from(a.id.split('.')[0]!, 'base64url').toString())).toEqual({ alg: 'dir', enc: 'A256GCM' });
    expect(isSealedId(a.id)).toBe(true);
    expect(asClientSessionId(a.id)).toBe(a.id);
    expect(a.id).not.toBe(b.id);
    expect(a.nonce).not.toBe(b.nonce);
    // Nothing of the params is readable in the id.
    expect(a.id).not.toContain(Buffer.from('claude-code').toString('base64url').slice(0, 8));
  });

  it('compress params that would not fit in 1 KB, and refuse params too large for a header', async () => {
    const { sealer, binding } = await sealerFor([secret()]);
    const roomy = { ...SDK_PARAMS, clientInfo: { name: 'x', version: '1', description: 'a fairly long description '.repeat(30) } };
    const big = await sealOne(sealer, state(binding, roomy));
    expect(JSON.stringify(roomy).length).toBeGreaterThan(800);
    expect(JSON.parse(Buffer.from(big.id.split('.')[0]!, 'base64url').toString())).toMatchObject({ zip: 'DEF' });
    expect(big.id.length).toBeLessThanOrEqual(1024);
    const opened = await sealer.open(big.id);
    expect(opened.ok && JSON.parse(opened.session.initParams)).toEqual(roomy);

    const huge = { ...SDK_PARAMS, clientInfo: { name: 'x', version: '1', blob: randomBytes(6000).toString('base64') } };
    expect(await sealer.seal(state(binding, huge))).toBeUndefined();
    // Compresses to a small id, but would not open again (decompression is bounded): not sealed.
    const repetitive = { ...SDK_PARAMS, clientInfo: { name: 'x', version: '1', blob: 'a'.repeat(400_000) } };
    expect(await sealer.seal(state(binding, repetitive))).toBeUndefined();
  });

  it('refuse any change to any part, and truncation', async () => {
    const { sealer, binding } = await sealerFor([secret()]);
    const { id } = await sealOne(sealer, state(binding));
    const parts = id.split('.');
    const flip = (text: string, at: number) => text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1);
    for (const part of [0, 2, 3, 4]) {
      for (const at of [0, Math.floor(parts[part]!.length / 2), parts[part]!.length - 2, parts[part]!.length - 1]) {
        const tampered = parts.map((p, i) => (i === part ? flip(p, at) : p)).join('.');
        expectRefused(await sealer.open(tampered), 'invalid');
      }
    }
    for (const cut of [id.slice(0, -1), id.slice(0, -22), parts.slice(0, 4).join('.'), id.slice(0, id.length / 2)]) {
      expectRefused(await sealer.open(cut), 'invalid');
    }
  });

  it('refuse every other spelling of an id, also those that decode to the same bytes', async () => {
    const { sealer, binding } = await sealerFor([secret()]);
    const { id } = await sealOne(sealer, state(binding));
    const parts = id.split('.');
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    let sameBytes = 0;
    for (const part of [3, 4]) {
      const text = parts[part]!;
      for (const last of alphabet) {
        const variant = text.slice(0, -1) + last;
        if (variant === text) continue;
        // A decoder that ignores the unused low bits reads some variants as the very same bytes.
        if (Buffer.from(variant, 'base64url').equals(Buffer.from(text, 'base64url'))) sameBytes++;
        expectRefused(await sealer.open(parts.map((p, i) => (i === part ? variant : p)).join('.')), 'invalid');
      }
    }
    // The 22-character tag alone has 15 such variants: the check above is not vacuous.
    expect(sameBytes).toBeGreaterThanOrEqual(15);
  });

  it('refuse a sealed credential digest of another length (an older or foreign proxy) instead of failing later', async () => {
    const keys = await deriveKeys(secret());
    const sealer = createSealer({
      keys: [{ sealing: keys.sealing, binding: createCredentialBinding(undefined, keys.binding) }],
      maxAgeMs: HOUR,
    });
    const id = await new EncryptJWT({ jti: 'n', p: SDK_PARAMS, v: '2025-06-18', c: randomBytes(16).toString('base64url') })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .setIssuedAt()
      .encrypt(keys.sealing);
    expectRefused(await sealer.open(id), 'invalid');
  });

  it('refuse ids sealed with another secret', async () => {
    const mine = await sealerFor([secret()]);
    const theirs = await sealerFor([secret()]);
    const { id } = await sealOne(theirs.sealer, state(theirs.binding));
    expectRefused(await mine.sealer.open(id), 'invalid');
  });

  it("rotation: ids sealed with the previous secret open (with that secret's binding); new ones use the current", async () => {
    const [a, b] = [secret(), secret()];
    const before = await sealerFor([a]);
    const old = await sealOne(before.sealer, state(before.binding));
    const rotated = await sealerFor([b, a]);
    const opened = await rotated.sealer.open(old.id);
    expect(opened.ok).toBe(true);
    if (opened.ok) expect(opened.session.binding.matches(opened.session.credential, ALICE)).toBe(true);

    const fresh = await sealOne(rotated.sealer, state(rotated.binding));
    expect((await (await sealerFor([b])).sealer.open(fresh.id)).ok).toBe(true);
    // A replica not yet rolled to step 2 (docs/deployment.md, "Rotating the session secret": old secret current, new one accepted).
    expect((await (await sealerFor([a, b])).sealer.open(fresh.id)).ok).toBe(true);
    expectRefused(await before.sealer.open(fresh.id), 'invalid');
    // Once the previous secret is dropped, its ids are gone.
    expectRefused(await (await sealerFor([b])).sealer.open(old.id), 'invalid');
  });

  it('expire exactly at the age limit, accept a replica clock a little ahead, refuse one far ahead', async () => {
    let now = 1_795_000_000_000;
    const { sealer, binding } = await sealerFor([secret()], { maxAgeMs: 60_000, now: () => now });
    const { id } = await sealOne(sealer, state(binding));
    now += 59_999;
    expect((await sealer.open(id)).ok).toBe(true);
    now += 1;
    expectRefused(await sealer.open(id), 'expired');

    const sealedAhead = 1_795_000_100_000;
    now = sealedAhead;
    const ahead = await sealOne(sealer, state(binding));
    now = sealedAhead - 20_000;
    expect((await sealer.open(ahead.id)).ok).toBe(true);
    now = sealedAhead - 31_000;
    expectRefused(await sealer.open(ahead.id), 'invalid');
  });

  it('seal sessions without credentials, which then match only requests without credentials', async () => {
    const { sealer, binding } = await sealerFor([secret()]);
    const { id } = await sealOne(sealer, { params: SDK_PARAMS, protocolVersion: '2025-06-18', credential: undefined });
    const opened = await sealer.open(id);
    expect(opened.ok).toBe(true);
    if (!opened.ok) return;
    expect(opened.session.credential).toBeUndefined();
    expect(binding.matches(opened.session.credential, {})).toBe(true);
    expect(binding.matches(opened.session.credential, ALICE)).toBe(false);
  });

  it('never throw on arbitrary input, and open nothing they did not seal', async () => {
    const { sealer, binding } = await sealerFor([secret()]);
    const { id } = await sealOne(sealer, state(binding));
    const [header, , iv, , tag] = id.split('.');
    const b64 = fc.stringMatching(/^[A-Za-z0-9_-]{0,200}$/);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          b64.map((c) => `${header}..${iv}.${c}.${tag}`),
        ),
        async (text) => {
          const result = await sealer.open(text);
          expect(result.ok).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('session secrets', () => {
  it('accept random secrets in the usual encodings', () => {
    for (let i = 0; i < 200; i++) {
      for (const text of [randomBytes(32).toString('hex'), randomBytes(32).toString('base64'), randomBytes(32).toString('base64url')]) {
        expect(parseSecret(text).toString()).toBe(text);
      }
    }
  });

  it('refuse short, low-entropy and repetitive secrets, without quoting them', () => {
    const weak = [
      'Xy7#kP',
      randomBytes(16).toString('hex'), // 32 characters, but only 128 bits
      'a'.repeat(64),
      'passwordpasswordpasswordpassword',
      'changeme'.repeat(8),
      '0123456789abcdef'.repeat(4),
    ];
    for (const text of weak) {
      let message = '';
      try {
        parseSecret(text);
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message, text).toMatch(/too short|too little entropy/);
      expect(message).not.toContain(text);
    }
  });

  it('read a secret file with or without a final newline, and name the problem without the contents', () => {
    const dir = mkdtempSync(join(tmpdir(), 'secret-'));
    const value = randomBytes(32).toString('base64');
    for (const [name, text] of [
      ['plain', value],
      ['lf', `${value}\n`],
      ['crlf', `${value}\r\n`],
    ] as const) {
      writeFileSync(join(dir, name), text);
      expect(readSecretFile(join(dir, name)).toString()).toBe(value);
    }
    expect(() => readSecretFile(join(dir, 'missing'))).toThrow(/cannot read .*missing: ENOENT/);
    writeFileSync(join(dir, 'weak'), 'hunter2-hunter2-hunter2-hunter2-hunter2');
    expect(() => readSecretFile(join(dir, 'weak'))).toThrow(/too little entropy/);
    // Raw random bytes (`openssl rand 32 > file`), which are not UTF-8, are used byte for byte.
    for (let i = 0; i < 50; i++) {
      const raw = Buffer.concat([Buffer.from([0xff]), randomBytes(31)]);
      writeFileSync(join(dir, 'raw'), raw);
      expect(readSecretFile(join(dir, 'raw')).equals(raw)).toBe(true);
    }
    writeFileSync(join(dir, 'short-raw'), Buffer.concat([Buffer.from([0xff]), randomBytes(15)]));
    expect(() => readSecretFile(join(dir, 'short-raw'))).toThrow(/too short \(16 bytes\)/);
  });
});

describe('terminated sealed ids', () => {
  it('are remembered until their age limit, then forgotten', () => {
    let now = 1000;
    const terminated = createTerminatedIds(10, () => now);
    terminated.add('n1', 61_000);
    expect(terminated.has('n1')).toBe(true);
    expect(terminated.has('n2')).toBe(false);
    now = 60_999;
    expect(terminated.has('n1')).toBe(true);
    now = 61_001;
    expect(terminated.has('n1')).toBe(false);
    // Already past its limit: nothing to remember (it is refused as expired anyway).
    terminated.add('n3', 50_000);
    expect(terminated.has('n3')).toBe(false);
  });

  it('are bounded: beyond the bound the oldest go first', () => {
    const terminated = createTerminatedIds(3, () => 0);
    for (const n of ['a', 'b', 'c', 'd']) terminated.add(n, 1_000_000);
    expect(['a', 'b', 'c', 'd'].map((n) => terminated.has(n))).toEqual([false, true, true, true]);
  });
});
