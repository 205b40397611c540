/**
 * `npm run bench`: what mcp-session-proxy costs, side by side with the alternatives, in one run on
 * one machine. Results: bench/results/bench.json and a JSON line on stdout, a markdown summary on
 * stderr.
 *
 *   1. steady-state tools/call over an established session: the upstream directly, the plain
 *      @fastify/http-proxy, and mcp-session-proxy, interleaved over several rounds (medians, and
 *      min–max over the rounds as the noise): req/s, latency, and each proxy's CPU time per call
 *      (utime + stime of the whole process from /proc/<pid>/stat around the measured run, divided
 *      by the requests completed in it);
 *   2. SSE pass-through: time to first event and stream throughput, direct vs proxy;
 *   3. recovery: a call that needs a replay vs a normal call, and a replay storm;
 *   4. memory per session (heap, in-process; RSS of the real proxy);
 *   5. the session flood (bench/flood.ts);
 *   6. sealed ids (SESSION_SECRET): steady state with them is in 1; here, what opening one on an
 *      LRU miss costs, in-process (bench/sealed-ids.ts) and as the first call on another replica;
 *   7. 2026-07-28 clients in front of the v1 SDK server: pooled sessions vs re-origination;
 *   8. MRTR (bench/mrtr.ts): a 2026-07-28 call whose legacy tool asks one question, answered at
 *      once, against a plain call through the same proxy, and both made directly on the upstream,
 *      in front of the v1 SDK server and of the cheap upstream;
 *   9. tracing (bench/tracing-cpu.ts): CPU per call with tracing off, 1% sampled and every request
 *      sampled, for a 2025 session and a 2026-07-28 client, calls one at a time (bench/ab.ts).
 *
 * Knobs (environment): BENCH_DURATION (s, default 10), BENCH_WARMUP (s, 2), BENCH_ROUNDS (3),
 * BENCH_CONNECTIONS (32), BENCH_PIN=0 (no CPU pinning, below), BENCH_SMALL=1 (a seconds-long smoke
 * run, used by the test suite), BENCH_BASELINE=<git ref> (one more target in 1: the proxy built
 * from that commit, run next to the current one in every round, with the ratios current/baseline
 * for req/s and CPU per call; see bench/baseline.ts).
 *
 * CPU pinning (Linux with taskset and at least 2 cores, unless BENCH_PIN=0): the proxies get the
 * last core to themselves (one is under load at a time); this process (autocannon) and the
 * upstream share the others. Unpinned on a 2-core machine, three CPU-hungry processes compete for
 * two cores, and the scheduler's choices moved @fastify/http-proxy's figure between 11k and 24k
 * req/s from run to run: the comparison then measures the scheduler, not the proxies.
 */
import autocannon from 'autocannon';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { buildBaseline, startBaselineProxy } from './baseline.js';
import { ACCEPT, CALL, INIT, MODERN_CALL, MODERN_HEADERS } from './requests.js';
import { cpuMicros } from './cpu.js';
import { runFlood } from './flood.js';
import { runMrtrBench } from './mrtr.js';
import { BLOCKS as TRACING_BLOCKS, CALLS as TRACING_CALLS, runTracingBench } from './tracing-cpu.js';
import { killAll, startFixture, startProxy, startScript } from '../test/helpers/processes.js';

const SMALL = process.env.BENCH_SMALL === '1';
const PIN = process.env.BENCH_PIN !== '0' && canPin();
const PROXY_CPU = String(cpus().length - 1);
const LOAD_CPUS = `0-${cpus().length - 2}`;

function canPin(): boolean {
  if (process.platform !== 'linux' || cpus().length < 2) return false;
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Move a process and all its threads onto these CPUs (threads it starts later inherit them). */
function pin(pid: number, cpuList: string): void {
  if (PIN) execFileSync('taskset', ['-a', '-p', '-c', cpuList, String(pid)], { stdio: 'ignore' });
}
const DURATION = Number(process.env.BENCH_DURATION ?? (SMALL ? 1 : 10));
const WARMUP = Number(process.env.BENCH_WARMUP ?? (SMALL ? 1 : 2));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (SMALL ? 1 : 3));
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const SAMPLES = SMALL ? 20 : 300;
const BASELINE_REF = process.env.BENCH_BASELINE || undefined;
const CURRENT = 'mcp-session-proxy';
const TRACED = 'mcp-session-proxy, tracing on (every request sampled)';
const STORM = SMALL ? 20 : 200;

