/**
 * A 2025-era client's session in front of a modern-only (2026-07-28) upstream, which keeps no
 * sessions at all: the proxy holds everything the session is (the client as it declared itself at
 * initialize, the negotiated version, the log level it set) and each request carries it upstream
 * in the 2026 envelope (mcp/modern-upstream.ts). Nothing to replay or recover: any replica, and
 * this one after a restart, can serve the session from its (sealed) id alone.
 */
import type { LoggingLevel } from '../mcp/era.js';
import type { LegacyClient } from '../mcp/modern-upstream.js';

let held = 0;

export class HeldSession {
  /** For log lines, as links have (`held <n>`); never an id. */
  readonly label = `held-${++held}`;
  /** Set by logging/setLevel; until then the upstream sends no log notifications (2026 default). */
  logLevel: LoggingLevel | undefined = undefined;
  private ended = false;

  constructor(
    readonly client: LegacyClient,
    /** The legacy revision negotiated with the client. */
    readonly protocolVersion: string,
  ) {}

  get kind(): 'held' | 'ended' {
    return this.ended ? 'ended' : 'held';
  }

  /** DELETE, eviction or expiry: the upstream keeps nothing, so there is nothing to tell it. */
  end(): Promise<void> {
    this.ended = true;
    return Promise.resolve();
  }
}
