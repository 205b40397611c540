import { ROOT_CONTEXT, SpanKind, TraceFlags, trace, type Context } from '@opentelemetry/api';
import { SamplingDecision, TracerProvider } from '@opentelemetry/sdk-trace';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import type { SamplerName } from '../../src/observability/otel-settings.js';
import { createSampling } from '../../src/observability/sampling.js';

const baseEnv = { UPSTREAM_URL: 'http://127.0.0.1:8000/mcp' } as NodeJS.ProcessEnv;

function problems(env: NodeJS.ProcessEnv): readonly string[] {
  try {
    loadConfig([], { ...baseEnv, ...env });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('OpenTelemetry settings: the standard OTEL_* variables', () => {
  it('tracing and OTLP metrics are off unless an exporter endpoint is configured', () => {
    const { telemetry } = loadConfig([], baseEnv);
    expect(telemetry.traces).toBeUndefined();
    expect(telemetry.metrics).toBeUndefined();
    expect(telemetry.sampler).toBe('parentbased_always_on');
  });

  it('OTEL_EXPORTER_OTLP_ENDPOINT turns both signals on, http/protobuf by default, /v1/{signal} appended', () => {
    const { telemetry } = loadConfig([], { ...baseEnv, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' });
    expect(telemetry.traces).toEqual({ protocol: 'http/protobuf', endpoint: 'http://collector:4318/v1/traces' });
    expect(telemetry.metrics).toEqual({ protocol: 'http/protobuf', endpoint: 'http://collector:4318/v1/metrics' });
  });

  it('per-signal endpoint and protocol win; a signal can be turned off with OTEL_{SIGNAL}_EXPORTER=none', () => {
    const { telemetry } = loadConfig([], {
      ...baseEnv,
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example/ingest?token=x',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_METRICS_EXPORTER: 'none',
    });
    // The startup line shows origin and path only: a query string may hold a token.
    expect(telemetry.traces).toEqual({ protocol: 'http/json', endpoint: 'https://traces.example/ingest' });
    expect(telemetry.metrics).toBeUndefined();
  });

  it('OTEL_SDK_DISABLED=true turns everything off', () => {
    const { telemetry } = loadConfig([], { ...baseEnv, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' });
    expect(telemetry.traces).toBeUndefined();
    expect(telemetry.metrics).toBeUndefined();
  });

  it.each([
    [{ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, 'OTEL_EXPORTER_OTLP_PROTOCOL: expected http/protobuf or http/json, got "grpc"'],
    [{ OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http' }, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: expected http/protobuf or http/json, got "http"'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, 'OTEL_EXPORTER_OTLP_ENDPOINT: expected an http or https URL'],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url' }, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: not a URL'],
    [{ OTEL_TRACES_EXPORTER: 'zipkin' }, 'OTEL_TRACES_EXPORTER: only otlp or none is supported, got "zipkin"'],
    [{ OTEL_TRACES_SAMPLER: 'jaeger_remote' }, 'OTEL_TRACES_SAMPLER: expected one of'],
    [
      { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' },
      'OTEL_TRACES_SAMPLER_ARG: expected a ratio between 0 and 1, got "2"',
    ],
    [{ OTEL_METRIC_EXPORT_INTERVAL: 'soon' }, 'OTEL_METRIC_EXPORT_INTERVAL: expected a positive number of milliseconds'],
    [{ OTEL_SDK_DISABLED: 'yes' }, 'OTEL_SDK_DISABLED: expected true or false'],
    [{ OTEL_BSP_SCHEDULE_DELAY: '1s' }, 'OTEL_BSP_SCHEDULE_DELAY: expected an integer from 0, got "1s"'],
    [{ OTEL_BSP_MAX_QUEUE_SIZE: '0' }, 'OTEL_BSP_MAX_QUEUE_SIZE: expected an integer from 1, got "0"'],
  ])('a bad value stops startup with one line naming the variable: %o', (env, line) => {
    const found = problems({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', ...env });
    expect(found).toHaveLength(1);
    expect(found[0]).toContain(line);
  });
});

// SDK 3 reads neither OTEL_TRACES_SAMPLER{,_ARG} nor OTEL_BSP_*: the proxy does, and hands them over.
describe('the sampler and span batching named by OTEL_* variables', () => {
  it('OTEL_BSP_* set the batch span processor; the spec defaults otherwise', () => {
    expect(loadConfig([], baseEnv).telemetry.batch).toEqual({
      scheduledDelayMillis: 5000,
      exportTimeoutMillis: 30_000,
      maxQueueSize: 2048,
      maxExportBatchSize: 512,
    });
    const { telemetry } = loadConfig([], {
      ...baseEnv,
      OTEL_BSP_SCHEDULE_DELAY: '50',
      OTEL_BSP_EXPORT_TIMEOUT: '1000',
      OTEL_BSP_MAX_QUEUE_SIZE: '100',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '10',
    });
    expect(telemetry.batch).toEqual({ scheduledDelayMillis: 50, exportTimeoutMillis: 1000, maxQueueSize: 100, maxExportBatchSize: 10 });
  });

  const traceId = '0af7651916cd43dd8448eb211c80319c';
  const parent = (sampled: boolean): Context =>
    trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId: 'b7ad6b7169203331', traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE });
  const decide = (env: NodeJS.ProcessEnv, context: Context): SamplingDecision => {
    const { telemetry } = loadConfig([], { ...baseEnv, ...env });
    // The decision the server span takes, once per request (observability/sampling.ts).
    const sampling = createSampling(telemetry.sampler, telemetry.samplerRatio, ROOT_CONTEXT);
    const sampled = sampling.decide(trace.getSpanContext(context), traceId);
    // The SDK agrees: a server span decided so is recorded, whatever the caller's flag said.
    if (sampled) {
      const from = sampling.recordedFrom(trace.getSpanContext(context));
      expect(sampling.sampler.shouldSample(from, traceId, 'tools/call', SpanKind.SERVER, {}, []).decision).toBe(
        SamplingDecision.RECORD_AND_SAMPLED,
      );
    }
    return sampled ? SamplingDecision.RECORD_AND_SAMPLED : SamplingDecision.NOT_RECORD;
  };
  const { RECORD_AND_SAMPLED: SAMPLED, NOT_RECORD: DROPPED } = SamplingDecision;

  it.each<[SamplerName | undefined, string | undefined, SamplingDecision, SamplingDecision, SamplingDecision]>([
    // sampler, ratio, a new trace, under a sampled caller, under a caller that did not sample
    [undefined, undefined, SAMPLED, SAMPLED, DROPPED],
    ['parentbased_always_on', undefined, SAMPLED, SAMPLED, DROPPED],
    ['parentbased_always_off', undefined, DROPPED, SAMPLED, DROPPED],
    ['always_on', undefined, SAMPLED, SAMPLED, SAMPLED],
    ['always_off', undefined, DROPPED, DROPPED, DROPPED],
    ['traceidratio', '0', DROPPED, DROPPED, DROPPED],
    ['traceidratio', undefined, SAMPLED, SAMPLED, SAMPLED],
    ['parentbased_traceidratio', '0', DROPPED, SAMPLED, DROPPED],
    ['parentbased_traceidratio', '1', SAMPLED, SAMPLED, DROPPED],
  ])('OTEL_TRACES_SAMPLER=%s, OTEL_TRACES_SAMPLER_ARG=%s', (sampler, ratio, root, sampledParent, droppedParent) => {
    const env: NodeJS.ProcessEnv = {};
    if (sampler !== undefined) env.OTEL_TRACES_SAMPLER = sampler;
    if (ratio !== undefined) env.OTEL_TRACES_SAMPLER_ARG = ratio;
    expect([decide(env, ROOT_CONTEXT), decide(env, parent(true)), decide(env, parent(false))]).toEqual([
      root,
      sampledParent,
      droppedParent,
    ]);
  });

  it('a root span started through rootOn takes the trace id its decision was made on; other roots get random ids', () => {
    const sampling = createSampling('traceidratio', 0.5, ROOT_CONTEXT);
    const tracer = new TracerProvider({ sampler: sampling.sampler, idGenerator: sampling.ids }).getTracer('test');
    const decided = '4bf92f3577b34da6a3ce929d0e0e4736';
    const root = sampling.rootOn(decided, () => tracer.startSpan('decided', {}, sampling.recordedRoot));
    expect(root.spanContext().traceId).toBe(decided);
    expect(root.spanContext().spanId).toMatch(/^[0-9a-f]{16}$/);
    const other = tracer.startSpan('another root', {}, sampling.recordedRoot);
    expect(other.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(other.spanContext().traceId).not.toBe(decided);
    // A child keeps its parent's trace, inside rootOn or not.
    const child = sampling.rootOn('0af7651916cd43dd8448eb211c80319c', () =>
      tracer.startSpan('child', {}, trace.setSpanContext(sampling.recordedRoot, root.spanContext())),
    );
    expect(child.spanContext().traceId).toBe(decided);
  });
});