const STREAM_EVENTS = 200;
const STREAM_CALL = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"stream","arguments":{"count":${STREAM_EVENTS}},"_meta":{"progressToken":1}}}`;
const MODERN = 'mcp-session-proxy, 2026-07-28 client (pooled session)';
const REORIGINATING = 're-origination (initialize + call + DELETE per request)';
const HELD = 'mcp-session-proxy, 2025 client, 2026-07-28-only upstream (held session)';
/** A target's twin built from BENCH_BASELINE (the legacy one is BASELINE itself). */
const twin = (name: string) => `${name} @baseline`;

// With an even count (BENCH_ROUNDS=2 or 4), the mean of the middle two, not the upper one.
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const round2 = (n: number) => Math.round(n * 100) / 100;
const round1 = (n: number) => Math.round(n * 10) / 10;

type Target = {
  name: string;
  origin: string;
  sessionId: string;
  /** A 2026-07-28 caller: these headers and this body, and no session. */
  modern?: true;
  /** The proxy process whose CPU time is measured; none for the upstream itself. */
  pid?: number;
  /** The upstream process, when its CPU time per call is wanted too. */
  upstreamPid?: number;
};

async function initialize(origin: string): Promise<string> {
  const res = await fetch(`${origin}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: ACCEPT },
    body: INIT,
  });
  await res.text();
  const id = res.headers.get('mcp-session-id');
  if (res.status !== 200 || !id) throw new Error(`initialize at ${origin}: ${res.status}`);
  return id;
}

function headers(sessionId: string) {
  return { 'content-type': 'application/json', accept: ACCEPT, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' };
}

/**
 * Load a target for DURATION seconds after a warm-up. With a proxy process, also its CPU time per
 * completed request (µs, all its threads), read from /proc around the measured run only.
 */
async function load(target: Target, body: string, connections = CONNECTIONS) {
  const options = target.modern
    ? { url: `${target.origin}/mcp`, method: 'POST' as const, headers: MODERN_HEADERS, body: MODERN_CALL, connections }
    : { url: `${target.origin}/mcp`, method: 'POST' as const, headers: headers(target.sessionId), body, connections };
  // The warm-up is a run of its own (as autocannon's `warmup` option does it internally), so that
  // the CPU time of the warm-up, JIT compilation included, stays out of the measurement.
  if (WARMUP > 0) await autocannon({ ...options, duration: WARMUP });
  const cpuBefore = target.pid === undefined ? 0 : cpuMicros(target.pid);
  const upstreamCpuBefore = target.upstreamPid === undefined ? 0 : cpuMicros(target.upstreamPid);
  const result = await autocannon({ ...options, duration: DURATION });
  const cpuUsed = target.pid === undefined ? undefined : cpuMicros(target.pid) - cpuBefore;
  const upstreamCpuUsed = target.upstreamPid === undefined ? undefined : cpuMicros(target.upstreamPid) - upstreamCpuBefore;
  const requests = result.requests.total;
  return {
    reqPerSec: result.requests.average,
    cpuMicrosPerRequest: cpuUsed === undefined || requests === 0 ? null : round1(cpuUsed / requests),
    upstreamCpuMicrosPerRequest: upstreamCpuUsed === undefined || requests === 0 ? null : round1(upstreamCpuUsed / requests),
    requests,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

/** One request's timing: to its first body byte (first SSE event) and to its end. */
async function timeOne(pool: Pool, sessionId: string, body: string) {
  const start = performance.now();
  const res = await pool.request({ path: '/mcp', method: 'POST', headers: headers(sessionId), body });
  let first: number | undefined;
  for await (const _chunk of res.body) first ??= performance.now();
  const end = performance.now();
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  return { firstMs: (first ?? end) - start, totalMs: end - start };
}

function rssMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match![1]) / 1024;
}

async function createSessions(origin: string, count: number, concurrency = 32): Promise<string[]> {
  const pool = new Pool(origin, { connections: concurrency });
  const ids: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        const res = await pool.request({
          path: '/mcp',
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: ACCEPT },
          body: INIT,
        });
        await res.body.dump();
        ids.push(res.headers['mcp-session-id'] as string);
      }
    }),
  );
  await pool.close();
  return ids;
}

// The run must never leave its children behind: on a failure (an uncaught error ends the process)
// or an interrupt they would keep their ports and their pinned CPU. 'exit' handlers cannot wait,
// but kill() sends SIGKILL before its first await, so calling it here is enough.
process.on('exit', () => void killAll());
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

// Built before anything starts, so that a ref that does not build fails the run at once.
const baseline = BASELINE_REF === undefined ? undefined : buildBaseline(BASELINE_REF);
const BASELINE = baseline && `mcp-session-proxy @${baseline.shortSha}`;
/** Section-1 targets compared with the baseline build: current name, baseline name (each next to the other in every round). */
const COMPARED: readonly (readonly [string, string])[] = BASELINE
  ? [
      [CURRENT, BASELINE],
      [MODERN, twin(MODERN)],
      [HELD, twin(HELD)],
    ]
  : [];
if (baseline?.dependenciesDiffer) {
  console.error(`warning: ${BASELINE}'s package.json has other dependencies; it runs with the current node_modules`);
}

