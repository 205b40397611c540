/**
 * Session flood: create sessions as fast as possible, far beyond the proxy's LRU bound, and watch
 * the proxy's resident memory. It must level off once the bound is reached: the least recently
 * used sessions are evicted (and ended upstream) instead of piling up.
 *
 *   npm run bench:flood          (FLOOD_BOUND, FLOOD_MULTIPLE to change the defaults)
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { Pool } from 'undici';
import { killAll, startProxy, startScript } from '../test/helpers/processes.js';

const BOUND = Number(process.env.FLOOD_BOUND ?? 2_000);
const MULTIPLE = Number(process.env.FLOOD_MULTIPLE ?? 50);
const TOTAL = BOUND * MULTIPLE;
const CONCURRENCY = 32;
const SAMPLES = 10;

// What the official SDK client sends: these params are what each session stores.
const INIT = JSON.stringify({
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } },
    clientInfo: { name: 'flood-client', version: '1.0.0' },
  },
});

function rssMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round((Number(match![1]) / 1024) * 10) / 10;
}

const upstream = await startScript('bench/cheap-upstream.ts');
const proxy = await startProxy(`${upstream.origin}/mcp`, { MAX_SESSIONS: String(BOUND), LOG_LEVEL: 'warn' });
const pool = new Pool(proxy.origin, { connections: CONCURRENCY });
const pid = proxy.child.pid!;

let sent = 0;
let created = 0;
const samples: { sessions: number; multipleOfBound: number; rssMiB: number }[] = [
  { sessions: 0, multipleOfBound: 0, rssMiB: rssMiB(pid) },
];
const started = Date.now();
const worker = async () => {
  while (sent < TOTAL) {
    sent++;
    const res = await pool.request({
      path: '/mcp',
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: INIT,
    });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`initialize answered ${res.statusCode}`);
    created++;
    if (created % (TOTAL / SAMPLES) === 0) {
      samples.push({ sessions: created, multipleOfBound: created / BOUND, rssMiB: rssMiB(pid) });
    }
  }
};
await Promise.all(Array.from({ length: CONCURRENCY }, worker));
const seconds = (Date.now() - started) / 1000;
await pool.close();
await killAll();

// The first half includes V8 growing its heap to its working size; flat means the second half
// adds nothing.
const half = samples.find((s) => s.sessions >= TOTAL / 2)!;
const last = samples.at(-1)!;
const result = {
  bench: 'flood',
  date: new Date().toISOString(),
  machine: `${process.platform} ${process.arch}, node ${process.version}`,
  maxSessions: BOUND,
  sessionsCreated: TOTAL,
  sessionsPerSecond: Math.round(TOTAL / seconds),
  samples,
  rssGrowthSecondHalfMiB: Math.round((last.rssMiB - half.rssMiB) * 10) / 10,
};
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/flood.json', import.meta.url), JSON.stringify(result, null, 2) + '\n');

console.log(`flood: ${TOTAL} sessions (${MULTIPLE} x MAX_SESSIONS=${BOUND}) in ${seconds.toFixed(1)} s`);
console.log('| sessions created | x bound | proxy RSS (MiB) |\n| ---: | ---: | ---: |');
for (const s of samples) console.log(`| ${s.sessions} | ${s.multipleOfBound} | ${s.rssMiB} |`);
console.log(
  `RSS growth over the second half (${half.multipleOfBound}x to ${MULTIPLE}x the bound): ${result.rssGrowthSecondHalfMiB} MiB`,
);
