/**
 * A/B of proxy CPU per `tools/call` against a baseline build, for the section-1 targets (a 2025
 * session on a legacy upstream, a 2026-07-28 client on a pooled session, a 2025 session hosted in
 * front of a 2026-07-28-only upstream), with far less noise than the load test: calls are made one
 * at a time (no scheduler contention between 32 connections), each target is warmed up, then
 * measured in many short blocks, current and baseline alternating (first in every other block).
 * CPU comes from /proc (all threads). Both builds are pinned to the same core when possible.
 *
 *   BENCH_BASELINE=<ref> node --import tsx bench/ab-cpu.ts     (AB_CALLS per block, AB_BLOCKS)
 */
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { startProxy, startScript } from '../test/helpers/processes.js';
import { buildBaseline, startBaselineProxy } from './baseline.js';
import { cpuMicros } from './cpu.js';
import { ACCEPT, CALL, INIT, MODERN_CALL, MODERN_HEADERS } from './requests.js';

const REF = process.env.BENCH_BASELINE;
if (!REF) throw new Error('BENCH_BASELINE=<git ref> is required');
const CALLS = Number(process.env.AB_CALLS ?? 2000);
const BLOCKS = Number(process.env.AB_BLOCKS ?? 8);
const WARM_CALLS = 3000;

interface Target {
  readonly name: string;
  readonly pid: number;
  /** One call; resolves once its answer is read. */
  readonly call: () => Promise<void>;
}

async function sessionOn(pool: Pool): Promise<string> {
  const res = await pool.request({
    path: '/mcp',
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: ACCEPT },
    body: INIT,
  });
  await res.body.text();
  const id = res.headers['mcp-session-id'];
  if (res.statusCode !== 200 || typeof id !== 'string') throw new Error(`initialize: ${res.statusCode}`);
  await (
    await pool.request({
      path: '/mcp',
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: ACCEPT, 'mcp-session-id': id },
      body: '{"jsonrpc":"2.0","method":"notifications/initialized"}',
    })
  ).body.dump();
  return id;
}

async function target(name: string, origin: string, pid: number, modern: boolean): Promise<Target> {
  const pool = new Pool(origin, { connections: 1 });
  const headers = modern ? MODERN_HEADERS : { 'content-type': 'application/json', accept: ACCEPT, 'mcp-session-id': await sessionOn(pool) };
  const body = modern ? MODERN_CALL : CALL;
  return {
    name,
    pid,
    async call() {
      const res = await pool.request({ path: '/mcp', method: 'POST', headers, body });
      const text = await res.body.text();
      if (res.statusCode !== 200 || !text.includes('"result"')) throw new Error(`${name}: ${res.statusCode} ${text.slice(0, 200)}`);
    },
  };
}

/** CPU µs per call over `calls` sequential calls. */
async function measure(t: Target, calls: number): Promise<number> {
  const before = cpuMicros(t.pid);
  for (let i = 0; i < calls; i++) await t.call();
  return (cpuMicros(t.pid) - before) / calls;
}

const pin = (pid: number) => {
  if (process.platform === 'linux' && cpus().length >= 2)
    execFileSync('taskset', ['-a', '-p', '-c', String(cpus().length - 1), String(pid)], { stdio: 'ignore' });
};
const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const r2 = (n: number) => Math.round(n * 100) / 100;

const baseline = buildBaseline(REF);
const legacyUpstream = await startScript('bench/cheap-upstream.ts');
const modernUpstream = await startScript('bench/cheap-upstream.ts', [], { CHEAP_UPSTREAM_ERA: 'modern' });
const log = (name: string) => fileURLToPath(new URL(`./results/tmp/ab-${name}.log`, import.meta.url));
const current = await startProxy(`${legacyUpstream.origin}/mcp`, { MAX_SESSIONS: '200000' }, '0', log('current'));
const before = await startBaselineProxy(baseline.mainJs, `${legacyUpstream.origin}/mcp`, { MAX_SESSIONS: '200000' }, log('baseline'));
const currentHosted = await startProxy(`${modernUpstream.origin}/mcp`, { UPSTREAM_ERA: 'modern' }, '0', log('current-hosted'));
const beforeHosted = await startBaselineProxy(
  baseline.mainJs,
  `${modernUpstream.origin}/mcp`,
  { UPSTREAM_ERA: 'modern' },
  log('baseline-hosted'),
);
for (const p of [current, before, currentHosted, beforeHosted]) pin(p.child.pid!);

const pairs: [Target, Target][] = [
  [
    await target('legacy session', current.origin, current.child.pid!, false),
    await target('legacy session @baseline', before.origin, before.child.pid!, false),
  ],
  [
    await target('2026-07-28 client (pooled)', current.origin, current.child.pid!, true),
    await target('2026-07-28 client (pooled) @baseline', before.origin, before.child.pid!, true),
  ],
  [
    await target('hosted session', currentHosted.origin, currentHosted.child.pid!, false),
    await target('hosted session @baseline', beforeHosted.origin, beforeHosted.child.pid!, false),
  ],
];
const results = [];
for (const [a, b] of pairs) {
  await measure(a, WARM_CALLS);
  await measure(b, WARM_CALLS);
  const ratios: number[] = [];
  const [ca, cb]: [number[], number[]] = [[], []];
  for (let block = 0; block < BLOCKS; block++) {
    const order = block % 2 === 0 ? [a, b] : [b, a];
    const cpu = new Map<Target, number>();
    for (const t of order) cpu.set(t, await measure(t, CALLS));
    ca.push(cpu.get(a)!);
    cb.push(cpu.get(b)!);
    ratios.push(cpu.get(a)! / cpu.get(b)!);
  }
  results.push({
    target: a.name,
    currentMicros: r2(median(ca)),
    baselineMicros: r2(median(cb)),
    ratio: r2(median(ratios)),
    perBlock: ratios.map(r2),
  });
}
for (const p of [current, before, currentHosted, beforeHosted, legacyUpstream, modernUpstream]) await p.kill();
process.stdout.write(JSON.stringify({ ref: REF, callsPerBlock: CALLS, blocks: BLOCKS, results }, null, 2) + '\n');