const upstream = await startScript('bench/cheap-upstream.ts');
const plain = await startScript('bench/plain-proxy.ts', [], { UPSTREAM_ORIGIN: upstream.origin });
// The peers' approach to 2026-07-28 clients, for comparison with the pooled sessions.
const reoriginating = await startScript('bench/reoriginating-proxy.ts', [], { UPSTREAM_ORIGIN: upstream.origin });
// The proxy logs at its default level (info: an access line per request) to a file, as it would
// in production, not through this process (which runs the load generator).
mkdirSync(new URL('./results/tmp/', import.meta.url), { recursive: true });
const proxy = await startProxy(
  `${upstream.origin}/mcp`,
  { MAX_SESSIONS: '200000' },
  '0',
  fileURLToPath(new URL('./results/tmp/proxy.log', import.meta.url)),
);
// The same proxy without the per-request access line (LOG_LEVEL=warn), to show what it costs.
const quietProxy = await startProxy(
  `${upstream.origin}/mcp`,
  { LOG_LEVEL: 'warn' },
  '0',
  fileURLToPath(new URL('./results/tmp/proxy-warn.log', import.meta.url)),
);
// Two replicas sharing a session secret: the first is measured in the steady state, the second
// opens the first one's ids on a miss (section 6).
const secret = { SESSION_SECRET: randomBytes(32).toString('base64') };
const sealedProxy = await startProxy(
  `${upstream.origin}/mcp`,
  secret,
  '0',
  fileURLToPath(new URL('./results/tmp/proxy-sealed.log', import.meta.url)),
);
const sealedReplica = await startProxy(
  `${upstream.origin}/mcp`,
  { ...secret, MAX_SESSIONS: '200000' },
  '0',
  fileURLToPath(new URL('./results/tmp/proxy-sealed-replica.log', import.meta.url)),
);
// A 2025 client's session held by the proxy in front of a 2026-07-28-only upstream (a second cheap
// upstream, which answers 2026-07-28 requests statelessly): each call translated both ways. The
// first cheap upstream stays legacy-only, so that the 2026 target above is translated onto pooled
// sessions rather than passed through (with one upstream speaking both, the proxy's era probe
// found it modern and the "pooled" figure measured a pass-through).
const modernUpstream = await startScript('bench/cheap-upstream.ts', [], { CHEAP_UPSTREAM_ERA: 'modern' });
const heldProxy = await startProxy(
  `${modernUpstream.origin}/mcp`,
  { UPSTREAM_ERA: 'modern' },
  '0',
  fileURLToPath(new URL('./results/tmp/proxy-held.log', import.meta.url)),
);
// The same proxy as `proxy` with tracing on, every request sampled, exporting (http/protobuf, the
// OTel default) to a sink that accepts and discards OTLP: what tracing costs (docs/observability.md, "Tracing").
const otlpSink = await startScript('bench/otlp-sink.ts');
const tracedProxy = await startProxy(
  `${upstream.origin}/mcp`,
  { MAX_SESSIONS: '200000', OTEL_EXPORTER_OTLP_ENDPOINT: otlpSink.origin, OTEL_TRACES_SAMPLER: 'always_on' },
  '0',
  fileURLToPath(new URL('./results/tmp/proxy-traced.log', import.meta.url)),
);
// The baseline commit's proxies, with the same settings as the current ones (`proxy` and
// `heldProxy` above): every section-1 target of the current build has its baseline twin.
const baselineProxy =
  baseline &&
  (await startBaselineProxy(
    baseline.mainJs,
    `${upstream.origin}/mcp`,
    { MAX_SESSIONS: '200000' },
    fileURLToPath(new URL(`./results/tmp/proxy-baseline-${baseline.shortSha}.log`, import.meta.url)),
  ));
const baselineHeldProxy =
  baseline &&
  (await startBaselineProxy(
    baseline.mainJs,
    `${modernUpstream.origin}/mcp`,
    { UPSTREAM_ERA: 'modern' },
    fileURLToPath(new URL(`./results/tmp/proxy-baseline-held-${baseline.shortSha}.log`, import.meta.url)),
  ));
pin(process.pid, LOAD_CPUS);
pin(upstream.child.pid!, LOAD_CPUS);
pin(modernUpstream.child.pid!, LOAD_CPUS);
for (const p of [
  plain,
  reoriginating,
  proxy,
  quietProxy,
  sealedProxy,
  sealedReplica,
  heldProxy,
  tracedProxy,
  ...(baselineProxy ? [baselineProxy] : []),
  ...(baselineHeldProxy ? [baselineHeldProxy] : []),
]) {
  pin(p.child.pid!, PROXY_CPU);
}
const upstreamStats = async () => (await (await fetch(`${upstream.origin}/admin/stats`)).json()) as { initializes: number };

const proxyTarget = async (name: string, p: { origin: string; child: { pid?: number | undefined } }): Promise<Target> => ({
  name,
  origin: p.origin,
  sessionId: await initialize(p.origin),
  pid: p.child.pid!,
});
const targets: Target[] = [
  { name: 'direct', origin: upstream.origin, sessionId: await initialize(upstream.origin) },
  await proxyTarget('@fastify/http-proxy', plain),
  await proxyTarget(CURRENT, proxy),
  ...(baselineProxy ? [await proxyTarget(BASELINE!, baselineProxy)] : []),
  await proxyTarget('mcp-session-proxy, LOG_LEVEL=warn', quietProxy),
  await proxyTarget('mcp-session-proxy, sealed ids', sealedProxy),
  await proxyTarget(TRACED, tracedProxy),
  // The same proxy process as CURRENT, called by a 2026-07-28 client.
  { name: MODERN, origin: proxy.origin, sessionId: '', pid: proxy.child.pid!, modern: true },
  ...(baselineProxy
    ? [{ name: twin(MODERN), origin: baselineProxy.origin, sessionId: '', pid: baselineProxy.child.pid!, modern: true as const }]
    : []),
  { name: REORIGINATING, origin: reoriginating.origin, sessionId: '', pid: reoriginating.child.pid!, modern: true },
  await proxyTarget(HELD, heldProxy),
  ...(baselineHeldProxy ? [await proxyTarget(twin(HELD), baselineHeldProxy)] : []),
];

