/**
 * Client sessions, in memory, and sealed ids terminated by DELETE, in lru-caches
 * bounded by count (a flood of initializes evicts the least recently used sessions instead of
 * growing memory) and by time.
 */
import { LRUCache } from 'lru-cache';
import type { HeldSession } from '../flows/hosted/hosted-session.js';
import type { UpstreamLink } from '../upstream/link.js';
import type { ClientSessionId, LogId } from './ids.js';

/**
 * A client session: who it is (its id, credentials, age limit) and the upstream session it uses.
 * Everything about the upstream side (ids, replays, the handshake) is the link's.
 */
export interface Session {
  readonly id: ClientSessionId;
  /** Log-safe fingerprint of `id`, computed once at creation so the hot path never hashes. */
  readonly logId: LogId;
  /**
   * Keyed digest of the caller's credentials (session/binding.ts): at initialize, or at the last
   * re-authentication (session/reauthenticate.ts), which also replaces `link`.
   */
  credential: Buffer | undefined;
  /** Set when the credentials carry no identity (an opaque token): what a re-authentication must match. */
  readonly identity: Buffer | undefined;
  /** The nonce of a sealed id (session/sealing.ts), to refuse it after a DELETE; else undefined. */
  readonly nonce: string | undefined;
  /** When a sealed id reaches its age limit (ms since the epoch); Infinity for random ids. */
  readonly expiresAt: number;
  /** The upstream session; or, in front of a modern-only upstream, the session the proxy holds itself. */
  link: UpstreamLink | HeldSession;
  /** A re-authentication under way (one per session and credential: session/reauthenticate.ts). */
  renewal: Renewal | undefined;
}

/** Opening the session anew under other credentials: settles once it has replaced the session's link. */
export interface Renewal {
  readonly credential: Buffer | undefined;
  readonly done: Promise<void>;
}

export function newSession(fields: Omit<Session, 'renewal'>): Session {
  // Every field spelled out in one literal: V8 then keeps them all inside the object. Spreading
  // `fields` cost about 450 bytes more per session (bench/README.md, memory per session).
  return {
    id: fields.id,
    logId: fields.logId,
    credential: fields.credential,
    identity: fields.identity,
    nonce: fields.nonce,
    expiresAt: fields.expiresAt,
    link: fields.link,
    renewal: undefined,
  };
}

/** lru-cache's reasons, and 'max_age' for a sealed id past its age limit. */
export type EndReason = 'evict' | 'expire' | 'delete' | 'max_age';

export interface SessionStoreOptions {
  readonly maxSessions: number;
  readonly idleTtlMs: number;
  /** Called once per session that leaves the store, with why (injected for logs and metrics). */
  readonly onEnd?: (session: Session, reason: EndReason) => void;
  /** Clock, injectable so TTL tests need no sleeping. */
  readonly now?: () => number;
}

export interface SessionStore {
  get(id: ClientSessionId): Session | undefined;
  add(session: Session): void;
  delete(id: ClientSessionId, reason?: 'delete' | 'max_age'): boolean;
  readonly size: number;
}

export function createSessionStore(options: SessionStoreOptions): SessionStore {
  const { onEnd } = options;
  // lru-cache reports every explicit removal as 'delete'; this says which kind it was.
  let deleting: 'delete' | 'max_age' = 'delete';
  const cache = new LRUCache<ClientSessionId, Session>({
    max: options.maxSessions,
    ttl: options.idleTtlMs,
    // Idle TTL: every use of a session starts its clock again.
    updateAgeOnGet: true,
    ...(options.now ? injectedClock(options.now) : {}),
    dispose: (session, _id, reason) => {
      // 'set' would mean an id was reused, which minting 256 random bits rules out.
      if (reason !== 'evict' && reason !== 'expire' && reason !== 'delete') return;
      onEnd?.(session, reason === 'delete' ? deleting : reason);
    },
  });
  return {
    get: (id) => cache.get(id),
    add: (session) => void cache.set(session.id, session),
    delete(id, reason = 'delete') {
      deleting = reason;
      try {
        return cache.delete(id);
      } finally {
        deleting = 'delete';
      }
    },
    get size() {
      return cache.size;
    },
  };
}

/**
 * Sealed ids ended by DELETE, by nonce, each until its age limit (after which it would be refused
 * anyway). Bounded: beyond `max` the oldest entries go, and those ids could be reopened again.
 */
export interface TerminatedIds {
  add(nonce: string, expiresAt: number): void;
  has(nonce: string): boolean;
}

export function createTerminatedIds(max: number, now: () => number = Date.now): TerminatedIds {
  const cache = new LRUCache<string, true>({ max, ...injectedClock(now) });
  return {
    add(nonce, expiresAt) {
      const ttl = Math.ceil(expiresAt - now());
      if (ttl > 0) cache.set(nonce, true, { ttl });
    },
    has: (nonce) => cache.has(nonce),
  };
}

/**
 * lru-cache options for an injected clock. lru-cache caches clock readings for `ttlResolution`
 * ms of real time (so a test clock moved twice in one real millisecond would be read stale), and
 * takes a start time of 0 to mean "no TTL" (so the clock is shifted by one).
 */
function injectedClock(now: () => number) {
  return { ttlResolution: 0, perf: { now: () => now() + 1 } };
}
