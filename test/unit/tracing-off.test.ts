import { describe, expect, it } from 'vitest';
import { TELEMETRY_OFF } from '../../src/observability/otel-settings.js';
import { createTracing, NO_TRACING } from '../../src/observability/tracing.js';
import { createFingerprint } from '../../src/session/ids.js';
import type { UpstreamClient } from '../../src/upstream/client.js';

describe('tracing off (no exporter configured)', () => {
  const tracing = createTracing({
    settings: TELEMETRY_OFF,
    fingerprint: createFingerprint(),
    upstreamUrl: new URL('http://127.0.0.1:1/mcp'),
    serviceVersion: 'test',
  });

  it('is the no-op implementation, chosen once at startup', () => {
    expect(tracing).toBe(NO_TRACING);
    expect(tracing.on).toBe(false);
  });

  it('leaves the upstream client as it is (no wrapper, no span, no header)', () => {
    const upstream = {} as UpstreamClient;
    expect(tracing.client(upstream)).toBe(upstream);
  });

  it('runs flows and steps directly', async () => {
    expect(tracing.serve({} as never, {} as never, {} as never, undefined, () => 42)).toBe(42);
    await expect(tracing.step('replay initialize', {}, {}, async () => 'done')).resolves.toBe('done');
  });
});
