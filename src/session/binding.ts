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
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export interface CredentialBinding {
  /** The digest to store with a new session; undefined when the caller sent no credentials. */
  of(headers: IncomingHttpHeaders): Buffer | undefined;
  /** Whether these headers carry the credentials the session was created with. */
  matches(bound: Buffer | undefined, headers: IncomingHttpHeaders): boolean;
}

/** `identityHeader`: e.g. `x-user-id` set by an authenticating gateway in front of the proxy. */
export function createCredentialBinding(identityHeader: string | undefined, key: Buffer = randomBytes(32)): CredentialBinding {
  const of = (headers: IncomingHttpHeaders): Buffer | undefined => {
    const authorization = headers.authorization;
    const identity = identityHeader === undefined ? undefined : headers[identityHeader];
    if (authorization === undefined && identity === undefined) return undefined;
    // Length-prefixed so that no two different pairs can produce the same input.
    const a = authorization === undefined ? '' : principalOf(authorization);
    const i = identity === undefined ? '' : Array.isArray(identity) ? identity.join('\n') : identity;
    return createHmac('sha256', key).update(`${a.length}:${a}|${i.length}:${i}`).digest();
  };
  return {
    of,
    matches(bound, headers) {
      const presented = of(headers);
      if (bound === undefined || presented === undefined) return bound === presented;
      // Constant time: the comparison must not tell an attacker how close a guess came.
      return timingSafeEqual(bound, presented);
    },
  };
}

const BEARER_JWT = /^Bearer\s+[A-Za-z0-9_-]+\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]*$/i;

/** `jwt:<iss>|<sub>` for a bearer JWT with a subject, else `raw:` and the header value. */
function principalOf(authorization: string): string {
  const payload = BEARER_JWT.exec(authorization)?.[1];
  if (payload === undefined) return `raw:${authorization}`;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { iss?: unknown; sub?: unknown };
    if (typeof claims.sub === 'string' && claims.sub !== '') {
      return `jwt:${typeof claims.iss === 'string' ? claims.iss : ''}|${claims.sub}`;
    }
  } catch {
    // Not a JWT after all: bind to the whole value.
  }
  return `raw:${authorization}`;
}
