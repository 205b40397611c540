/**
 * Client sessions, in memory, and sealed ids terminated by DELETE, in lru-caches
 * bounded by count (a flood of initializes evicts the least recently used sessions instead of
 * growing memory) and by time.
 */
import { LRUCache } from 'lru-cache';
import type { HostedSession } from '../flows/hosted/hosted-session.js';
import type { UpstreamHeaders } from '../upstream/client.js';
import type { UpstreamLink } from '../upstream/link.js';
import type { EndReason } from '../observability/metrics.js';
import type { ClientSessionId, LogId } from './ids.js';

/**
 * What a client session runs on: an upstream session relayed over a link (a legacy upstream), or
 * the session the proxy hosts itself (in front of a 2026-07-28-only upstream, which keeps none).
 */
export type Backend =
  { readonly kind: 'relayed'; readonly link: UpstreamLink } | { readonly kind: 'hosted'; readonly hosted: HostedSession };

/**
 * End a backend (DELETE, eviction, expiry, re-authentication): a link ends its upstream session,
 * with `headers` (the client's credentials) when a client asked; a hosted session stops its stream.
 */
export function endBackend(backend: Backend, headers?: UpstreamHeaders): Promise<void> {
  switch (backend.kind) {
    case 'relayed':
      return backend.link.end(headers);
    case 'hosted':
      backend.hosted.end();
      return Promise.resolve();
  }
}

/** The backend's log-safe label (`link` in log lines). */
export function labelOf(backend: Backend): number | string {
  return backend.kind === 'relayed' ? backend.link.label : backend.hosted.label;
}

/**
 * A client session: who it is (its id, credentials, age limit) and what it runs on. Everything
 * about the upstream side (ids, replays, the handshake) is the backend's.
 */
export interface Session {
  readonly id: ClientSessionId;
  /** Log-safe fingerprint of `id`, computed once at creation so the hot path never hashes. */
  readonly logId: LogId;
  /**
   * Keyed digest of the caller's credentials (session/binding.ts): at initialize, or at the last
   * re-authentication (session/reauthenticate.ts), which also replaces `backend`.
   */
  credential: Buffer | undefined;
  /** Set when the credentials carry no identity (an opaque token): what a re-authentication must match. */
  readonly identity: Buffer | undefined;
  /** The nonce of a sealed id (session/sealing.ts), to refuse it after a DELETE; else undefined. */
  readonly nonce: string | undefined;
  /** When a sealed id reaches its age limit (ms since the epoch); Infinity for random ids. */
  readonly expiresAt: number;
  backend: Backend;
  /** A re-authentication under way (one per session and credential: session/reauthenticate.ts). */
  renewal: Renewal | undefined;
}

/** Opening the session anew under other credentials: settles once it has replaced the session's backend. */
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
    backend: fields.backend,
    renewal: undefined,
  };
}

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
