/**
 * The MRTR `requestState` the proxy gives a 2026-07-28 client with an `input_required` result:
 * opaque and integrity-protected, AES-256-GCM (node:crypto) over its JSON claims, with its own key
 * (HKDF purpose "mrtr request state v2" of the session secret, so every replica opens what another
 * sealed; a random per-process key without a secret, so only this process can). It is bound to the
 * caller's credential digest and to the request (method + params digest), and expires.
 *
 * Synchronous on purpose: every asking call seals one state and every retry opens one. As a JWE by
 * jose (the sealed session ids' construction, session/sealing.ts) a seal and an open cost about
 * 190 µs of CPU in WebCrypto's thread pool; these cost 7–10 µs each in a loop (bench/sealed-ids.ts),
 * 20–35 µs in place (bench/README.md, MRTR). A state lives minutes (--mrtr-state-ttl-ms), so unlike
 * a session id it needs no stable, standard format. (The v1 states were JWEs: a proxy of this
 * version refuses them: docs/flows/pooled.md.)
 *
 *   token = base64url( format (1 byte) ‖ iv (12) ‖ ciphertext ‖ tag (16) ), the format byte
 *           authenticated as associated data: 1 = JSON claims, 2 = raw-deflated JSON claims.
 *
 * What it carries: the handle of the parked upstream exchange (when this process parked one) and
 * its round, and what a re-run needs: the questions asked so far and the answers given so far.
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, randomFillSync, type KeyObject } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';

export interface RequestState {
  /** requestDigestOf(method, params) of the request this state belongs to. */
  readonly request: string;
  /** The caller's credential digest (session/binding.ts), base64url; undefined without credentials. */
  readonly credential: string | undefined;
  /** The parked exchange this round left behind, if any, and which of its rounds this is. */
  readonly parked: { readonly handle: string; readonly round: number } | undefined;
  readonly asked: Readonly<Record<string, string>>;
  readonly answers: Readonly<Record<string, Record<string, unknown>>>;
}

export type OpenedState =
  { readonly ok: true; readonly state: RequestState } | { readonly ok: false; readonly reason: 'invalid' | 'expired' };

export interface RequestStateCodec {
  seal(state: RequestState): string;
  open(token: string): OpenedState;
}

// Answers (sampling results, mostly) can be large; beyond this the answers are left out (a re-run
// then asks those questions again) and the state stays a reasonable thing to send back and forth.
const MAX_ANSWERS_BYTES = 48 * 1024;
// A state with one question and no answer is about 220 bytes of JSON; answers (elicited forms,
// sampled messages) make it grow, and past this deflating them is worth its ~20 µs.
const COMPRESS_ABOVE_BYTES = 768;
const MAX_DECOMPRESSED_BYTES = 256 * 1024;
// Anything longer was not sealed by this code (a sealed state is at most ~64 KiB, base64url).
const MAX_TOKEN_LENGTH = 128 * 1024;
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const FORMAT_JSON = 1;
const FORMAT_DEFLATED = 2;

// IVs come from a pool of random bytes refilled in one call: a randomBytes() per seal costs more
// than the encryption itself (about 5 µs each on the asking path). 256 IVs (3 KiB) per refill.
const IVS_PER_REFILL = 256;
const ivPool = Buffer.allocUnsafe(IV_BYTES * IVS_PER_REFILL);
let ivOffset = ivPool.length;

function nextIv(into: Buffer, at: number): void {
  if (ivOffset === ivPool.length) {
    randomFillSync(ivPool);
    ivOffset = 0;
  }
  ivPool.copy(into, at, ivOffset, ivOffset + IV_BYTES);
  ivOffset += IV_BYTES;
}

/** A key for states only this process can open (no session secret). */
export function randomStateKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

export function createRequestStateCodec(options: { key: Buffer; ttlMs: number; now?: () => number }): RequestStateCodec {
  const { ttlMs } = options;
  if (options.key.length !== KEY_BYTES) throw new Error(`a requestState key is ${KEY_BYTES} bytes`);
  // One KeyObject: a Buffer key would be copied into a new one at every seal and open.
  const key = createSecretKey(options.key);
  const now = options.now ?? Date.now;
  return {
    seal(state) {
      const answersFit = Buffer.byteLength(JSON.stringify(state.answers)) <= MAX_ANSWERS_BYTES;
      const claims: Record<string, unknown> = { r: state.request, q: state.asked, a: answersFit ? state.answers : {}, e: now() + ttlMs };
      if (state.credential !== undefined) claims.c = state.credential;
      if (state.parked !== undefined) claims.h = [state.parked.handle, state.parked.round];
      let plain = Buffer.from(JSON.stringify(claims));
      let format = FORMAT_JSON;
      if (plain.length > COMPRESS_ABOVE_BYTES) {
        plain = deflateRawSync(plain);
        format = FORMAT_DEFLATED;
      }
      const head = Buffer.allocUnsafe(1 + IV_BYTES);
      head[0] = format;
      nextIv(head, 1);
      const cipher = createCipheriv('aes-256-gcm', key, head.subarray(1), { authTagLength: TAG_BYTES });
      cipher.setAAD(head.subarray(0, 1));
      return Buffer.concat([head, cipher.update(plain), cipher.final(), cipher.getAuthTag()]).toString('base64url');
    },
    open(token) {
      const claims = typeof token === 'string' && token.length <= MAX_TOKEN_LENGTH ? decrypt(key, token) : undefined;
      if (claims === undefined) return { ok: false, reason: 'invalid' };
      if (typeof claims.e !== 'number') return { ok: false, reason: 'invalid' };
      if (claims.e <= now()) return { ok: false, reason: 'expired' };
      const state = readClaims(claims);
      return state === undefined ? { ok: false, reason: 'invalid' } : { ok: true, state };
    },
  };
}

/** The claims of a token this key sealed; undefined for anything else (tampered, foreign, garbage). */
function decrypt(key: KeyObject, token: string): Record<string, unknown> | undefined {
  const bytes = Buffer.from(token, 'base64url');
  // base64url decoding skips what is not base64url: only a token that round-trips is ours.
  if (bytes.length < 1 + IV_BYTES + TAG_BYTES || bytes.toString('base64url') !== token) return undefined;
  const format = bytes[0];
  if (format !== FORMAT_JSON && format !== FORMAT_DEFLATED) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(1, 1 + IV_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(bytes.subarray(0, 1));
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    let plain = Buffer.concat([decipher.update(bytes.subarray(1 + IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]);
    if (format === FORMAT_DEFLATED) plain = inflateRawSync(plain, { maxOutputLength: MAX_DECOMPRESSED_BYTES });
    const claims: unknown = JSON.parse(plain.toString());
    return isRecord(claims) ? claims : undefined;
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checked for shape: it came from a proxy, but maybe an older one. */
function readClaims(payload: Record<string, unknown>): RequestState | undefined {
  const { r, c, h, q, a } = payload;
  if (typeof r !== 'string' || (c !== undefined && typeof c !== 'string') || !isRecord(q) || !isRecord(a)) return undefined;
  if (!Object.values(q).every((v) => typeof v === 'string') || !Object.values(a).every(isRecord)) return undefined;
  let parked: RequestState['parked'];
  if (h !== undefined) {
    if (!Array.isArray(h) || typeof h[0] !== 'string' || typeof h[1] !== 'number') return undefined;
    parked = { handle: h[0], round: h[1] };
  }
  return {
    request: r,
    credential: c,
    parked,
    asked: q as Record<string, string>,
    answers: a as Record<string, Record<string, unknown>>,
  };
}
