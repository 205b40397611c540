import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, describe, expect, it } from 'vitest';
import { callText, connect, type Connected } from '../helpers/client.js';
import { killAll, startFixture, startProxy, type Fixture } from '../helpers/processes.js';

const CLIENTS = 24;
const WORKERS_PER_CLIENT = 2;
const RESTARTS = 3;
// The longest upstream restart these tests ride out. A restart of the tsx fixture takes about a
// second on an idle machine, but has taken 12 s on our 2 cores while another suite ran, longer
// than the proxy's default 10 s UPSTREAM_RETRY_MS: calls then got 502 (cause ECONNREFUSED). An
// operator sets UPSTREAM_RETRY_MS to cover their upstream's slowest restart; so do these tests.
const RESTART_BOUND_MS = 40_000;
// Longer than a call can legitimately wait (a whole restart, then a replay), and shorter than the
// SDK's own 60 s request timeout: a call that takes this long is hanging.
const HANG_MS = 50_000;
// Three restarts under load can outlast the suite's default test timeout; this bounds a stuck test.
const TEST_TIMEOUT_MS = 300_000;

afterAll(killAll);

/** Dozens of SDK clients calling echo in a loop; the caller restarts the upstream meanwhile. */
async function underLoad(restart: (upstream: Fixture) => Promise<Fixture>, env: Record<string, string> = {}) {
  let upstream = await startFixture('sdk');
  const proxy = await startProxy(upstream.mcpUrl, { UPSTREAM_RETRY_MS: String(RESTART_BOUND_MS), ...env });
  const clients: Connected[] = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => connect(proxy.url, `load-${i}`)));
  const failures: unknown[] = [];
  let hangs = 0;
  let generation = 0; // bumped at each restart
  const okInGeneration = clients.map(() => -1);
  const replaysPerRestart: number[][] = [];
  let calls = 0;
  let running = true;

  const worker = async (c: Connected, index: number) => {
    while (running) {
      const startedIn = generation;
      const text = `${index}-${calls}`;
      let timer: NodeJS.Timeout | undefined;
      const hang = new Promise<'hang'>((resolve) => (timer = setTimeout(resolve, HANG_MS, 'hang')));
      try {
        const answer = await Promise.race([callText(c, 'echo', { text }), hang]);
        if (answer === 'hang') hangs++;
        else {
          expect(answer).toBe(text);
          calls++;
          if (startedIn === generation) okInGeneration[index] = Math.max(okInGeneration[index]!, startedIn);
        }
      } catch (error) {
        failures.push(error);
      } finally {
        clearTimeout(timer);
      }
    }
  };
  const workers = clients.flatMap((c, i) => Array.from({ length: WORKERS_PER_CLIENT }, () => worker(c, i)));
  const everyClientCalledIn = (g: number) =>
    expect.poll(() => okInGeneration.every((d) => d >= g), { timeout: RESTART_BOUND_MS + HANG_MS, interval: 25 }).toBe(true);

  await everyClientCalledIn(0);
  for (let r = 1; r <= RESTARTS; r++) {
    upstream = await restart(upstream);
    generation = r;
    await everyClientCalledIn(r);
    const stats = await upstream.stats();
    replaysPerRestart.push(clients.map((_, i) => stats.initializes[`load-${i}`] ?? 0));
  }
  running = false;
  await Promise.all(workers);
  await Promise.all(clients.map((c) => c.close()));
  return { failures, hangs, calls, replaysPerRestart };
}

describe('load and fault: dozens of SDK clients calling continuously while the upstream restarts', () => {
  it(
    'graceful restarts (SIGTERM, drain, start again): zero client-visible failures, one replay per session per restart',
    async () => {
      const result = await underLoad(
        async (upstream) => {
          await upstream.stop();
          return startFixture('sdk', { port: upstream.port });
        },
        // This upstream drains: it answers every request it has read (with Connection: close) before
        // it exits, so a connection reset from it always means the request was never read. A reset
        // arrives when the stopping upstream gets round to closing the idle connection, which on a
        // starved machine has been 1.08 s after sending, past the default 1 s RESET_RETRY_WINDOW_MS
        // (a 502, cause ECONNRESET). Knowing their upstream drains, an operator can safely resend
        // for as long as a restart takes.
        { RESET_RETRY_WINDOW_MS: String(RESTART_BOUND_MS) },
      );
      expect(result.hangs).toBe(0);
      expect(result.failures).toEqual([]);
      expect(result.calls).toBeGreaterThan(CLIENTS * (RESTARTS + 1));
      // Each new upstream process saw exactly one initialize per client: the replay.
      for (const counts of result.replaysPerRestart) expect(counts).toEqual(clients1());
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'kills (SIGKILL mid-call): no call hangs, the calls cut off get clear JSON-RPC errors, everyone recovers',
    async () => {
      const result = await underLoad(async (upstream) => {
        await upstream.kill();
        return startFixture('sdk', { port: upstream.port });
      });
      expect(result.hangs).toBe(0);
      // Only calls in flight at a kill can fail: at most one per worker per kill.
      expect(result.failures.length).toBeLessThanOrEqual(RESTARTS * CLIENTS * WORKERS_PER_CLIENT);
      for (const failure of result.failures) {
        // An SSE answer cut off carries a JSON-RPC error event; a POST whose connection broke before
        // any answer gets a 502 (it is not sent twice: it may have run).
        const clear =
          (failure instanceof McpError && /upstream connection broke/.test(failure.message)) ||
          (failure instanceof StreamableHTTPError && failure.code === 502);
        expect(clear, String(failure)).toBe(true);
      }
      for (const counts of result.replaysPerRestart) expect(counts).toEqual(clients1());
    },
    TEST_TIMEOUT_MS,
  );
});

function clients1(): number[] {
  return Array.from({ length: CLIENTS }, () => 1);
}
