/** The benchmark script runs to completion on a short setting and reports every section. No
 *  timing is asserted here: figures are measured by `npm run bench`, not by the test suite. */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('npm run bench (smoke)', () => {
  it('completes a small run and reports every measurement', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'bench/run.ts'], {
      cwd: ROOT,
      env: { ...process.env, BENCH_SMALL: '1' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
    });
    const result = JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, any>;
    expect(Object.keys(result.steady)).toEqual([
      'direct',
      '@fastify/http-proxy',
      'mcp-session-proxy',
      'mcp-session-proxy, LOG_LEVEL=warn',
      'mcp-session-proxy, sealed ids',
      'mcp-session-proxy, tracing on (every request sampled)',
      'mcp-session-proxy, 2026-07-28 client (pooled session)',
      're-origination (initialize + call + DELETE per request)',
      'mcp-session-proxy, 2025 client, 2026-07-28-only upstream (held session)',
    ]);
    for (const target of Object.values<{ reqPerSec: number; non2xx: number; errors: number }>(result.steady)) {
      expect(target.reqPerSec).toBeGreaterThan(0);
      expect(target.non2xx + target.errors).toBe(0);
    }
    expect(result.sse['mcp-session-proxy'].eventsPerSec).toBeGreaterThan(0);
    // The storm is correctness, not speed: every call succeeded with one initialize per session.
    expect(result.recovery.storm.allSucceeded).toBe(true);
    expect(result.recovery.storm.upstreamInitializes).toBe(result.recovery.storm.sessions);
    expect(result.memory.heapPerSession).toHaveLength(2);
    // BENCH_SMALL floods 10 × a bound of 200 sessions, sampled every tenth of the way.
    expect(result.flood.samples.map((s: { sessions: number }) => s.sessions)).toEqual([
      0, 200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000,
    ]);
    expect(result.memory.heapPerSealedSession).toHaveLength(2);
    expect(result.memory.heapPerPooledSession).toHaveLength(2);
    // The 2026-07-28 comparisons are computed (their targets are judged on full runs, not here).
    expect(result.ratios.modernOverLegacyCpuPerCall).toBeGreaterThan(0);
    expect(result.ratios.tracedOverUntracedCpuPerCall).toBeGreaterThan(0);
    expect(result.ratios.modernOverReoriginationThroughput).toBeGreaterThan(0);
    expect(result.ratios.heldOverLegacyCpuPerCall).toBeGreaterThan(0);
    // Every first call on the other replica (a sealed id opened on a miss) answered 200, or the run fails.
    expect(result.sealedIds.firstCallOnOtherReplicaMedianMs).toBeGreaterThan(0);
    expect(result.sealedIds.inProcess.openMicros).toBeGreaterThan(0);
    expect(result.sealedIds.inProcess.idLength).toBeLessThanOrEqual(1024);
    expect(result.sealedIds.inProcess.requestState.sealMicros).toBeGreaterThan(0);
    expect(result.sealedIds.inProcess.requestState.openMicros).toBeGreaterThan(0);
    // MRTR: the asking call was parked and continued (the tool ran once per call), in front of
    // both upstreams, with a CPU figure for each kind of call.
    expect(result.mrtr.versusSdkUpstream.toolRunsPerCall).toBe(1);
    for (const m of [result.mrtr.versusSdkUpstream, result.mrtr.versusCheapUpstream]) {
      expect(m.oneRoundOverPlain).toBeGreaterThan(0);
      expect(m.proxyCpuPlainMicros).toBeGreaterThan(0);
      expect(m.proxyCpuOneRoundMicros).toBeGreaterThan(0);
    }
  }, 150_000);
});