/**
 * The targets in one round's order. The baseline runs right next to the current build, and first
 * in every other round, so that neither one always runs in the other's wake (drift, the machine's
 * state after the previous load).
 */
function roundOrder(round: number): Target[] {
  if (!BASELINE || round % 2 === 1) return targets;
  const order = [...targets];
  for (const [current] of COMPARED) {
    const i = order.findIndex((t) => t.name === current);
    [order[i], order[i + 1]] = [order[i + 1]!, order[i]!];
  }
  return order;
}

// 1. Steady state, interleaved so that machine drift hits every target alike.
const runs: Record<string, Awaited<ReturnType<typeof load>>[]> = Object.fromEntries(targets.map((t) => [t.name, []]));
for (let round = 1; round <= ROUNDS; round++) {
  for (const target of roundOrder(round)) {
    const result = await load(target, CALL);
    runs[target.name]!.push(result);
    const cpu = result.cpuMicrosPerRequest === null ? '' : `, ${result.cpuMicrosPerRequest} µs CPU/call`;
    console.error(`round ${round} ${target.name}: ${Math.round(result.reqPerSec)} req/s${cpu}, p99 ${result.p99Ms} ms`);
  }
}
const steady = Object.fromEntries(
  targets.map((t) => {
    const r = runs[t.name]!;
    const reqPerSec = r.map((x) => Math.round(x.reqPerSec));
    const cpu = r.flatMap((x) => (x.cpuMicrosPerRequest === null ? [] : [x.cpuMicrosPerRequest]));
    return [
      t.name,
      {
        reqPerSec: Math.round(median(reqPerSec)),
        // min and max over the rounds: the noise around each median.
        reqPerSecRange: [Math.min(...reqPerSec), Math.max(...reqPerSec)],
        cpuMicrosPerRequest: cpu.length === 0 ? null : round1(median(cpu)),
        cpuMicrosPerRequestRange: cpu.length === 0 ? null : [Math.min(...cpu), Math.max(...cpu)],
        p50Ms: median(r.map((x) => x.p50Ms)),
        p99Ms: median(r.map((x) => x.p99Ms)),
        non2xx: r.reduce((a, x) => a + x.non2xx, 0),
        errors: r.reduce((a, x) => a + x.errors, 0),
        rounds: r,
      },
    ];
  }),
);
const ratio = (a: string, b: string) => round2(steady[a]!.reqPerSec / steady[b]!.reqPerSec);
// The 2026 target must have been translated onto pooled sessions, not passed through: a run in
// which the upstream looked modern to the proxy once measured a pass-through under that name.
const poolHits = Number(/pool_lookups_total\{result="hit"\} (\d+)/.exec(await (await fetch(`${proxy.origin}/metrics`)).text())?.[1] ?? 0);
if (poolHits < steady[MODERN]!.rounds.reduce((a, r) => a + r.requests, 0)) {
  throw new Error(`the 2026-07-28 target was not served from pooled sessions (${poolHits} pool hits)`);
}
// The baseline proxies are not needed after this section.
await baselineProxy?.kill();
await baselineHeldProxy?.kill();

/**
 * Current over baseline for one figure: the ratio of the medians, and the ratio in each round
 * (the two ran next to each other in every round, so the round-by-round ratios show how far the
 * comparison itself moves). The noise: each target's spread over the rounds, (max − min) / median.
 */
function compareToBaseline(metric: 'reqPerSec' | 'cpuMicrosPerRequest', currentName = CURRENT, baselineName = BASELINE!) {
  const figure = (name: string) => steady[name]![metric]!;
  const rounds = (name: string) => runs[name]!.map((r) => r[metric]!);
  const current = rounds(currentName);
  const before = rounds(baselineName);
  const perRound = current.map((c, i) => round2(c / before[i]!));
  // One round has no spread to show: null, not a misleading 0%.
  const spreadPercent = (values: number[]) =>
    values.length < 2 ? null : round1(((Math.max(...values) - Math.min(...values)) / median(values)) * 100);
  return {
    current: figure(currentName),
    baseline: figure(baselineName),
    ratio: round2(figure(currentName) / figure(baselineName)),
    perRoundRatios: perRound,
    spreadPercent: { current: spreadPercent(current), baseline: spreadPercent(before) },
  };
}
const versusBaseline = baseline && {
  ref: baseline.ref,
  sha: baseline.sha,
  target: BASELINE,
  dependenciesDiffer: baseline.dependenciesDiffer,
  reqPerSec: compareToBaseline('reqPerSec'),
  cpuMicrosPerRequest: compareToBaseline('cpuMicrosPerRequest'),
  // Every section-1 target against its twin built from the baseline commit.
  targets: Object.fromEntries(
    COMPARED.map(([current, before]) => [
      current,
      {
        baseline: before,
        reqPerSec: compareToBaseline('reqPerSec', current, before),
        cpuMicrosPerRequest: compareToBaseline('cpuMicrosPerRequest', current, before),
      },
    ]),
  ),
};

