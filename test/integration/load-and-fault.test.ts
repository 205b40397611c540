import { afterAll, describe, expect, it } from 'vitest';
import { callText, connect, type Connected } from '../helpers/client.js';
import { killAll, startFixture, startProxy, type Fixture } from '../helpers/processes.js';

const CLIENTS = 24;
const WORKERS_PER_CLIENT = 2;
const RESTARTS = 3;

afterAll(killAll);

describe('load and fault: dozens of SDK clients calling continuously while the upstream is killed and restarted', () => {
  it('has zero client-visible failures and one replay per session per restart', async () => {
    let upstream: Fixture = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl);
    const clients: Connected[] = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => connect(proxy.url, `load-${i}`)));
    const failures: string[] = [];
    let generation = 0; // bumped at each restart
    const okInGeneration = clients.map(() => -1);
    let calls = 0;
    let running = true;

    const worker = async (c: Connected, index: number) => {
      while (running) {
        const startedIn = generation;
        const text = `${index}-${calls}`;
        try {
          expect(await callText(c, 'echo', { text })).toBe(text);
          calls++;
          if (startedIn === generation) okInGeneration[index] = Math.max(okInGeneration[index]!, startedIn);
        } catch (error) {
          failures.push(`${index}: ${String(error)}`);
        }
      }
    };
    const workers = clients.flatMap((c, i) => Array.from({ length: WORKERS_PER_CLIENT }, () => worker(c, i)));
    const everyClientCalledIn = (g: number) =>
      expect.poll(() => okInGeneration.every((d) => d >= g), { timeout: 30_000, interval: 25 }).toBe(true);

    await everyClientCalledIn(0);
    for (let restart = 1; restart <= RESTARTS; restart++) {
      await upstream.kill(); // SIGKILL while calls are in flight
      upstream = await startFixture('sdk', { port: upstream.port });
      generation = restart;
      await everyClientCalledIn(restart);
      // A fresh process: each client's session was re-established there exactly once.
      const stats = await upstream.stats();
      for (let i = 0; i < CLIENTS; i++) expect(stats.initializes[`load-${i}`], `load-${i}`).toBe(1);
    }
    running = false;
    await Promise.all(workers);

    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(CLIENTS * (RESTARTS + 1));
    await Promise.all(clients.map((c) => c.close()));
  });
});
