import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

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
  ])('a bad value stops startup with one line naming the variable: %o', (env, line) => {
    const found = problems({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', ...env });
    expect(found).toHaveLength(1);
    expect(found[0]).toContain(line);
  });
});
