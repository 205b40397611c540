/**
 * Session flood: create sessions as fast as possible, far beyond the proxy's LRU bound, and watch
 * the proxy's resident memory. It must level off once the bound is reached: the least recently
 * used sessions are evicted (and ended upstream) instead of piling up.
 *
 *   npm run bench:flood          (FLOOD_BOUND, FLOOD_MULTIPLE to change the defaults)
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { Pool } from 'undici';
import { fileURLToPath } from 'node:url';
import { startProxy, startScript } from '../test/helpers/processes.js';

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

export async function runFlood({ bound, multiple }: { bound: number; multiple: number }) {
  const total = bound * multiple;
  const upstream = await startScript('bench/cheap-upstream.ts');
  const proxy = await startProxy(`${upstream.origin}/mcp`, { MAX_SESSIONS: String(bound), LOG_LEVEL: 'warn' });
  const pool = new Pool(proxy.origin, { connections: CONCURRENCY });
  const pid = proxy.child.pid!;

  let sent = 0;
  let created = 0;
  const samples: { sessions: number; multipleOfBound: number; rssMiB: number }[] = [
    { sessions: 0, multipleOfBound: 0, rssMiB: rssMiB(pid) },
  ];
  const started = Date.now();
  const worker = async () => {
    while (sent < total) {
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
      if (created % (total / SAMPLES) === 0) {
        samples.push({ sessions: created, multipleOfBound: created / bound, rssMiB: rssMiB(pid) });
      }
    }
  };
  let seconds: number;
  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    seconds = (Date.now() - started) / 1000;
  } finally {
    // However the flood ends (a failed initialize too), nothing it started keeps running.
    await upstream.kill();
    await proxy.kill();
    await pool.destroy();
  }

  // The first half includes V8 growing its heap to its working size; flat means the second half
  // adds nothing.
  const half = samples.find((s) => s.sessions >= total / 2)!;
  const last = samples.at(-1)!;
  return {
    maxSessions: bound,
    sessionsCreated: total,
    seconds: Math.round(seconds * 10) / 10,
    sessionsPerSecond: Math.round(total / seconds),
    samples,
    rssGrowthSecondHalfMiB: Math.round((last.rssMiB - half.rssMiB) * 10) / 10,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const bound = Number(process.env.FLOOD_BOUND ?? 2_000);
  const multiple = Number(process.env.FLOOD_MULTIPLE ?? 50);
  const result = await runFlood({ bound, multiple });
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('./results/flood.json', import.meta.url),
    JSON.stringify(
      {
        bench: 'flood',
        date: new Date().toISOString(),
        machine: `${process.platform} ${process.arch}, node ${process.version}`,
        ...result,
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`flood: ${result.sessionsCreated} sessions (${multiple} x MAX_SESSIONS=${bound}) in ${result.seconds} s`);
  console.log('| sessions created | x bound | proxy RSS (MiB) |\n| ---: | ---: | ---: |');
  for (const s of result.samples) console.log(`| ${s.sessions} | ${s.multipleOfBound} | ${s.rssMiB} |`);
  console.log(`RSS growth over the second half: ${result.rssGrowthSecondHalfMiB} MiB`);
}
