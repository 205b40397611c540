/** The parked-exchange registry (flows/pooled/mrtr/parked.ts) with a fake clock: no waiting. */
import { describe, expect, it } from 'vitest';
import { createParkedExchanges, type ParkEndReason, type Schedule } from '../../src/flows/pooled/mrtr/parked.js';

function fakeClock() {
  let now = 0;
  const timers: { at: number; run: () => void; live: boolean }[] = [];
  const schedule: Schedule = (run, ms) => {
    const timer = { at: now + ms, run, live: true };
    timers.push(timer);
    return () => void (timer.live = false);
  };
  const advance = (ms: number) => {
    now += ms;
    for (const t of timers) {
      if (t.live && t.at <= now) {
        t.live = false;
        t.run();
      }
    }
  };
  return { schedule, advance, live: () => timers.filter((t) => t.live).length };
}

class FakeExchange {
  readonly ended: ParkEndReason[] = [];
  end(reason: ParkEndReason) {
    this.ended.push(reason);
  }
}

describe('parked exchanges', () => {
  it('hands a parked exchange to the retry that names its handle and round, once', () => {
    const clock = fakeClock();
    const parked = createParkedExchanges<FakeExchange>({ max: 10, timeoutMs: 1000, schedule: clock.schedule });
    const exchange = new FakeExchange();
    const handle = parked.park(exchange, 1)!;
    expect(parked.stateOf(handle)).toBe('parked');
    expect(parked.claim(handle, 2)).toBeUndefined();
    expect(parked.claim('unknown', 1)).toBeUndefined();
    expect(parked.claim(handle, 1)).toBe(exchange);
    expect(parked.claim(handle, 1)).toBeUndefined();
    expect(parked.size).toBe(0);
    // Claimed: its deadline no longer applies.
    expect(clock.live()).toBe(0);
    clock.advance(5000);
    expect(exchange.ended).toEqual([]);
  });

  it('re-parks a claimed exchange under its handle at the next round', () => {
    const clock = fakeClock();
    const parked = createParkedExchanges<FakeExchange>({ max: 10, timeoutMs: 1000, schedule: clock.schedule });
    const exchange = new FakeExchange();
    const handle = parked.park(exchange, 1)!;
    parked.claim(handle, 1);
    expect(parked.park(exchange, 2, handle)).toBe(handle);
    expect(parked.claim(handle, 1)).toBeUndefined();
    expect(parked.claim(handle, 2)).toBe(exchange);
  });

  it('ends an exchange nobody claims when its deadline passes, exactly once', () => {
    const clock = fakeClock();
    const parked = createParkedExchanges<FakeExchange>({ max: 10, timeoutMs: 1000, schedule: clock.schedule });
    const exchange = new FakeExchange();
    const handle = parked.park(exchange, 1)!;
    clock.advance(999);
    expect(exchange.ended).toEqual([]);
    clock.advance(1);
    expect(exchange.ended).toEqual(['timeout']);
    expect(parked.claim(handle, 1)).toBeUndefined();
    parked.closed(handle);
    parked.clear();
    expect(exchange.ended).toEqual(['timeout']);
  });

  it('refuses to park beyond its bound, and takes more once one left', () => {
    const clock = fakeClock();
    const parked = createParkedExchanges<FakeExchange>({ max: 2, timeoutMs: 1000, schedule: clock.schedule });
    const a = parked.park(new FakeExchange(), 1)!;
    parked.park(new FakeExchange(), 1);
    expect(parked.park(new FakeExchange(), 1)).toBeUndefined();
    parked.claim(a, 1);
    expect(parked.park(new FakeExchange(), 1)).toBeDefined();
    const none = createParkedExchanges<FakeExchange>({ max: 0, timeoutMs: 1000, schedule: clock.schedule });
    expect(none.park(new FakeExchange(), 1)).toBeUndefined();
  });

  it('ends an exchange the upstream closed, and every exchange at shutdown', () => {
    const clock = fakeClock();
    const parked = createParkedExchanges<FakeExchange>({ max: 10, timeoutMs: 1000, schedule: clock.schedule });
    const closed = new FakeExchange();
    const others = [new FakeExchange(), new FakeExchange()];
    const handle = parked.park(closed, 1)!;
    for (const o of others) parked.park(o, 1);
    parked.closed(handle);
    expect(closed.ended).toEqual(['upstream-closed']);
    parked.clear();
    expect(others.map((o) => o.ended)).toEqual([['shutdown'], ['shutdown']]);
    expect(parked.size).toBe(0);
    expect(clock.live()).toBe(0);
  });
});