// 2. SSE pass-through: sequential time to first event; throughput under load.
const direct = targets.find((t) => t.name === 'direct')!;
const ours = targets.find((t) => t.name === CURRENT)!;
const sse: Record<string, unknown> = {};
for (const target of [direct, ours]) {
  const pool = new Pool(target.origin, { connections: 1 });
  const times = [];
  for (let i = 0; i < SAMPLES; i++) times.push(await timeOne(pool, target.sessionId, STREAM_CALL));
  await pool.close();
  const loaded = await load(target, STREAM_CALL, 8);
  sse[target.name] = {
    firstEventMedianMs: round2(median(times.map((t) => t.firstMs))),
    streamMedianMs: round2(median(times.map((t) => t.totalMs))),
    streamsPerSec: Math.round(loaded.reqPerSec),
    eventsPerSec: Math.round(loaded.reqPerSec * (STREAM_EVENTS + 1)),
  };
}
const firstEventGapMs = round2(
  (sse[ours.name] as { firstEventMedianMs: number }).firstEventMedianMs -
    (sse[direct.name] as { firstEventMedianMs: number }).firstEventMedianMs,
);

// 3. Recovery: a call that meets a lost session (replay: initialize + initialized + retry) vs a
// normal one; then a replay storm, all sessions lost at once.
// Interleaved, each call right after one admin request to the upstream (a no-op before a normal
// call, "forget every session" before a replayed one), so both see the same conditions.
const pool = new Pool(proxy.origin, { connections: 1 });
const normal = [];
const replayed = [];
for (let i = 0; i < SAMPLES; i++) {
  await fetch(`${upstream.origin}/admin/stats`);
  normal.push((await timeOne(pool, ours.sessionId, CALL)).totalMs);
  await fetch(`${upstream.origin}/admin/forget`, { method: 'POST' });
  replayed.push((await timeOne(pool, ours.sessionId, CALL)).totalMs);
}
await pool.close();
const stormIds = await createSessions(proxy.origin, STORM);
await fetch(`${upstream.origin}/admin/forget`, { method: 'POST' });
const initializesBefore = (await upstreamStats()).initializes;
const stormPool = new Pool(proxy.origin, { connections: STORM });
const stormStart = performance.now();
const stormStatuses = await Promise.all(
  stormIds.map(async (id) => {
    const res = await stormPool.request({ path: '/mcp', method: 'POST', headers: headers(id), body: CALL });
    await res.body.dump();
    return res.statusCode;
  }),
);
const stormMs = performance.now() - stormStart;
await stormPool.close();
const recovery = {
  normalCallMedianMs: round2(median(normal)),
  replayedCallMedianMs: round2(median(replayed)),
  replayedOverNormal: round2(median(replayed) / median(normal)),
  storm: {
    sessions: STORM,
    allSucceeded: stormStatuses.every((s) => s === 200),
    msUntilAllSucceeded: Math.round(stormMs),
    upstreamInitializes: (await upstreamStats()).initializes - initializesBefore,
  },
};

// 4. Memory per session: the session record measured in-process (heap, after GC), and the real
// proxy's resident memory as sessions are created over HTTP.
const heapPerSession = (sealed: boolean) =>
  JSON.parse(
    execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', 'bench/session-memory.ts'], {
      encoding: 'utf8',
      env: { ...process.env, SESSION_COUNTS: SMALL ? '1000,5000' : '10000,100000', SEALED: sealed ? '1' : '0' },
    }),
  ) as { sessions: number; heapBytesPerSession: number }[];
const memory = heapPerSession(false);
const sealedMemory = heapPerSession(true);
const pooledMemory = JSON.parse(
  execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', 'bench/pool-memory.ts'], {
    encoding: 'utf8',
    env: { ...process.env, POOL_COUNTS: SMALL ? '500,2000' : '2000,20000' },
  }),
) as { pooledSessions: number; heapBytesPerPooledSession: number }[];
const rssBefore = rssMiB(proxy.child.pid!);
const rssSamples = [];
let created = 0;
for (const count of SMALL ? [1000, 5000] : [10_000, 100_000]) {
  await createSessions(proxy.origin, count - created);
  created = count;
  rssSamples.push({
    sessions: count,
    rssMiB: Math.round(rssMiB(proxy.child.pid!)),
    rssBytesPerSessionSinceStart: Math.round(((rssMiB(proxy.child.pid!) - rssBefore) * 1024 * 1024) / count),
  });
}

