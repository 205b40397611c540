/**
 * What tracing costs: proxy CPU per `tools/call` with tracing off, 1% sampled (the
 * parent-based ratio sampler, as operators run it) and every request sampled, exporting OTLP
 * (http/protobuf) to a sink that discards it, for a 2025 client on its session and a 2026-07-28
 * client (pooled session), in front of the cheap legacy upstream.
 *
 * Each traced setting is compared with tracing off by the mechanism of ab-cpu.ts (bench/ab.ts:
 * calls one at a time, alternating blocks, the proxies pinned to one core), in two phases whose
 * processes start in the opposite order: on these VMs the process started second measures up to
 * 15–20% more whatever it runs. The ratio quoted is the median of the per-block ratios of both
 * phases; each phase's own median is given too.
 *
 *   node --import tsx bench/tracing-cpu.ts      (TRACING_CALLS per block, 400; TRACING_BLOCKS per phase, 30)
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startProxy, startScript, type Proxy } from '../test/helpers/processes.js';
import { alternate, median, pin, r2, target, WARM_CALLS } from './ab.js';

const SETTINGS = (sink: string): Record<string, Record<string, string>> => {
  const exported = { OTEL_EXPORTER_OTLP_ENDPOINT: sink, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' };
  return {
    off: {},
    '1% sampled': { ...exported, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.01' },
    'all sampled': { ...exported, OTEL_TRACES_SAMPLER: 'always_on' },
  };
};
// Short blocks, many of them: the machine's speed drifts by a third within a minute here, and a
// pair of 400-call blocks takes about half a second (CPU read in ns, bench/cpu.ts).
export const CALLS = 400;
export const BLOCKS = 30;
const ERAS = [
  { era: '2025 session', modern: false },
  { era: '2026-07-28 client', modern: true },
] as const;

export interface TracingCost {
  readonly era: string;
  readonly tracing: string;
  readonly offMicros: number;
  readonly tracedMicros: number;
  /** Median of the per-block traced/off ratios of both phases. */
  readonly ratio: number;
  readonly perPhase: number[];
  readonly perBlock: number[];
}

/** `calls` per block, `blocks` per phase; two phases (start order swapped) per traced setting. */
export async function runTracingBench(calls: number, blocks: number, warm = WARM_CALLS) {
  const upstream = await startScript('bench/cheap-upstream.ts');
  const sink = await startScript('bench/otlp-sink.ts');
  const settings = SETTINGS(sink.origin);
  mkdirSync(new URL('./results/tmp/', import.meta.url), { recursive: true });
  const log = (name: string) => fileURLToPath(new URL(`./results/tmp/tracing-${name.replace(/\W+/g, '-')}.log`, import.meta.url));
  const start = async (setting: string, phase: number): Promise<Proxy> => {
    const proxy = await startProxy(
      `${upstream.origin}/mcp`,
      { MAX_SESSIONS: '200000', ...settings[setting] },
      '0',
      log(`${setting}-${phase}`),
    );
    pin(proxy.child.pid!);
    return proxy;
  };
  const results: TracingCost[] = [];
  for (const traced of ['1% sampled', 'all sampled']) {
    const perEra = new Map<string, { off: number[]; traced: number[]; ratios: number[]; phases: number[] }>();
    for (const [phase, order] of [
      ['off', traced],
      [traced, 'off'],
    ].entries()) {
      // Started one after the other, in this phase's order.
      const proxies = new Map<string, Proxy>();
      for (const setting of order) proxies.set(setting, await start(setting, phase));
      const off = proxies.get('off')!;
      const on = proxies.get(traced)!;
      for (const { era, modern } of ERAS) {
        const a = await target(`${era}, off`, off.origin, off.child.pid!, modern);
        const b = await target(`${era}, ${traced}`, on.origin, on.child.pid!, modern);
        const cpu = await alternate(a, b, calls, blocks, warm);
        await a.close();
        await b.close();
        const ratios = cpu.b.map((x, i) => x / cpu.a[i]!);
        const entry = perEra.get(era) ?? { off: [], traced: [], ratios: [], phases: [] };
        entry.off.push(...cpu.a);
        entry.traced.push(...cpu.b);
        entry.ratios.push(...ratios);
        entry.phases.push(median(ratios));
        perEra.set(era, entry);
      }
      for (const proxy of proxies.values()) await proxy.stop();
    }
    for (const [era, e] of perEra) {
      results.push({
        era,
        tracing: traced,
        offMicros: r2(median(e.off)),
        tracedMicros: r2(median(e.traced)),
        ratio: r2(median(e.ratios)),
        perPhase: e.phases.map(r2),
        perBlock: e.ratios.map(r2),
      });
    }
  }
  const received = (await (await fetch(`${sink.origin}/stats`)).json()) as { exports: number; bytes: number };
  for (const p of [upstream, sink]) await p.kill();
  // Tracing that exported nothing measured nothing.
  if (received.exports === 0) throw new Error('the OTLP sink received nothing: tracing was not on');
  return { callsPerBlock: calls, blocksPerPhase: blocks, otlpSink: received, results };
}

// Run alone: `node --import tsx bench/tracing-cpu.ts`.
if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await runTracingBench(Number(process.env.TRACING_CALLS ?? CALLS), Number(process.env.TRACING_BLOCKS ?? BLOCKS));
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}
