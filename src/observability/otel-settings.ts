/**
 * OpenTelemetry settings, the OTel way: the standard OTEL_* environment variables only (no flag,
 * no config file key), read here once so that a bad value stops startup with one line naming the
 * variable, as every other setting does. Tracing and the OTLP metrics are off unless an exporter
 * endpoint is configured. The exporters read their endpoint, headers, timeout and compression
 * variables themselves. The sampler (OTEL_TRACES_SAMPLER{,_ARG}) and the batch span processor
 * (OTEL_BSP_*) are read here: SDK 3 no longer reads them, it takes them in code (tracing.ts).
 */

export type OtlpProtocol = 'http/protobuf' | 'http/json';

export interface OtlpSignal {
  readonly protocol: OtlpProtocol;
  /** Where the exporter sends, for the startup line: origin and path only (no query, no credentials). */
  readonly endpoint: string;
}

export type SamplerName =
  'always_on' | 'always_off' | 'traceidratio' | 'parentbased_always_on' | 'parentbased_always_off' | 'parentbased_traceidratio';

/** OTEL_BSP_*, under the batch span processor's own option names. */
export interface BatchSettings {
  readonly scheduledDelayMillis: number;
  readonly exportTimeoutMillis: number;
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
}

export interface TelemetrySettings {
  /** Spans over OTLP; undefined = no tracing. */
  readonly traces: OtlpSignal | undefined;
  /** mcp.server/client.operation.duration over OTLP; undefined = none (Prometheus stays either way). */
  readonly metrics: OtlpSignal | undefined;
  /** OTEL_TRACES_SAMPLER (the startup line names it too). */
  readonly sampler: SamplerName;
  /** OTEL_TRACES_SAMPLER_ARG, for the ratio samplers: 1 when not given, as the spec says. */
  readonly samplerRatio: number;
  /** OTEL_BSP_*: how spans are batched for export. */
  readonly batch: BatchSettings;
  /** OTEL_METRIC_EXPORT_INTERVAL: ms between metric exports. */
  readonly metricExportIntervalMs: number;
}

// The OTel spec's default protocol for OTLP exporters.
const DEFAULT_PROTOCOL: OtlpProtocol = 'http/protobuf';
const PROTOCOLS: ReadonlySet<string> = new Set<OtlpProtocol>(['http/protobuf', 'http/json']);
// The samplers the SDK builds from OTEL_TRACES_SAMPLER (jaeger_remote and xray need packages we do not ship).
const SAMPLERS: ReadonlySet<string> = new Set<SamplerName>([
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
]);
const RATIO_SAMPLERS: ReadonlySet<string> = new Set<SamplerName>(['traceidratio', 'parentbased_traceidratio']);

// The spec's default: follow the caller's decision, sample every trace the proxy starts.
const DEFAULT_SAMPLER: SamplerName = 'parentbased_always_on';

// The spec's defaults for OTEL_BSP_SCHEDULE_DELAY, _EXPORT_TIMEOUT, _MAX_QUEUE_SIZE, _MAX_EXPORT_BATCH_SIZE.
const DEFAULT_BATCH: BatchSettings = {
  scheduledDelayMillis: 5000,
  exportTimeoutMillis: 30_000,
  maxQueueSize: 2048,
  maxExportBatchSize: 512,
};

// The OTel spec's default for OTEL_METRIC_EXPORT_INTERVAL.
const DEFAULT_METRIC_EXPORT_INTERVAL_MS = 60_000;

export const TELEMETRY_OFF: TelemetrySettings = {
  traces: undefined,
  metrics: undefined,
  sampler: DEFAULT_SAMPLER,
  samplerRatio: 1,
  batch: DEFAULT_BATCH,
  metricExportIntervalMs: DEFAULT_METRIC_EXPORT_INTERVAL_MS,
};

/** Read the OTEL_* variables; problems are pushed as one line each, naming the variable. */
export function telemetrySettingsOf(env: NodeJS.ProcessEnv, problems: string[]): TelemetrySettings {
  const found: string[] = [];
  const settings = read(env, found);
  // Both signals read the shared variables: a bad one is said once.
  for (const problem of new Set(found)) problems.push(problem);
  return settings;
}