// 6. Sealed ids on a miss. Each session is made on the first replica; its first call on the second
// replica opens the id and replays initialize (two upstream round trips) before forwarding; its
// second call there is an ordinary hit. Interleaved, so both see the same conditions.
const sealedIds = await createSessions(sealedProxy.origin, SAMPLES);
const replicaPool = new Pool(sealedReplica.origin, { connections: 1 });
const reopenedCalls = [];
const hitCalls = [];
for (const id of sealedIds) {
  reopenedCalls.push((await timeOne(replicaPool, id, CALL)).totalMs);
  hitCalls.push((await timeOne(replicaPool, id, CALL)).totalMs);
}
await replicaPool.close();
const sealedIdCost = {
  inProcess: JSON.parse(
    execFileSync(process.execPath, ['--import', 'tsx', 'bench/sealed-ids.ts'], {
      encoding: 'utf8',
      env: { ...process.env, SEALED_IDS: SMALL ? '500' : '20000' },
    }),
  ) as {
    idLength: number;
    sealMicros: number;
    openMicros: number;
    refuseTamperedMicros: number;
    requestState: { length: number; sealMicros: number; openMicros: number };
  },
  firstCallOnOtherReplicaMedianMs: round2(median(reopenedCalls)),
  laterCallMedianMs: round2(median(hitCalls)),
  sealedOverRandomThroughput: ratio('mcp-session-proxy, sealed ids', 'mcp-session-proxy'),
};

// 7. 2026-07-28 clients in front of a real legacy server: the v1 SDK fixture (sdk mode: a new
// McpServer and transport per upstream session, answers over SSE), where re-origination's
// per-call initialize and DELETE cost what they cost in production, not next to nothing as with
// the cheap upstream. Pooled vs re-originated, interleaved, both pinned like the other proxies;
// the SDK server's own CPU per call is measured too.
const sdkUpstream = await startFixture('sdk');
const sdkProxy = await startProxy(sdkUpstream.mcpUrl, {}, '0', fileURLToPath(new URL('./results/tmp/proxy-sdk.log', import.meta.url)));
const sdkReoriginating = await startScript('bench/reoriginating-proxy.ts', [], { UPSTREAM_ORIGIN: sdkUpstream.origin });
pin(sdkUpstream.child.pid!, LOAD_CPUS);
pin(sdkProxy.child.pid!, PROXY_CPU);
pin(sdkReoriginating.child.pid!, PROXY_CPU);
const sdkTargets: Target[] = [
  { name: MODERN, origin: sdkProxy.origin, sessionId: '', pid: sdkProxy.child.pid!, upstreamPid: sdkUpstream.child.pid!, modern: true },
  {
    name: REORIGINATING,
    origin: sdkReoriginating.origin,
    sessionId: '',
    pid: sdkReoriginating.child.pid!,
    upstreamPid: sdkUpstream.child.pid!,
    modern: true,
  },
];
const sdkRuns: Record<string, Awaited<ReturnType<typeof load>>[]> = Object.fromEntries(sdkTargets.map((t) => [t.name, []]));
for (let round = 1; round <= ROUNDS; round++) {
  for (const target of round % 2 === 1 ? sdkTargets : [...sdkTargets].reverse()) {
    const r = await load(target, CALL);
    sdkRuns[target.name]!.push(r);
    console.error(
      `round ${round} ${target.name}, SDK upstream: ${Math.round(r.reqPerSec)} req/s, ${r.cpuMicrosPerRequest} µs proxy CPU/call, ${r.upstreamCpuMicrosPerRequest} µs upstream CPU/call`,
    );
  }
}
const sdkSummary = (name: string) => {
  const r = sdkRuns[name]!;
  return {
    reqPerSec: Math.round(median(r.map((x) => x.reqPerSec))),
    reqPerSecRange: [Math.round(Math.min(...r.map((x) => x.reqPerSec))), Math.round(Math.max(...r.map((x) => x.reqPerSec)))],
    proxyCpuMicrosPerRequest: round1(median(r.map((x) => x.cpuMicrosPerRequest!))),
    upstreamCpuMicrosPerRequest: round1(median(r.map((x) => x.upstreamCpuMicrosPerRequest!))),
    non2xx: r.reduce((a, x) => a + x.non2xx, 0),
    errors: r.reduce((a, x) => a + x.errors, 0),
    perRoundReqPerSec: r.map((x) => Math.round(x.reqPerSec)),
  };
};
const versusSdkUpstream = {
  upstream: 'test/fixtures/legacy-upstream.ts --mode sdk (v1 @modelcontextprotocol/sdk, SSE answers)',
  pooled: sdkSummary(MODERN),
  reoriginated: sdkSummary(REORIGINATING),
  pooledOverReoriginationThroughput: 0,
  perRoundRatios: sdkRuns[MODERN]!.map((x, i) => round2(x.reqPerSec / sdkRuns[REORIGINATING]![i]!.reqPerSec)),
};
versusSdkUpstream.pooledOverReoriginationThroughput = round2(versusSdkUpstream.pooled.reqPerSec / versusSdkUpstream.reoriginated.reqPerSec);

// 8. MRTR.
const mrtr = await runMrtrBench(SAMPLES);

// 9. What tracing costs, sampled and not.
// The smoke run checks the section runs, not its figures: a short warm-up.
const tracing = await runTracingBench(SMALL ? 200 : TRACING_CALLS, SMALL ? 2 : TRACING_BLOCKS, SMALL ? 200 : undefined);

await killAll();

// 5. The flood.
const flood = await runFlood(SMALL ? { bound: 200, multiple: 10 } : { bound: 2000, multiple: 50 });

