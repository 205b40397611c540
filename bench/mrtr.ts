/**
 * MRTR cost (bench/run.ts section 7): a 2026-07-28 tools/call whose legacy tool asks one question
 * (elicitation), answered at once by the client, against a plain call, through the same proxy in
 * the same run: two POSTs (the input_required round and the retry, which continues the parked
 * upstream exchange) against one. Sequential calls on one connection, interleaved, medians. The
 * target: the round costs at most 2 × a plain call (plus the client's own time, zero here).
 */
import { Pool } from 'undici';
import { startFixture, startProxy } from '../test/helpers/processes.js';
import { cpuMicros } from './cpu.js';

const HEADERS = (name: string) => ({
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': '2026-07-28',
  'mcp-method': 'tools/call',
  'mcp-name': name,
});
const META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': { elicitation: {} },
  'io.modelcontextprotocol/clientInfo': { name: 'bench-mrtr', version: '1' },
};

/** The last JSON-RPC message of an answer, JSON or SSE. */
function lastMessage(text: string): Record<string, any> {
  const data = text.startsWith('{') ? [text] : text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
  return JSON.parse(data.at(-1)!) as Record<string, any>;
}

async function call(pool: Pool, name: string, params: Record<string, unknown>, id: number): Promise<Record<string, any>> {
  const body = JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {}, ...params, _meta: META } });
  const res = await pool.request({ method: 'POST', path: '/mcp', headers: HEADERS(name), body });
  const message = lastMessage(await res.body.text());
  if (res.statusCode !== 200 || message.error !== undefined) throw new Error(`bench-mrtr: ${name} failed: ${JSON.stringify(message)}`);
  return message.result;
}

const LEGACY_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };

/**
 * The same two calls made directly on the upstream by a 2025 client on its own session, answering
 * the elicitation as a server→client request: what the upstream itself spends on a question.
 */
