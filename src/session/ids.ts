/**
 * Session ids on both sides of the proxy. They are different branded types so that handing the
 * upstream's id to a client (or the reverse) is a type error, not a leak found in production.
 */
import { createHmac, randomBytes } from 'node:crypto';

declare const brand: unique symbol;
export type ClientSessionId = string & { readonly [brand]: 'client' };
export type UpstreamSessionId = string & { readonly [brand]: 'upstream' };

// 32 random bytes = 256 bits from the CSPRNG, base64url: 43 visible ASCII characters.
const CLIENT_ID_BYTES = 32;
const CLIENT_ID_LENGTH = 43;
const CLIENT_ID_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export function mintClientSessionId(): ClientSessionId {
  return randomBytes(CLIENT_ID_BYTES).toString('base64url') as ClientSessionId;
}

// A sealed id (session/sealing.ts) is a compact JWE with an empty encrypted key ("dir"):
// header..iv(96 bits).ciphertext.tag(128 bits), all base64url.
const SEALED_ID_SHAPE = /^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/;
// Beyond this an id would strain the header limits of proxies in front (8 KB lines are common).
export const MAX_SEALED_ID_LENGTH = 4096;

/** Cheap shape check before any lookup, so absurd header values never reach the store. */
export function asClientSessionId(raw: string): ClientSessionId | undefined {
  if (raw.length === CLIENT_ID_LENGTH) return CLIENT_ID_SHAPE.test(raw) ? (raw as ClientSessionId) : undefined;
  return isSealedId(raw) ? (raw as ClientSessionId) : undefined;
}

/** Whether an id has the shape of a sealed one (not whether it opens). */
export function isSealedId(raw: string): boolean {
  return raw.length <= MAX_SEALED_ID_LENGTH && SEALED_ID_SHAPE.test(raw);
}

/**
 * Longest upstream id we accept. The spec only says "visible ASCII"; real servers use UUIDs or
 * tokens of well under 1 KB, and anything longer would let an upstream bloat every session.
 */
export const MAX_UPSTREAM_ID_LENGTH = 1024;
const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

export type UpstreamIdHeader =
  { readonly kind: 'absent' } | { readonly kind: 'valid'; readonly id: UpstreamSessionId } | { readonly kind: 'invalid' };

/** Validate the `Mcp-Session-Id` an upstream sent (undici gives string | string[] | undefined). */
export function readUpstreamId(value: string | string[] | undefined): UpstreamIdHeader {
  if (value === undefined) return { kind: 'absent' };
  if (typeof value !== 'string') return { kind: 'invalid' };
  if (value.length === 0 || value.length > MAX_UPSTREAM_ID_LENGTH || !VISIBLE_ASCII.test(value)) {
    return { kind: 'invalid' };
  }
  return { kind: 'valid', id: value as UpstreamSessionId };
}

/**
 * A log-safe stand-in for an id (`fp:` and 12 hex digits). Branded, so that a raw id can never
 * type-check where a log field expects a fingerprint.
 */
export type LogId = string & { readonly [brand]: 'log' };

/**
 * Fingerprints ids for logs: keyed HMAC, so a fingerprint cannot be reversed or precomputed from a
 * guessed id, yet the same id always gives the same fingerprint within one process (or, with a
 * session secret, across replicas).
 */
export type Fingerprint = (id: ClientSessionId | UpstreamSessionId) => LogId;

export function createFingerprint(key: Buffer = randomBytes(32)): Fingerprint {
  return (id) => ('fp:' + createHmac('sha256', key).update(id).digest('hex').slice(0, 12)) as LogId;
}
