import { TraceFlags } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { formatTraceparent, isSampled, newIds, parseTraceparent } from '../../src/observability/trace-context.js';

describe('trace context as the proxy carries it', () => {
  it('new ids are a 32-digit trace id and a 16-digit span id, lower-case hex, never repeated across pool refills', () => {
    const seen = new Set<string>();
    // 256 ids per pooled buffer: go through several refills.
    for (let i = 0; i < 1000; i++) {
      const { traceId, spanId } = newIds();
      expect(traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(spanId).toMatch(/^[0-9a-f]{16}$/);
      seen.add(traceId);
    }
    expect(seen.size).toBe(1000);
  });

  it('a traceparent made from new ids parses back to them; the sampled flag is read from one character', () => {
    const { traceId, spanId } = newIds();
    for (const traceFlags of [TraceFlags.NONE, TraceFlags.SAMPLED]) {
      const value = formatTraceparent({ traceId, spanId, traceFlags });
      expect(parseTraceparent(value)).toEqual({ traceId, spanId, traceFlags, isRemote: true });
      expect(isSampled(value)).toBe(traceFlags === TraceFlags.SAMPLED);
    }
  });
});
