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
import { fileURLToPath } from 'node:url';
import { startProxy, startScript } from '../test/helpers/processes.js';
import { alternate, median, pin, r2, target, type Target } from './ab.js';
import { buildBaseline, startBaselineProxy } from './baseline.js';

const REF = process.env.BENCH_BASELINE;
if (!REF) throw new Error('BENCH_BASELINE=<git ref> is required');
const CALLS = Number(process.env.AB_CALLS ?? 2000);
const BLOCKS = Number(process.env.AB_BLOCKS ?? 8);

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
  const cpu = await alternate(a, b, CALLS, BLOCKS);
  const ratios = cpu.a.map((x, i) => x / cpu.b[i]!);
  results.push({
    target: a.name,
    currentMicros: r2(median(cpu.a)),
    baselineMicros: r2(median(cpu.b)),
    ratio: r2(median(ratios)),
    perBlock: ratios.map(r2),
  });
}
for (const t of pairs.flat()) await t.close();
for (const p of [current, before, currentHosted, beforeHosted, legacyUpstream, modernUpstream]) await p.kill();
process.stdout.write(JSON.stringify({ ref: REF, callsPerBlock: CALLS, blocks: BLOCKS, results }, null, 2) + '\n');
