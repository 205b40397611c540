/**
 * MRTR cost (bench/run.ts section 8): a 2026-07-28 tools/call whose legacy tool asks one question
 * (elicitation), answered at once by the client, against a plain call, through the same proxy in
 * the same run: two POSTs (the input_required round and the retry, which continues the parked
 * upstream exchange) against one. The target: the round costs at most 2 × a plain call (plus the
 * client's own time, zero here).
 *
 * Against two upstreams, because the question's cost is mostly the upstream's:
 *   - the v1 SDK server (test/fixtures/legacy-upstream.ts --mode sdk --mrtr, tool `ask-name`),
 *     whose own question costs over 3 × its plain call (measured here as "direct": a 2025 client
 *     on its own session, answering the elicitation as a server→client request);
 *   - the cheap upstream (bench/cheap-upstream.ts, tool `ask`), whose question costs what the
 *     protocol does (one more POST), so that the ratio is the proxy's own.
 * Times: sequential calls on one connection, interleaved, medians. CPU: the proxy's process
 * (utime + stime) over long runs of each kind after a warm-up, alternated, because a few hundred
 * calls are neither warm (the JIT keeps tiering up for thousands) nor many clock ticks.
 */
import { Pool } from 'undici';
import { startFixture, startProxy, startScript } from '../test/helpers/processes.js';
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
  const data = text.startsWith('{')
    ? [text]
    : text
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6));
  return JSON.parse(data.at(-1)!) as Record<string, any>;
}

async function call(pool: Pool, name: string, params: Record<string, unknown>, id: number): Promise<Record<string, any>> {
  const body = JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {}, ...params, _meta: META } });
  const res = await pool.request({ method: 'POST', path: '/mcp', headers: HEADERS(name), body });
  const message = lastMessage(await res.body.text());
  if (res.statusCode !== 200 || message.error !== undefined) throw new Error(`bench-mrtr: ${name} failed: ${JSON.stringify(message)}`);
  return message.result;
}

const LEGACY_HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': '2025-11-25',
};

/**
 * The same two calls made directly on the upstream by a 2025 client on its own session, answering
 * the elicitation as a server→client request: what the upstream itself spends on a question.
 */
async function directLegacy(mcpUrl: string, tools: AskingUpstream['tools']) {
  const { origin, pathname: path } = new URL(mcpUrl);
  const pool = new Pool(origin, { connections: 2 });
  const init = await pool.request({
    method: 'POST',
    path,
    headers: LEGACY_HEADERS,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: { elicitation: {} }, clientInfo: { name: 'bench-direct', version: '1' } },
    }),
  });
  await init.body.text();
  const headers = { ...LEGACY_HEADERS, 'mcp-session-id': String(init.headers['mcp-session-id']) };
  await (await pool.request({ method: 'POST', path, headers, body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' })).body.text();
  let id = 0;
  const plainCall = async () => {
    const started = performance.now();
    const res = await pool.request({
      method: 'POST',
      path,
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: ++id, method: 'tools/call', params: { name: tools.plain, arguments: { text: 'hi' } } }),
    });
    await res.body.text();
    return performance.now() - started;
  };
  const askedCall = async () => {
    const started = performance.now();
    const res = await pool.request({
      method: 'POST',
      path,
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: ++id, method: 'tools/call', params: { name: tools.ask, arguments: {} } }),
    });
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
          await (await pool.request({ method: 'POST', path, headers, body: reply })).body.text();
        }
      }
    }
    return performance.now() - started;
  };
  return { pool, plainCall, askedCall };
}

/** An upstream with a tool that asks one question (`ask`) and one that does not (`plain`). */
interface AskingUpstream {
  readonly mcpUrl: string;
  readonly tools: { readonly plain: string; readonly ask: string };
  /** How many times the asking tool ran (the SDK fixture counts), to check it runs once per call. */
  readonly askRuns?: () => Promise<number>;
}

