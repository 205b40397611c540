/**
 * The A/B mechanism of `ab-cpu.ts` and `tracing-cpu.ts`: proxy CPU per `tools/call`, calls made one
 * at a time (no scheduler contention between connections), each target warmed up, then measured in
 * many short blocks whose order alternates (first in every other block). CPU comes from /proc (all
 * threads). The proxies are pinned to the same core when possible.
 */
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { Pool } from 'undici';
import { cpuMicros } from './cpu.js';
import { ACCEPT, CALL, INIT, MODERN_CALL, MODERN_HEADERS } from './requests.js';

export const WARM_CALLS = 3000;

export interface Target {
  readonly name: string;
  readonly pid: number;
  /** One call; resolves once its answer is read. */
  readonly call: () => Promise<void>;
  close(): Promise<void>;
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

/** `tools/call` on the proxy at `origin`: a 2025 client on its own session, or a 2026-07-28 client. */
export async function target(name: string, origin: string, pid: number, modern: boolean): Promise<Target> {
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
    close: () => pool.close(),
  };
}

/** CPU µs per call over `calls` sequential calls. */
export async function measure(t: Target, calls: number): Promise<number> {
  const before = cpuMicros(t.pid);
  for (let i = 0; i < calls; i++) await t.call();
  return (cpuMicros(t.pid) - before) / calls;
}

/** Give a process (all its threads) the last core, where the proxies under test run. */
export function pin(pid: number): void {
  if (process.platform === 'linux' && cpus().length >= 2)
    execFileSync('taskset', ['-a', '-p', '-c', String(cpus().length - 1), String(pid)], { stdio: 'ignore' });
}

export function median(v: readonly number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const r2 = (n: number): number => Math.round(n * 100) / 100;

/**
 * Warm both up (`warm` calls each), then `blocks` blocks of `calls` calls each, `a` first in even
 * blocks and `b` first in odd ones. CPU µs per call of each, block by block.
 */
export async function alternate(
  a: Target,
  b: Target,
  calls: number,
  blocks: number,
  warm = WARM_CALLS,
): Promise<{ a: number[]; b: number[] }> {
  await measure(a, warm);
  await measure(b, warm);
  const out = { a: [] as number[], b: [] as number[] };
  for (let block = 0; block < blocks; block++) {
    if (block % 2 === 0) {
      out.a.push(await measure(a, calls));
      out.b.push(await measure(b, calls));
    } else {
      out.b.push(await measure(b, calls));
      out.a.push(await measure(a, calls));
    }
  }
  return out;
}
