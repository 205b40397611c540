/**
 * The MRTR `requestState` the proxy gives a 2026-07-28 client with an `input_required` result:
 * sealed as session ids are (compact JWE, `dir` + `A256GCM`, by jose; session/sealing.ts), so it
 * is opaque and integrity-protected, with its own key (HKDF purpose "mrtr request state v1" of the
 * session secret, so every replica opens what another sealed; a random per-process key without a
 * secret, so only this process can). It is bound to the caller's credential digest and to the
 * request (method + params digest), and expires.
 *
 * What it carries: the handle of the parked upstream exchange (when this process parked one) and
 * its round, and what a re-run needs: the questions asked so far and the answers given so far.
 */
import { EncryptJWT, jwtDecrypt } from 'jose';
import { randomBytes, webcrypto } from 'node:crypto';

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

export type OpenedState = { readonly ok: true; readonly state: RequestState } | { readonly ok: false; readonly reason: 'invalid' | 'expired' };

export interface RequestStateCodec {
  seal(state: RequestState): Promise<string>;
  open(token: string): Promise<OpenedState>;
}

// Answers (sampling results, mostly) can be large; beyond this the answers are left out (a re-run
// then asks those questions again) and the state stays a reasonable thing to send back and forth.
const MAX_ANSWERS_BYTES = 48 * 1024;
const COMPRESS_ABOVE_LENGTH = 1024;
const MAX_DECOMPRESSED_BYTES = 256 * 1024;
const DECRYPT_OPTIONS = {
  keyManagementAlgorithms: ['dir'],
  contentEncryptionAlgorithms: ['A256GCM'],
  maxDecompressedLength: MAX_DECOMPRESSED_BYTES,
  requiredClaims: ['exp', 'r'],
};

/** A key for states only this process can open (no session secret). */
export async function randomStateKey(): Promise<CryptoKey> {
  return webcrypto.subtle.importKey('raw', randomBytes(32), 'AES-GCM', false, ['encrypt', 'decrypt']);
}

export function createRequestStateCodec(options: { key: CryptoKey; ttlMs: number; now?: () => number }): RequestStateCodec {
  const { key, ttlMs } = options;
  const now = options.now ?? Date.now;
  const encrypt = (claims: Record<string, unknown>, exp: number, compress: boolean) =>
    new EncryptJWT(claims)
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', ...(compress ? { zip: 'DEF' } : {}) })
      .setExpirationTime(exp)
      .encrypt(key);
  return {
    async seal(state) {
      const answersFit = Buffer.byteLength(JSON.stringify(state.answers)) <= MAX_ANSWERS_BYTES;
      const claims: Record<string, unknown> = { r: state.request, q: state.asked, a: answersFit ? state.answers : {} };
      if (state.credential !== undefined) claims.c = state.credential;
      if (state.parked !== undefined) claims.h = [state.parked.handle, state.parked.round];
      const exp = Math.ceil((now() + ttlMs) / 1000);
      let token = await encrypt(claims, exp, false);
      if (token.length > COMPRESS_ABOVE_LENGTH) token = await encrypt(claims, exp, true);
      return token;
    },
    async open(token) {
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtDecrypt(token, key, { ...DECRYPT_OPTIONS, currentDate: new Date(now()) }));
      } catch (error) {
        return { ok: false, reason: (error as { code?: unknown }).code === 'ERR_JWT_EXPIRED' ? 'expired' : 'invalid' };
      }
      const state = readClaims(payload);
      return state === undefined ? { ok: false, reason: 'invalid' } : { ok: true, state };
    },
  };
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