async function measure(upstream: AskingUpstream, samples: number, cpuCalls: number) {
  const { plain: plainTool, ask: askTool } = upstream.tools;
  const proxy = await startProxy(upstream.mcpUrl, { LOG_LEVEL: 'warn' });
  const pool = new Pool(proxy.origin, { connections: 1 });
  const plain: number[] = [];
  const oneRound: number[] = [];
  let id = 0;
  const plainCall = async () => {
    const started = performance.now();
    const result = await call(pool, plainTool, { arguments: { text: 'hi' } }, ++id);
    if (result.resultType !== 'complete') throw new Error('bench-mrtr: echo did not complete');
    return performance.now() - started;
  };
  const askedCall = async () => {
    const started = performance.now();
    const first = await call(pool, askTool, {}, ++id);
    if (first.resultType !== 'input_required') throw new Error(`bench-mrtr: ${askTool} did not ask`);
    const key = Object.keys(first.inputRequests)[0]!;
    const done = await call(
      pool,
      askTool,
      { inputResponses: { [key]: { action: 'accept', content: { name: 'Bench' } } }, requestState: first.requestState },
      ++id,
    );
    if (done.resultType !== 'complete') throw new Error(`bench-mrtr: ${askTool} did not complete`);
    return performance.now() - started;
  };
  const direct = await directLegacy(upstream.mcpUrl, upstream.tools);
  const directPlain: number[] = [];
  const directAsked: number[] = [];
  // Warm-up: the pooled session opens, code paths get compiled.
  const warmup = Math.min(50, samples);
  for (let i = 0; i < warmup; i++) {
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
  // Read before the CPU runs below add calls of their own: one run per asking call, proxy or direct.
  const askRunsPerCall = upstream.askRuns === undefined ? undefined : (await upstream.askRuns()) / (2 * (samples + warmup));
  // The proxy's own CPU time per call (utime + stime of its process), plain calls and asking calls
  // each in runs of their own: what the question costs the proxy, whatever the upstream spends.
  // Warmed first, then two runs of each kind, alternated, summed.
  for (let i = 0; i < cpuCalls; i++) {
    await plainCall();
    await askedCall();
  }
  const cpu = { plain: 0, asked: 0 };
  for (let run = 0; run < 2; run++) {
    for (const [kind, one] of [
      ['plain', plainCall],
      ['asked', askedCall],
    ] as const) {
      const before = cpuMicros(proxy.child.pid!);
      for (let i = 0; i < cpuCalls; i++) await one();
      cpu[kind] += (cpuMicros(proxy.child.pid!) - before) / (2 * cpuCalls);
    }
  }
  await pool.close();
  await direct.pool.close();
  await proxy.stop();
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const round2 = (n: number) => Math.round(n * 100) / 100;
  const plainMs = median(plain);
  const oneRoundMs = median(oneRound);
  return {
    samples,
    plainCallMedianMs: round2(plainMs),
    oneElicitationRoundMedianMs: round2(oneRoundMs),
    // Target: at most 2.
    oneRoundOverPlain: round2(oneRoundMs / plainMs),
    // The upstream's own cost of a question: the same calls by a 2025 client on its own session.
    directPlainCallMedianMs: round2(median(directPlain)),
    directAskedCallMedianMs: round2(median(directAsked)),
    directAskedOverPlain: round2(median(directAsked) / median(directPlain)),
    // What the proxy adds to a call with one question, against what it adds to a plain call.
    addedByProxyAskedMs: round2(oneRoundMs - median(directAsked)),
    addedByProxyPlainMs: round2(plainMs - median(directPlain)),
    addedByProxyAskedOverPlain: round2((oneRoundMs - median(directAsked)) / (plainMs - median(directPlain))),
    // The proxy's CPU per call (µs): a call with one question (two POSTs, the requestState sealed
    // and opened, the parked exchange) against a plain one; cpuCalls of each, twice.
    cpuCalls,
    proxyCpuPlainMicros: Math.round(cpu.plain),
    proxyCpuOneRoundMicros: Math.round(cpu.asked),
    proxyCpuOneRoundOverPlain: round2(cpu.asked / cpu.plain),
    // Parked and continued: the tool ran once per call (where the upstream counts).
    ...(askRunsPerCall === undefined ? {} : { toolRunsPerCall: askRunsPerCall }),
  };
}

export async function runMrtrBench(samples: number, cpuCalls = samples * 10) {
  const sdk = await startFixture('sdk', { mrtr: true });
  const versusSdkUpstream = await measure(
    { mcpUrl: sdk.mcpUrl, tools: { plain: 'echo', ask: 'ask-name' }, askRuns: async () => (await sdk.stats()).toolRuns['ask-name'] ?? 0 },
    samples,
    cpuCalls,
  );
  await sdk.stop();
  const cheap = await startScript('bench/cheap-upstream.ts');
  const versusCheapUpstream = await measure({ mcpUrl: `${cheap.origin}/mcp`, tools: { plain: 'echo', ask: 'ask' } }, samples, cpuCalls);
  await cheap.stop();
  return {
    versusSdkUpstream: { upstream: 'test/fixtures/legacy-upstream.ts --mode sdk --mrtr (v1 SDK, SSE answers)', ...versusSdkUpstream },
    versusCheapUpstream: {
      upstream: 'bench/cheap-upstream.ts (JSON answers; its question: one SSE event and a 202)',
      ...versusCheapUpstream,
    },
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