function read(env: NodeJS.ProcessEnv, problems: string[]): TelemetrySettings {
  const get = (name: string) => (env[name] === undefined || env[name].trim() === '' ? undefined : env[name].trim());
  const sdkDisabled = get('OTEL_SDK_DISABLED');
  if (sdkDisabled !== undefined && !['true', 'false'].includes(sdkDisabled.toLowerCase())) {
    problems.push(`OTEL_SDK_DISABLED: expected true or false, got ${JSON.stringify(sdkDisabled)}`);
  }
  const disabled = sdkDisabled?.toLowerCase() === 'true';

  const signal = (kind: 'traces' | 'metrics'): OtlpSignal | undefined => {
    const upper = kind.toUpperCase();
    const exporterVar = `OTEL_${upper}_EXPORTER`;
    const exporter = get(exporterVar);
    if (exporter !== undefined && exporter !== 'otlp' && exporter !== 'none') {
      problems.push(`${exporterVar}: only otlp or none is supported, got ${JSON.stringify(exporter)}`);
      return undefined;
    }
    const protocolVar =
      get(`OTEL_EXPORTER_OTLP_${upper}_PROTOCOL`) !== undefined ? `OTEL_EXPORTER_OTLP_${upper}_PROTOCOL` : 'OTEL_EXPORTER_OTLP_PROTOCOL';
    const protocol = get(protocolVar) ?? DEFAULT_PROTOCOL;
    if (!PROTOCOLS.has(protocol)) {
      problems.push(`${protocolVar}: expected http/protobuf or http/json, got ${JSON.stringify(protocol)}`);
      return undefined;
    }
    const specific = get(`OTEL_EXPORTER_OTLP_${upper}_ENDPOINT`);
    const base = get('OTEL_EXPORTER_OTLP_ENDPOINT');
    const endpointVar = specific !== undefined ? `OTEL_EXPORTER_OTLP_${upper}_ENDPOINT` : 'OTEL_EXPORTER_OTLP_ENDPOINT';
    const text = specific ?? base;
    // Off unless an exporter is configured.
    if (text === undefined || disabled || exporter === 'none') return undefined;
    let url: URL;
    try {
      url = new URL(specific !== undefined ? text : text.replace(/\/?$/, `/v1/${kind}`));
    } catch {
      problems.push(`${endpointVar}: not a URL`);
      return undefined;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      problems.push(`${endpointVar}: expected an http or https URL`);
      return undefined;
    }
    return { protocol: protocol as OtlpProtocol, endpoint: url.origin + url.pathname };
  };

  const sampler = get('OTEL_TRACES_SAMPLER') ?? DEFAULT_SAMPLER;
  if (!SAMPLERS.has(sampler))
    problems.push(`OTEL_TRACES_SAMPLER: expected one of ${[...SAMPLERS].join(', ')}, got ${JSON.stringify(sampler)}`);
  const ratio = get('OTEL_TRACES_SAMPLER_ARG');
  let samplerRatio = 1;
  if (ratio !== undefined && RATIO_SAMPLERS.has(sampler)) {
    samplerRatio = Number(ratio);
    if (!Number.isFinite(samplerRatio) || samplerRatio < 0 || samplerRatio > 1)
      problems.push(`OTEL_TRACES_SAMPLER_ARG: expected a ratio between 0 and 1, got ${JSON.stringify(ratio)}`);
  }
  const interval = get('OTEL_METRIC_EXPORT_INTERVAL');
  const metricExportIntervalMs = interval === undefined ? DEFAULT_METRIC_EXPORT_INTERVAL_MS : Number(interval);
  if (!(Number.isInteger(metricExportIntervalMs) && metricExportIntervalMs > 0)) {
    problems.push(`OTEL_METRIC_EXPORT_INTERVAL: expected a positive number of milliseconds, got ${JSON.stringify(interval)}`);
  }
  const integer = (name: string, fallback: number, min: number): number => {
    const text = get(name);
    const value = text === undefined ? fallback : Number(text);
    if (!(Number.isInteger(value) && value >= min)) problems.push(`${name}: expected an integer from ${min}, got ${JSON.stringify(text)}`);
    return value;
  };
  const batch: BatchSettings = {
    scheduledDelayMillis: integer('OTEL_BSP_SCHEDULE_DELAY', DEFAULT_BATCH.scheduledDelayMillis, 0),
    exportTimeoutMillis: integer('OTEL_BSP_EXPORT_TIMEOUT', DEFAULT_BATCH.exportTimeoutMillis, 0),
    maxQueueSize: integer('OTEL_BSP_MAX_QUEUE_SIZE', DEFAULT_BATCH.maxQueueSize, 1),
    maxExportBatchSize: integer('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', DEFAULT_BATCH.maxExportBatchSize, 1),
  };
  return {
    traces: signal('traces'),
    metrics: signal('metrics'),
    sampler: sampler as SamplerName,
    samplerRatio,
    batch,
    metricExportIntervalMs,
  };
}
