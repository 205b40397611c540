/** The vitest hooks around processes.ts: kept apart so that the benchmark never loads vitest. */
import { afterAll, beforeAll } from 'vitest';
import { killAll, startFixture, startProxy, type Fixture, type FixtureMode, type Proxy } from './processes.js';

/**
 * For a describe block: a fixture upstream and a proxy in front of it, started before its tests
 * and killed after them. Read them from the returned object inside tests.
 */
export function useFixtureAndProxy(
  mode: FixtureMode,
  options: { idleMs?: number; env?: Record<string, string> } = {},
): { readonly upstream: Fixture; readonly proxy: Proxy } {
  const started = {} as { upstream: Fixture; proxy: Proxy };
  beforeAll(async () => {
    started.upstream = await startFixture(mode, options.idleMs === undefined ? {} : { idleMs: options.idleMs });
    started.proxy = await startProxy(started.upstream.mcpUrl, options.env);
  });
  afterAll(killAll);
  return started;
}