async function directLegacy(origin: string) {
  const pool = new Pool(origin, { connections: 2 });
  const init = await pool.request({
    method: 'POST',
    path: '/mcp',
    headers: LEGACY_HEADERS,
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: { elicitation: {} }, clientInfo: { name: 'bench-direct', version: '1' } } }),
  });
  await init.body.text();
  const headers = { ...LEGACY_HEADERS, 'mcp-session-id': String(init.headers['mcp-session-id']) };
  await (await pool.request({ method: 'POST', path: '/mcp', headers, body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' })).body.text();
  let id = 0;
  const plainCall = async () => {
    const started = performance.now();
    const res = await pool.request({ method: 'POST', path: '/mcp', headers, body: JSON.stringify({ jsonrpc: '2.0', id: ++id, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' } } }) });
    await res.body.text();
    return performance.now() - started;
  };
  const askedCall = async () => {
    const started = performance.now();
    const res = await pool.request({ method: 'POST', path: '/mcp', headers, body: JSON.stringify({ jsonrpc: '2.0', id: ++id, method: 'tools/call', params: { name: 'ask-name', arguments: {} } }) });
    let text = '';
    let answered = false;
    for await (const chunk of res.body) {
      text += chunk.toString();
      if (!answered) {
        const asked = /data: (\{[^\n]*"method":"elicitation\/create"[^\n]*\})/.exec(text);
        if (asked !== null) {
          answered = true;
          const request = JSON.parse(asked[1]!) as { id: number | string };
          const reply = JSON.stringify({ jsonrpc: '2.0', id: request.id, result: { action: 'accept', content: { name: 'Bench' } } });
          await (await pool.request({ method: 'POST', path: '/mcp', headers, body: reply })).body.text();
        }
      }
    }
    return performance.now() - started;
  };
  return { pool, plainCall, askedCall };
}

export async function runMrtrBench(samples: number) {
  const upstream = await startFixture('sdk', { mrtr: true });
  const proxy = await startProxy(upstream.mcpUrl, { LOG_LEVEL: 'warn' });
  const pool = new Pool(proxy.origin, { connections: 1 });
  const plain: number[] = [];
  const oneRound: number[] = [];
  let id = 0;
  const plainCall = async () => {
    const started = performance.now();
    const result = await call(pool, 'echo', { arguments: { text: 'hi' } }, ++id);
    if (result.resultType !== 'complete') throw new Error('bench-mrtr: echo did not complete');
    return performance.now() - started;
  };
  const askedCall = async () => {
    const started = performance.now();
    const first = await call(pool, 'ask-name', {}, ++id);
    if (first.resultType !== 'input_required') throw new Error('bench-mrtr: ask-name did not ask');
    const key = Object.keys(first.inputRequests)[0]!;
    const done = await call(pool, 'ask-name', { inputResponses: { [key]: { action: 'accept', content: { name: 'Bench' } } }, requestState: first.requestState }, ++id);
    if (done.resultType !== 'complete') throw new Error('bench-mrtr: ask-name did not complete');
    return performance.now() - started;
  };
  const direct = await directLegacy(upstream.origin);
  const directPlain: number[] = [];
  const directAsked: number[] = [];
  // Warm-up: the pooled session opens, code paths get compiled.
  for (let i = 0; i < Math.min(50, samples); i++) {
    await plainCall();
    await askedCall();
    await direct.plainCall();
    await direct.askedCall();
  }
  for (let i = 0; i < samples; i++) {
    plain.push(await plainCall());
    oneRound.push(await askedCall());
    directPlain.push(await direct.plainCall());
    directAsked.push(await direct.askedCall());
  }
  // Read before the CPU runs below add calls of their own.
  const stats = await upstream.stats();
  // The proxy's own CPU time per call (utime + stime of its process), plain calls and asking calls
  // each in a run of their own: what the question costs the proxy, whatever the upstream spends.
  const proxyCpu = async (one: () => Promise<number>) => {
    const before = cpuMicros(proxy.child.pid!);
    for (let i = 0; i < samples; i++) await one();
    return (cpuMicros(proxy.child.pid!) - before) / samples;
  };
  const plainCpu = await proxyCpu(plainCall);
  const askedCpu = await proxyCpu(askedCall);
  await pool.close();
  await direct.pool.close();
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const plainMs = median(plain);
  const oneRoundMs = median(oneRound);
  return {
    samples,
    plainCallMedianMs: Math.round(plainMs * 100) / 100,
    oneElicitationRoundMedianMs: Math.round(oneRoundMs * 100) / 100,
    // Target: at most 2.
    oneRoundOverPlain: Math.round((oneRoundMs / plainMs) * 100) / 100,
    // The upstream's own cost of a question: the same calls by a 2025 client on its own session.
    directPlainCallMedianMs: Math.round(median(directPlain) * 100) / 100,
    directAskedCallMedianMs: Math.round(median(directAsked) * 100) / 100,
    directAskedOverPlain: Math.round((median(directAsked) / median(directPlain)) * 100) / 100,
    // The proxy's CPU per call (µs): a call with one question (two POSTs, the requestState sealed
    // and opened, the parked exchange) against a plain one.
    proxyCpuPlainMicros: Math.round(plainCpu),
    proxyCpuOneRoundMicros: Math.round(askedCpu),
    proxyCpuOneRoundOverPlain: Math.round((askedCpu / plainCpu) * 100) / 100,
    // What the proxy adds to a call with one question, against what it adds to a plain call.
    addedByProxyAskedMs: Math.round((oneRoundMs - median(directAsked)) * 100) / 100,
    addedByProxyPlainMs: Math.round((plainMs - median(directPlain)) * 100) / 100,
    // Parked and continued: the tool ran once per call.
    toolRunsPerCall: (stats.toolRuns['ask-name'] ?? 0) / (2 * (samples + Math.min(50, samples))),
  };
}

// Run alone: `node --import tsx bench/mrtr.ts`.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { killAll } = await import('../test/helpers/processes.js');
  try {
    process.stdout.write(JSON.stringify(await runMrtrBench(Number(process.env.MRTR_SAMPLES ?? 300))) + '\n');
  } finally {
    await killAll();
  }
}
