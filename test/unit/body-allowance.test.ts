import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_BODY_ALLOWANCE_MS,
  DEFAULT_BODY_LIMIT_BYTES,
  DEFAULT_BODY_MIN_RATE_BYTES_PER_S,
  DEFAULT_BODY_TIMEOUT_MS,
} from '../../src/config.js';
import { remainingAllowanceMs, type BodyLimits } from '../../src/http/request-body.js';

const DEFAULTS: BodyLimits = {
  limitBytes: DEFAULT_BODY_LIMIT_BYTES,
  pauseMs: DEFAULT_BODY_TIMEOUT_MS,
  allowanceMs: DEFAULT_BODY_ALLOWANCE_MS,
  minRateBytesPerS: DEFAULT_BODY_MIN_RATE_BYTES_PER_S,
};

describe('the whole-body allowance (mod_reqtimeout body=…,MinRate=…)', () => {
  it('the defaults pass a 4 MiB body over a slow mobile link (2G EDGE, about 12 KB/s)', () => {
    const bytes = 4 * 1024 * 1024;
    const seconds = bytes / 12_000;
    expect(remainingAllowanceMs(DEFAULTS, bytes, seconds * 1000)).toBeGreaterThan(0);
  });

  it('the defaults refuse a byte every two seconds within a minute', () => {
    // After n bytes, 2n seconds have passed.
    const refusedAt = Array.from({ length: 100 }, (_, n) => n).find((n) => remainingAllowanceMs(DEFAULTS, n, n * 2000) <= 0);
    expect(refusedAt).toBeDefined();
    expect(refusedAt! * 2).toBeLessThanOrEqual(60);
  });

  it('a body that keeps at or above the minimum rate never runs out (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 0, max: 4 * 1024 * 1024 }), (rate, bytes) => {
        const limits = { ...DEFAULTS, minRateBytesPerS: rate };
        // Arriving at exactly the minimum rate, after the initial allowance was used up waiting.
        expect(remainingAllowanceMs(limits, bytes, limits.allowanceMs + (bytes * 1000) / rate)).toBeGreaterThanOrEqual(-1e-6);
      }),
    );
  });
});
