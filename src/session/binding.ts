/**
 * Binding a session to the caller's credentials (MCP security best practice: bind session ids
 * to user-specific information; a session is never authentication). At initialize the proxy keeps
 * a keyed digest of the `Authorization` header and of an optional identity header; a later request
 * that presents the id with other credentials is treated exactly like an unknown id (404).
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
    const a = authorization ?? '';
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
