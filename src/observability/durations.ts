/**
 * The OTel MCP duration histograms (`mcp.server.operation.duration`, `mcp.client.operation.duration`),
 * aggregated here and handed to the SDK's metric reader as a MetricProducer, so that a request
 * costs what a Prometheus histogram observation costs: a series is found through three map
 * lookups on its bounded attribute values, its attribute set is built once, when the series is
 * first seen, and recording is a bucket increment. (The SDK's own histogram hashes the attribute
 * set of every measurement: about as much as the rest of an unsampled request's tracing.)
 */
import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  type CollectionResult,
  type HistogramMetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';

// The conventions' advice for mcp.*.operation.duration (seconds).
const DURATION_BUCKETS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];
/**
 * Series per histogram at most, as the SDK's default cardinality limit: method names come from
 * clients, so beyond it measurements go to one overflow series, as the SDK's do.
 */
const MAX_SERIES = 2000;
const OVERFLOW: Attributes = { 'otel.metric.overflow': true };

/** One attribute set's histogram: cumulative since `startTime`. */
interface Series {
  readonly attributes: Attributes;
  readonly startTime: HrTime;
  readonly counts: number[];
  sum: number;
  count: number;
  min: number;
  max: number;
}

export interface DurationHistogram {
  /**
   * Record one operation. `method` and `protocolVersion` are the request's (undefined: not an MCP
   * message, or none given); `errorType` is set when it failed.
   */
  record(seconds: number, method: string | undefined, protocolVersion: string | undefined, errorType: string | undefined): void;
}

interface Histogram extends DurationHistogram {
  collect(endTime: HrTime): HistogramMetricData | undefined;
}

function createHistogram(name: string, description: string, constant: Attributes): Histogram {
  // method → protocol version → error type → series ('' for an absent value).
  const series = new Map<string, Map<string, Map<string, Series>>>();
  let size = 0;
  let overflow: Series | undefined;

  const newSeries = (attributes: Attributes): Series => ({
    attributes,
    startTime: hrTime(),
    counts: new Array<number>(DURATION_BUCKETS.length + 1).fill(0),
    sum: 0,
    count: 0,
    min: Infinity,
    max: -Infinity,
  });

  function find(method: string | undefined, version: string | undefined, errorType: string | undefined): Series {
    const found = series
      .get(method ?? '')
      ?.get(version ?? '')
      ?.get(errorType ?? '');
    if (found !== undefined) return found;
    // Method names and versions come from clients: past the bound, nothing more is kept per value.
    if (size >= MAX_SERIES) return (overflow ??= newSeries(OVERFLOW));
    let byVersion = series.get(method ?? '');
    if (byVersion === undefined) series.set(method ?? '', (byVersion = new Map<string, Map<string, Series>>()));
    let byError = byVersion.get(version ?? '');
    if (byError === undefined) byVersion.set(version ?? '', (byError = new Map<string, Series>()));
    const attributes: Attributes = { ...constant };
    if (method !== undefined) attributes['mcp.method.name'] = method;
    if (version !== undefined) attributes['mcp.protocol.version'] = version;
    if (errorType !== undefined) attributes['error.type'] = errorType;
    const created = newSeries(attributes);
    byError.set(errorType ?? '', created);
    size++;
    return created;
  }

  return {
    record(seconds, method, protocolVersion, errorType) {
      const s = find(method, protocolVersion, errorType);
      let bucket = 0;
      while (bucket < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[bucket]!) bucket++;
      s.counts[bucket]!++;
      s.sum += seconds;
      s.count++;
      if (seconds < s.min) s.min = seconds;
      if (seconds > s.max) s.max = seconds;
    },
    collect(endTime) {
      const all: Series[] = [];
      for (const byVersion of series.values()) for (const byError of byVersion.values()) all.push(...byError.values());
      if (overflow !== undefined) all.push(overflow);
      if (all.length === 0) return undefined;
      return {
        descriptor: { name, description, unit: 's', valueType: ValueType.DOUBLE },
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.HISTOGRAM,
        dataPoints: all.map((s) => ({
          attributes: s.attributes,
          startTime: s.startTime,
          endTime,
          value: {
            buckets: { boundaries: DURATION_BUCKETS, counts: [...s.counts] },
            sum: s.sum,
            count: s.count,
            min: s.min,
            max: s.max,
          },
        })),
      };
    },
  };
}

export interface Durations {
  readonly server: DurationHistogram;
  readonly client: DurationHistogram;
  /** For the metric reader (`metricProducers`). */
  readonly producer: MetricProducer;
}

export function createDurations(
  resource: Resource,
  scope: { name: string; version: string },
  upstream: { address: string; port: number },
): Durations {
  const transport = { 'network.protocol.name': 'http', 'network.transport': 'tcp' };
  const server = createHistogram(
    'mcp.server.operation.duration',
    'MCP request duration as observed on the receiver (the proxy, for its callers)',
    transport,
  );
  const client = createHistogram(
    'mcp.client.operation.duration',
    'MCP request duration as observed on the sender (the proxy, towards its upstream)',
    { ...transport, 'server.address': upstream.address, 'server.port': upstream.port },
  );
  return {
    server,
    client,
    producer: {
      collect(): Promise<CollectionResult> {
        const now = hrTime();
        const metrics = [server.collect(now), client.collect(now)].filter((m) => m !== undefined);
        return Promise.resolve({ resourceMetrics: { resource, scopeMetrics: [{ scope, metrics }] }, errors: [] });
      },
    },
  };
}
