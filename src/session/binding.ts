/**
 * Binding a session to the caller's credentials (MCP security best practice: bind session ids
 * to user-specific information; a session is never authentication). At initialize the proxy keeps
 * a keyed digest of the `Authorization` header and of an optional identity header; a later request
 * that presents the id with other credentials is treated exactly like an unknown id (404).
 *
 * A bearer token that is a JWT is bound by its issuer and subject, not its bytes: OAuth clients
 * refresh tokens about hourly, and a session that died at each refresh would be useless (today's
 * SDK clients do not re-initialize on 404). The claims are read without verifying the signature:
 * the upstream authenticates every request; the binding only keeps a stolen session id from being
 * used under another identity, and a forged token would fail at the upstream anyway.
 *
 * Any other credential (an opaque access token) says nothing of who the caller is, and a refresh
 * replaces it. Such a session also keeps the digest of its identity as far as the proxy can read
 * it (that it is an opaque token, and the identity header): a request with another opaque token
 * and the same identity re-authenticates the session (session/reauthenticate.ts) instead of meeting
 * a 404 no client recovers from. docs/security.md has the threat model.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export interface CredentialBinding {
  /**
   * The digest of the caller's credentials, to store with a new session (and to key pooled
   * upstream sessions by); undefined when the caller sent none.
   */
  of(headers: IncomingHttpHeaders): Buffer | undefined;
  /** Whether these headers carry the credentials the session was created with. */
  matches(bound: Buffer | undefined, headers: IncomingHttpHeaders): boolean;
  /**
   * The digest of the caller's identity when its credentials do not carry one (an opaque token):
   * that it is an opaque token, and the identity header. Undefined when `of` is the identity
   * already (a JWT's issuer and subject, or no Authorization at all).
   */
  identityOf(headers: IncomingHttpHeaders): Buffer | undefined;
  /** Whether these headers carry an opaque token of the identity `identityOf` gave. */
  identityMatches(identity: Buffer, headers: IncomingHttpHeaders): boolean;
}

/** `identityHeader`: e.g. `x-user-id` set by an authenticating gateway in front of the proxy. */
export function createCredentialBinding(identityHeader: string | undefined, key: Buffer = randomBytes(32)): CredentialBinding {
  // Length-prefixed so that no two different pairs can produce the same input.
  const digest = (a: string, i: string) => createHmac('sha256', key).update(`${a.length}:${a}|${i.length}:${i}`).digest();
  const identityIn = (headers: IncomingHttpHeaders): string | undefined => {
    const identity = identityHeader === undefined ? undefined : headers[identityHeader];
    return identity === undefined ? undefined : Array.isArray(identity) ? identity.join('\n') : identity;
  };
  const of = (headers: IncomingHttpHeaders): Buffer | undefined => {
    const { authorization } = headers;
    const identity = identityIn(headers);
    if (authorization === undefined && identity === undefined) return undefined;
    return digest(authorization === undefined ? '' : principalOf(authorization), identity ?? '');
  };
  const identityOf = (headers: IncomingHttpHeaders): Buffer | undefined => {
    const { authorization } = headers;
    if (authorization === undefined || !principalOf(authorization).startsWith(RAW)) return undefined;
    return digest(OPAQUE, identityIn(headers) ?? '');
  };
  return {
    of,
    matches: (bound, headers) => sameDigest(bound, of(headers)),
    identityOf,
    identityMatches: (identity, headers) => sameDigest(identity, identityOf(headers)),
  };
}

/** Whether two digests (or their absence) are the same; constant time, for any comparison of credentials. */
export function sameDigest(bound: Buffer | undefined, presented: Buffer | undefined): boolean {
  if (bound === undefined || presented === undefined) return bound === presented;
  // Constant time: the comparison must not tell an attacker how close a guess came.
  return timingSafeEqual(bound, presented);
}

const RAW = 'raw:';
/** What an opaque credential says of who sent it: only that it is one (never a prefix of `jwt:`/`raw:` values). */
const OPAQUE = 'opaque';
const BEARER_JWT = /^Bearer\s+[A-Za-z0-9_-]+\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]*$/i;

/** `jwt:<iss>|<sub>` for a bearer JWT with a subject, else `raw:` and the header value. */
function principalOf(authorization: string): string {
  const payload = BEARER_JWT.exec(authorization)?.[1];
  if (payload === undefined) return `${RAW}${authorization}`;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { iss?: unknown; sub?: unknown };
    if (typeof claims.sub === 'string' && claims.sub !== '') {
      return `jwt:${typeof claims.iss === 'string' ? claims.iss : ''}|${claims.sub}`;
    }
  } catch {
    // Not a JWT after all: bind to the whole value.
  }
  return `${RAW}${authorization}`;
}
