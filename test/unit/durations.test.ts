/**
 * The OTLP duration histograms (observability/durations.ts): series per method, version and error
 * type, bounded: method names and versions come from clients.
 */
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { HistogramMetricData } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { createDurations } from '../../src/observability/durations.js';

const durations = () => createDurations(resourceFromAttributes({}), { name: 'test', version: '1' }, { address: '127.0.0.1', port: 1 });

async function serverPoints(d: ReturnType<typeof durations>) {
  const { resourceMetrics } = await d.producer.collect();
  const metric = resourceMetrics.scopeMetrics[0]!.metrics.find((m) => m.descriptor.name === 'mcp.server.operation.duration');
  return (metric as HistogramMetricData).dataPoints;
}

describe('duration histograms', () => {
  it('count each series apart, buckets and all', async () => {
    const d = durations();
    d.server.record(0.004, 'tools/call', '2025-11-25', undefined);
    d.server.record(0.3, 'tools/call', '2025-11-25', undefined);
    d.server.record(0.01, 'tools/call', '2025-11-25', 'tool_error');
    const points = await serverPoints(d);
    expect(points).toHaveLength(2);
    const ok = points.find((p) => p.attributes['error.type'] === undefined)!;
    expect(ok.attributes).toMatchObject({ 'mcp.method.name': 'tools/call', 'mcp.protocol.version': '2025-11-25' });
    expect(ok.value).toMatchObject({ count: 2, min: 0.004, max: 0.3 });
  });

  it('stop making series at the bound: every further value goes to the one overflow series', async () => {
    const d = durations();
    for (let i = 0; i < 2500; i++) d.server.record(0.001, `garbage/${i}`, `v${i}`, undefined);
    const points = await serverPoints(d);
    expect(points).toHaveLength(2001);
    const overflow = points.filter((p) => p.attributes['otel.metric.overflow'] === true);
    expect(overflow).toHaveLength(1);
    expect(overflow[0]!.value.count).toBe(500);
    // Known series still count as themselves past the bound.
    d.server.record(0.001, 'garbage/0', 'v0', undefined);
    expect((await serverPoints(d)).find((p) => p.attributes['mcp.method.name'] === 'garbage/0')!.value.count).toBe(2);
  });
});