const result = {
  bench: 'mcp-session-proxy',
  date: new Date().toISOString(),
  machine: `${process.platform} ${process.arch}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), node ${process.version}`,
  command: baseline ? `BENCH_BASELINE=${baseline.ref} npm run bench` : 'npm run bench',
  settings: {
    durationSeconds: DURATION,
    warmupSeconds: WARMUP,
    rounds: ROUNDS,
    connections: CONNECTIONS,
    proxyLogLevel: 'info',
    cpuPinning: PIN ? { proxies: PROXY_CPU, loadGeneratorAndUpstream: LOAD_CPUS } : false,
  },
  steady,
  ratios: {
    proxyOverDirect: ratio('mcp-session-proxy', 'direct'),
    proxyOverPlainProxy: ratio('mcp-session-proxy', '@fastify/http-proxy'),
    quietProxyOverPlainProxy: ratio('mcp-session-proxy, LOG_LEVEL=warn', '@fastify/http-proxy'),
    sealedProxyOverPlainProxy: ratio('mcp-session-proxy, sealed ids', '@fastify/http-proxy'),
    // What tracing costs per call (on, every request sampled, exported) over off.
    tracedOverUntracedCpuPerCall: round2(steady[TRACED]!.cpuMicrosPerRequest! / steady[CURRENT]!.cpuMicrosPerRequest!),
    // Targets: at most 1.15 (CPU per call), at least 3 (throughput).
    modernOverLegacyCpuPerCall: round2(steady[MODERN]!.cpuMicrosPerRequest! / steady[CURRENT]!.cpuMicrosPerRequest!),
    modernOverReoriginationThroughput: ratio(MODERN, REORIGINATING),
    // Target: at most 1.15 (a 2025 client's call to a 2026-07-28-only upstream vs to a legacy one).
    heldOverLegacyCpuPerCall: round2(steady[HELD]!.cpuMicrosPerRequest! / steady[CURRENT]!.cpuMicrosPerRequest!),
    modernOverReoriginationThroughputSdkUpstream: versusSdkUpstream.pooledOverReoriginationThroughput,
  },
  versusSdkUpstream,
  ...(versusBaseline ? { baseline: versusBaseline } : {}),
  sse: { ...sse, firstEventGapMs, events: STREAM_EVENTS },
  recovery,
  memory: { heapPerSession: memory, heapPerSealedSession: sealedMemory, heapPerPooledSession: pooledMemory, proxyRss: rssSamples },
  flood,
  sealedIds: sealedIdCost,
  mrtr,
  tracing,
};
if (!SMALL) {
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/bench.json', import.meta.url), JSON.stringify(result, null, 2) + '\n');
}
process.stdout.write(JSON.stringify(result) + '\n');

/** Whether every round puts a current/baseline ratio on the same side of 1. */
const agreement = (perRound: number[]) =>
  perRound.length < 2
    ? 'one round: no noise measured, BENCH_ROUNDS=3 or more for that'
    : perRound.every((r) => r > 1)
      ? `above 1 in all ${perRound.length} rounds`
      : perRound.every((r) => r < 1)
        ? `below 1 in all ${perRound.length} rounds`
        : 'the rounds disagree: within the noise';
const comparisonLine = (label: string, c: ReturnType<typeof compareToBaseline>, unit = '') =>
  `  ${label}: ${c.current}${unit} vs ${c.baseline}${unit} = ${c.ratio} (per round ${c.perRoundRatios.join(', ')}: ${agreement(c.perRoundRatios)})` +
  (c.spreadPercent.current === null
    ? ''
    : `; spread over the rounds ${c.spreadPercent.current}% current, ${c.spreadPercent.baseline}% baseline`);
const baselineLines = versusBaseline
  ? [
      `current / baseline (${versusBaseline.target}, BENCH_BASELINE=${versusBaseline.ref}), same run, same CPU:`,
      ...Object.entries(versusBaseline.targets).flatMap(([name, c]) => [
        `  ${name}:`,
        comparisonLine('  req/s', c.reqPerSec),
        comparisonLine('  CPU per tools/call', c.cpuMicrosPerRequest, ' µs'),
      ]),
    ]
  : [];
