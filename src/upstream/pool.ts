/**
 * Pooled upstream sessions for callers that bring none (2026-07-28 clients, which are stateless).
 * One link per key, shared by every concurrent caller with that key; bounded by count and by idle
 * time, least recently used first; a link that leaves the pool is ended (DELETE upstream).
 *
 * The key decides who may share an upstream session, because a legacy server keeps state per
 * session: the caller's credential binding (never mix identities), the client's declared
 * capabilities and clientInfo (the server adapts to them at initialize), and the log level
 * (legacy servers set it per session with logging/setLevel).
 */
import { LRUCache } from 'lru-cache';
import { UpstreamLink, type LinkDeps } from './link.js';

export interface PoolOptions {
  readonly max: number;
  readonly idleTtlMs: number;
  /** Clock, injectable so TTL tests need no sleeping. */
  readonly now?: () => number;
}

export interface PoolEntry {
  /** Keyed digest of the caller's credentials (session/binding.ts), as client sessions are bound. */
  readonly credential: Buffer | undefined;
  /** The initialize params for a new upstream session: the caller's clientInfo and capabilities. */
  readonly initParams: string;
  readonly protocolVersion: string;
  readonly logLevel: string | undefined;
}

export interface LinkPool {
  /** The link for this caller: the pooled one (a hit), or a new one that opens on first use. */
  link(entry: PoolEntry): UpstreamLink;
  /**
   * Restart the idle clock of this caller's pooled link, if it is still pooled (a link with
   * listeners on its notification stream is in use although no request comes).
   */
  touch(entry: PoolEntry): void;
  readonly size: number;
  /** End every pooled link (shutdown). */
  clear(): void;
}

export function createLinkPool(deps: LinkDeps, options: PoolOptions): LinkPool {
  const { metrics } = deps;
  const cache = new LRUCache<string, UpstreamLink>({
    max: options.max,
    ttl: options.idleTtlMs,
    // Idle TTL: every use starts the clock again.
    updateAgeOnGet: true,
    ...(options.now ? { ttlResolution: 0, perf: { now: () => options.now!() + 1 } } : {}),
    dispose: (link, _key, reason) => {
      if (reason === 'set') return;
      metrics.poolEnded(reason === 'evict' ? 'evicted' : reason === 'expire' ? 'expired' : 'cleared');
      void link.end();
    },
  });
  return {
    link(entry) {
      const key = keyOf(entry);
      const pooled = cache.get(key);
      if (pooled !== undefined && pooled.kind !== 'ended') {
        metrics.poolHit();
        return pooled;
      }
      metrics.poolMiss();
      const link = new UpstreamLink(deps, entry.initParams, {
        kind: 'pooled',
        protocolVersion: entry.protocolVersion,
        logLevel: entry.logLevel,
      });
      cache.set(key, link);
      deps.log.debug({ link: link.label }, 'pooled upstream session opening');
      return link;
    },
    touch(entry) {
      cache.get(keyOf(entry));
    },
    get size() {
      return cache.size;
    },
    clear: () => cache.clear(),
  };
}

/**
 * Everything that must match for two callers to share an upstream session. The credential is a
 * keyed digest already; the rest is what the caller declared, spelled as it sent it.
 */
function keyOf(entry: PoolEntry): string {
  const credential = entry.credential === undefined ? '-' : entry.credential.toString('base64');
  return `${credential}|${entry.logLevel ?? '-'}|${entry.protocolVersion}|${entry.initParams}`;
}
