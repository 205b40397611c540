import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  asClientSessionId,
  createFingerprint,
  MAX_UPSTREAM_ID_LENGTH,
  mintClientSessionId,
  readUpstreamId,
  type ClientSessionId,
} from '../../src/session/ids.js';

const BASE64URL_43 = /^[A-Za-z0-9_-]{43}$/;

describe('mintClientSessionId', () => {
  it('mints 43-character base64url ids that pass their own shape check', () => {
    for (let i = 0; i < 200; i++) {
      const id = mintClientSessionId();
      expect(id).toMatch(BASE64URL_43);
      expect(asClientSessionId(id)).toBe(id);
    }
  });

  it('mints distinct ids', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 10_000; i++) ids.add(mintClientSessionId());
    expect(ids.size).toBe(10_000);
  });

  it('decodes to 32 random bytes', () => {
    expect(Buffer.from(mintClientSessionId(), 'base64url')).toHaveLength(32);
  });
});

describe('asClientSessionId', () => {
  const valid = 'A'.repeat(20) + 'z_-09' + 'b'.repeat(18);

  it('accepts a well-formed id unchanged', () => {
    expect(valid).toHaveLength(43);
    expect(asClientSessionId(valid)).toBe(valid);
  });

  it.each([
    ['empty', ''],
    ['42 characters', 'a'.repeat(42)],
    ['44 characters', 'a'.repeat(44)],
    ['a UUID', '123e4567-e89b-12d3-a456-426614174000'],
    ['8 KB', 'a'.repeat(8 * 1024)],
    ['standard base64 +', 'a'.repeat(42) + '+'],
    ['standard base64 /', '/' + 'a'.repeat(42)],
    ['padding', 'a'.repeat(42) + '='],
    ['a space', 'a'.repeat(21) + ' ' + 'a'.repeat(21)],
    ['a trailing newline', 'a'.repeat(42) + '\n'],
    ['a NUL', 'a'.repeat(42) + '\0'],
    ['non-ASCII letters', 'é'.repeat(43)],
    ['a non-ASCII letter among valid ones', 'a'.repeat(42) + 'ß'],
    ['an emoji (two UTF-16 units)', 'a'.repeat(41) + '😀'],
  ])('rejects %s', (_label, raw) => {
    expect(asClientSessionId(raw)).toBeUndefined();
  });

  it('never throws on arbitrary strings and accepts only the minted shape', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary', minLength: 40, maxLength: 46 })), (raw) => {
        const id = asClientSessionId(raw);
        expect(id === undefined || (id === raw && BASE64URL_43.test(raw))).toBe(true);
        if (BASE64URL_43.test(raw)) expect(id).toBe(raw);
      }),
      { numRuns: 2000 },
    );
  });

  it('accepts every 43-character base64url string', () => {
    const char = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split(''));
    fc.assert(
      fc.property(fc.string({ unit: char, minLength: 43, maxLength: 43 }), (raw) => {
        expect(asClientSessionId(raw)).toBe(raw);
      }),
    );
  });
});

describe('readUpstreamId', () => {
  it('reports an absent header', () => {
    expect(readUpstreamId(undefined)).toEqual({ kind: 'absent' });
  });

  it.each([
    ['a UUID', '123e4567-e89b-12d3-a456-426614174000'],
    ['a hex token', 'a3f9c2d1e0b8'],
    ['one character', 'x'],
    ['every visible ASCII character', Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i)).join('')],
    ['exactly the maximum length', 'k'.repeat(MAX_UPSTREAM_ID_LENGTH)],
  ])('accepts %s', (_label, value) => {
    expect(readUpstreamId(value)).toEqual({ kind: 'valid', id: value });
  });

  it.each([
    ['empty', ''],
    ['one over the maximum length', 'k'.repeat(MAX_UPSTREAM_ID_LENGTH + 1)],
    ['a space', 'abc def'],
    ['a leading space', ' abc'],
    ['a tab', 'abc\tdef'],
    ['a newline (header injection)', 'abc\r\nSet-Cookie: x=1'],
    ['a NUL', 'abc\0'],
    ['DEL', 'abc\x7f'],
    ['non-ASCII', 'sessión'],
    ['an emoji', 'id-😀'],
  ])('rejects %s', (_label, value) => {
    expect(readUpstreamId(value)).toEqual({ kind: 'invalid' });
  });

  it('rejects arrays (a repeated header), even of valid ids', () => {
    expect(readUpstreamId(['abc', 'def'])).toEqual({ kind: 'invalid' });
    expect(readUpstreamId(['abc'])).toEqual({ kind: 'invalid' });
    expect(readUpstreamId([])).toEqual({ kind: 'invalid' });
  });

  it('never throws, and calls a string valid exactly when it is 1..1024 visible ASCII characters', () => {
    const visible = /^[\x21-\x7e]+$/;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: 'binary' }),
          fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 1100 }),
        ),
        (value) => {
          const read = readUpstreamId(value);
          const expected = value.length >= 1 && value.length <= MAX_UPSTREAM_ID_LENGTH && visible.test(value);
          expect(read).toEqual(expected ? { kind: 'valid', id: value } : { kind: 'invalid' });
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('never throws on arbitrary string arrays', () => {
    fc.assert(
      fc.property(fc.array(fc.string()), (value) => {
        expect(readUpstreamId(value)).toEqual({ kind: 'invalid' });
      }),
    );
  });
});

describe('createFingerprint', () => {
  const FINGERPRINT = /^fp:[0-9a-f]{12}$/;

  it('is stable for one key and looks like fp: + 12 hex', () => {
    const fingerprint = createFingerprint(Buffer.alloc(32, 1));
    const id = mintClientSessionId();
    expect(fingerprint(id)).toMatch(FINGERPRINT);
    expect(fingerprint(id)).toBe(fingerprint(id));
    // A second function built from the same key agrees.
    expect(createFingerprint(Buffer.alloc(32, 1))(id)).toBe(fingerprint(id));
  });

  it('differs across keys', () => {
    const id = mintClientSessionId();
    expect(createFingerprint(Buffer.alloc(32, 1))(id)).not.toBe(createFingerprint(Buffer.alloc(32, 2))(id));
    // The default key is random per call.
    expect(createFingerprint()(id)).not.toBe(createFingerprint()(id));
  });

  it('differs across ids', () => {
    const fingerprint = createFingerprint();
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) seen.add(fingerprint(mintClientSessionId()));
    expect(seen.size).toBe(1000);
  });

  it('never contains the id, and always has the fingerprint shape', () => {
    const fingerprint = createFingerprint(Buffer.alloc(32, 7));
    fc.assert(
      fc.property(fc.string({ minLength: 8 }), (id) => {
        const fp = fingerprint(id as ClientSessionId);
        expect(fp).toMatch(FINGERPRINT);
        expect(fp.includes(id)).toBe(false);
      }),
      { numRuns: 1000 },
    );
    for (let i = 0; i < 100; i++) {
      const id = mintClientSessionId();
      expect(fingerprint(id)).not.toContain(id);
      expect(fingerprint(id)).not.toContain(id.slice(0, 8));
    }
  });
});
