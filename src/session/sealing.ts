/**
 * Sealed session ids: with a session secret, the id a client holds is an encrypted, authenticated
 * token (compact JWE, `dir` + `A256GCM`, by jose) of everything a proxy needs to rebuild the
 * session: the client's initialize params, the negotiated protocol version, the credential
 * digest, an issue time and a random nonce. Any replica holding the secret, or this one after a
 * restart, can open it and replay the handshake; no shared store is needed. It never holds an
 * upstream id: those change, and a replica makes its own upstream session anyway.
 *
 * Keys come from the secret through HKDF, one per purpose, so the sealing key is never also the
 * credential-binding or log-fingerprint key.
 */
import { EncryptJWT, errors, jwtDecrypt, type JWTPayload } from 'jose';
import { hkdfSync, randomBytes } from 'node:crypto';
import type { CredentialBinding } from './binding.js';
import { MAX_SEALED_ID_LENGTH, type ClientSessionId } from './ids.js';

export interface SessionKeys {
  readonly sealing: CryptoKey;
  /** Seals MRTR requestStates (session/request-state.ts: node:crypto, synchronous, so raw). */
  readonly requestState: Buffer;
  readonly binding: Buffer;
  readonly fingerprint: Buffer;
}

const HKDF_SALT = 'mcp-session-proxy';

export async function deriveKeys(secret: Buffer): Promise<SessionKeys> {
  const derive = (purpose: string) => Buffer.from(hkdfSync('sha256', secret, HKDF_SALT, purpose, 32));
  // Imported once: jose would import a raw key again on every open, which triples its cost.
  const sealing = await crypto.subtle.importKey('raw', derive('sealed session id v1'), 'AES-GCM', false, ['encrypt', 'decrypt']);
  return {
    sealing,
    requestState: derive('mrtr request state v2'),
    binding: derive('credential binding v1'),
    fingerprint: derive('log fingerprint v1'),
  };
}

/** What a sealed id carries besides its issue time and nonce. */
export interface SessionState {
  readonly params: object;
  readonly protocolVersion: string;
  readonly credential: Buffer | undefined;
}

export interface Sealed {
  readonly id: ClientSessionId;
  readonly nonce: string;
  readonly issuedAtMs: number;
}

export interface Opened {
  /** The initialize params as JSON text, as the session store keeps them. */
  readonly initParams: string;
  readonly protocolVersion: string;
  readonly credential: Buffer | undefined;
  readonly nonce: string;
  readonly issuedAtMs: number;
  /** The binding of the secret that sealed it: the credential digest was made with its key. */
  readonly binding: CredentialBinding;
}

export type OpenResult = { readonly ok: true; readonly session: Opened } | { readonly ok: false; readonly reason: 'invalid' | 'expired' };

export interface Sealer {
  /** The sealed id for a new session; undefined when its params are too large to seal. */
  seal(state: SessionState): Promise<Sealed | undefined>;
  /** Opens and checks (integrity, age limit) an id this process has no session for. */
  open(id: string): Promise<OpenResult>;
}

export interface SealerOptions {
  /** Current secret first, then the previous one during a rotation; only the first seals. */
  readonly keys: readonly { readonly sealing: CryptoKey; readonly binding: CredentialBinding }[];
  readonly maxAgeMs: number;
  /** Clock, injectable so age tests need no sleeping. */
  readonly now?: () => number;
}

// SDK clients' params seal to about 450 characters; larger ones are compressed first.
const COMPRESS_ABOVE_LENGTH = 1024;
// Replicas' clocks disagree a little: an id minted by a replica that runs ahead is not "from the future".
const CLOCK_SKEW_MS = 30_000;
// Only tokens this proxy sealed are ever decompressed (after authentication); still bounded.
const MAX_DECOMPRESSED_BYTES = 256 * 1024;
const DECRYPT_OPTIONS = {
  keyManagementAlgorithms: ['dir'],
  contentEncryptionAlgorithms: ['A256GCM'],
  maxDecompressedLength: MAX_DECOMPRESSED_BYTES,
  requiredClaims: ['iat', 'jti'],
};

export function createSealer(options: SealerOptions): Sealer {
  const { keys, maxAgeMs } = options;
  const now = options.now ?? Date.now;
  const current = keys[0]!;

  const encrypt = (claims: JWTPayload, iat: number, compress: boolean) =>
    new EncryptJWT(claims)
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', ...(compress ? { zip: 'DEF' } : {}) })
      .setIssuedAt(iat)
      .encrypt(current.sealing);

  return {
    async seal(state) {
      const nowMs = now();
      const iat = Math.floor(nowMs / 1000);
      const nonce = randomBytes(16).toString('base64url');
      const claims: JWTPayload = { jti: nonce, p: state.params, v: state.protocolVersion };
      if (state.credential !== undefined) claims.c = state.credential.toString('base64url');
      // Whatever is sealed must open again: the decompression bound applies to the plaintext.
      if (Buffer.byteLength(JSON.stringify(claims)) > MAX_DECOMPRESSED_BYTES - 64) return undefined;
      let id = await encrypt(claims, iat, false);
      if (id.length > COMPRESS_ABOVE_LENGTH) id = await encrypt(claims, iat, true);
      if (id.length > MAX_SEALED_ID_LENGTH) return undefined;
      return { id: id as ClientSessionId, nonce, issuedAtMs: iat * 1000 };
    },

    async open(id) {
      // base64url decoders ignore the unused low bits of a last character, so several strings
      // decode to one token; only the one this proxy wrote is that token's id.
      if (!id.split('.').every(isCanonicalBase64url)) return { ok: false, reason: 'invalid' };
      for (const key of keys) {
        let payload: JWTPayload;
        try {
          ({ payload } = await jwtDecrypt(id, key.sealing, DECRYPT_OPTIONS));
        } catch (error) {
          // Not sealed with this key (or tampered with): the next key may have sealed it.
          if (error instanceof errors.JWEDecryptionFailed) continue;
          return { ok: false, reason: 'invalid' };
        }
        const opened = readClaims(payload, key.binding);
        if (opened === undefined) return { ok: false, reason: 'invalid' };
        const nowMs = now();
        if (opened.issuedAtMs > nowMs + CLOCK_SKEW_MS) return { ok: false, reason: 'invalid' };
        if (opened.issuedAtMs + maxAgeMs <= nowMs) return { ok: false, reason: 'expired' };
        return { ok: true, session: opened };
      }
      return { ok: false, reason: 'invalid' };
    },
  };
}

/** The session fields of a decrypted payload, checked for shape (it came from a proxy, but maybe an older one). */
function readClaims(payload: JWTPayload, binding: CredentialBinding): Opened | undefined {
  const { p, v, c, jti, iat } = payload;
  if (typeof p !== 'object' || p === null || Array.isArray(p)) return undefined;
  if (typeof v !== 'string' || typeof jti !== 'string' || typeof iat !== 'number') return undefined;
  if (c !== undefined && typeof c !== 'string') return undefined;
  const credential = c === undefined ? undefined : Buffer.from(c, 'base64url');
  // A digest of another length could not be compared with this proxy's (HMAC-SHA256).
  if (credential !== undefined && credential.length !== 32) return undefined;
  return {
    initParams: JSON.stringify(p),
    protocolVersion: v,
    credential,
    nonce: jti,
    issuedAtMs: iat * 1000,
    binding,
  };
}

/** Whether a base64url text is exactly what encoding its bytes gives (no stray bits, no padding). */
function isCanonicalBase64url(text: string): boolean {
  return Buffer.from(text, 'base64url').toString('base64url') === text;
}