const range = (r: number[] | null) => (r === null ? '—' : `${r[0]}–${r[1]}`);
const row = (name: string) => {
  const s = steady[name]!;
  const cpu = s.cpuMicrosPerRequest ?? '—';
  return `| ${name} | ${s.reqPerSec} | ${range(s.reqPerSecRange)} | ${cpu} | ${range(s.cpuMicrosPerRequestRange)} | ${s.p50Ms} | ${s.p99Ms} | ${s.non2xx + s.errors} |`;
};
console.error(
  [
    '',
    `| target (tools/call, ${CONNECTIONS} connections, ${DURATION} s × ${ROUNDS} rounds, medians) | req/s | req/s min–max | CPU µs/call | CPU min–max | p50 ms | p99 ms | errors |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...targets.map((t) => row(t.name)),
    '',
    ...baselineLines,
    `tracing on (every request sampled, OTLP http/protobuf to a discarding sink): CPU per call ${steady[TRACED]!.cpuMicrosPerRequest} µs vs ${steady[CURRENT]!.cpuMicrosPerRequest} µs off = ${result.ratios.tracedOverUntracedCpuPerCall}×; req/s ${steady[TRACED]!.reqPerSec} vs ${steady[CURRENT]!.reqPerSec}`,
    `proxy / direct = ${result.ratios.proxyOverDirect}; proxy / @fastify/http-proxy = ${result.ratios.proxyOverPlainProxy} (${result.ratios.quietProxyOverPlainProxy} without access lines)`,
    `2026-07-28 clients: CPU per call modern / legacy session = ${result.ratios.modernOverLegacyCpuPerCall} (target ≤ 1.15); throughput pooled / re-origination = ${result.ratios.modernOverReoriginationThroughput} against the cheap upstream, ${versusSdkUpstream.pooledOverReoriginationThroughput} against the v1 SDK server (per round ${versusSdkUpstream.perRoundRatios.join(', ')}; ${versusSdkUpstream.pooled.reqPerSec} vs ${versusSdkUpstream.reoriginated.reqPerSec} req/s; SDK server CPU per call ${versusSdkUpstream.pooled.upstreamCpuMicrosPerRequest} vs ${versusSdkUpstream.reoriginated.upstreamCpuMicrosPerRequest} µs) (target ≥ 3); heap per pooled session ${pooledMemory.map((m) => `${m.heapBytesPerPooledSession} B at ${m.pooledSessions}`).join(', ')}`,
    `2025 clients in front of a 2026-07-28-only upstream: CPU per call held session / legacy session = ${result.ratios.heldOverLegacyCpuPerCall} (target ≤ 1.15)`,
    `SSE (${STREAM_EVENTS} events): first event median direct ${(sse[direct.name] as { firstEventMedianMs: number }).firstEventMedianMs} ms, proxy ${(sse[ours.name] as { firstEventMedianMs: number }).firstEventMedianMs} ms (gap ${firstEventGapMs} ms); events/s direct ${(sse[direct.name] as { eventsPerSec: number }).eventsPerSec}, proxy ${(sse[ours.name] as { eventsPerSec: number }).eventsPerSec}`,
    `recovery: normal call ${recovery.normalCallMedianMs} ms, replayed call ${recovery.replayedCallMedianMs} ms (${recovery.replayedOverNormal}×); storm of ${STORM}: ${recovery.storm.msUntilAllSucceeded} ms, ${recovery.storm.upstreamInitializes} upstream initializes, all ok: ${recovery.storm.allSucceeded}`,
    `memory: ${memory.map((m) => `${m.heapBytesPerSession} B heap/session at ${m.sessions}`).join(', ')}; proxy RSS ${rssSamples.map((s) => `${s.rssMiB} MiB at ${s.sessions}`).join(', ')}`,
    `flood: RSS growth over the second half ${flood.rssGrowthSecondHalfMiB} MiB`,
    ...Object.values(mrtr).map(
      (m) =>
        `MRTR against ${m.upstream}: one elicitation round (answered at once) ${m.oneElicitationRoundMedianMs} ms vs a plain call ${m.plainCallMedianMs} ms = ${m.oneRoundOverPlain}× (target ≤ 2); the upstream alone (a 2025 client on its session): ${m.directAskedCallMedianMs} vs ${m.directPlainCallMedianMs} ms = ${m.directAskedOverPlain}×; the proxy adds ${m.addedByProxyAskedMs} ms to the asking call, ${m.addedByProxyPlainMs} ms to a plain one (${m.addedByProxyAskedOverPlain}×); proxy CPU per call (warm, ${m.cpuCalls} calls × 2) ${m.proxyCpuOneRoundMicros} vs ${m.proxyCpuPlainMicros} µs = ${m.proxyCpuOneRoundOverPlain}×${'toolRunsPerCall' in m ? `; tool runs per call ${m.toolRunsPerCall}` : ''}`,
    ),
    ...tracing.results.map(
      (t) =>
        `tracing ${t.tracing}, ${t.era}: CPU per call ${t.tracedMicros} µs vs ${t.offMicros} µs off = ${t.ratio}× (per phase ${t.perPhase.join(', ')}; target ${t.tracing === '1% sampled' ? '≤ 1.10' : '≤ 1.40'})`,
    ),
    `sealed ids: ${sealedIdCost.inProcess.idLength} chars; seal ${sealedIdCost.inProcess.sealMicros} µs, open ${sealedIdCost.inProcess.openMicros} µs, refuse tampered ${sealedIdCost.inProcess.refuseTamperedMicros} µs; MRTR requestState ${sealedIdCost.inProcess.requestState.length} chars, seal ${sealedIdCost.inProcess.requestState.sealMicros} µs, open ${sealedIdCost.inProcess.requestState.openMicros} µs; first call on another replica ${sealedIdCost.firstCallOnOtherReplicaMedianMs} ms vs ${sealedIdCost.laterCallMedianMs} ms after; steady throughput sealed / random ids = ${sealedIdCost.sealedOverRandomThroughput}; heap per sealed session ${sealedMemory.map((m) => `${m.heapBytesPerSession} B at ${m.sessions}`).join(', ')}`,
  ].join('\n'),
);
