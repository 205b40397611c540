import { describe, expect, it } from 'vitest';
import { callText, connect, type Connected } from '../helpers/client.js';
import { useFixtureAndProxy } from '../helpers/fixture-and-proxy.js';

const CLIENTS = 12;
const WORKERS_PER_CLIENT = 4;
const DROPS = 3;

describe('many clients calling at once while the upstream drops every session, several times', () => {
  const env = useFixtureAndProxy('sdk');

  it('has zero client-visible failures and exactly one replayed initialize per session per loss', async () => {
    const clients: Connected[] = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => connect(env.proxy.url, `crowd-${i}`)));
    const ids = clients.map((c) => c.sessionId());
    const failures: unknown[] = [];
    let epoch = 0; // bumped at each drop
    const doneInEpoch = clients.map(() => -1);
    let calls = 0;
    let running = true;

    const worker = async (c: Connected, index: number, w: number) => {
      while (running) {
        const startedIn = epoch;
        try {
          const text = `${index}:${w}:${calls}`;
          expect(await callText(c, 'echo', { text })).toBe(text);
          calls++;
          if (startedIn === epoch) doneInEpoch[index] = Math.max(doneInEpoch[index]!, startedIn);
        } catch (error) {
          failures.push(error);
        }
      }
    };
    const workers = clients.flatMap((c, i) => Array.from({ length: WORKERS_PER_CLIENT }, (_, w) => worker(c, i, w)));

    const everyClientCalledIn = async (e: number) => {
      await expect.poll(() => doneInEpoch.every((d) => d >= e), { interval: 20 }).toBe(true);
    };
    await everyClientCalledIn(0);
    for (let drop = 1; drop <= DROPS; drop++) {
      await env.upstream.drop();
      epoch = drop;
      // Every session must have hit the loss and recovered before the next drop.
      await everyClientCalledIn(drop);
    }
    running = false;
    await Promise.all(workers);

    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(CLIENTS * (DROPS + 1));
    const stats = await env.upstream.stats();
    for (let i = 0; i < CLIENTS; i++) {
      // The original initialize, plus exactly one replay for each drop.
      expect(stats.initializes[`crowd-${i}`], `crowd-${i}`).toBe(1 + DROPS);
    }
    expect(stats.requestsBeforeInitialized).toBe(0);
    expect(clients.map((c) => c.sessionId())).toEqual(ids);
    await Promise.all(clients.map((c) => c.close()));
  });
});
