import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Cancellation } from '../../src/upstream/client.js';
import { cancelledRequestIdOf, InFlightRequests } from '../../src/flows/hosted/in-flight.js';

describe("a held session's requests in flight", () => {
  it('cancels-the-request-named: its signal aborts and it counts as cancelled; others run on', () => {
    const inFlight = new InFlightRequests();
    const a = inFlight.begin(1, new Cancellation());
    const b = inFlight.begin('b', new Cancellation());
    expect(inFlight.cancel(1)).toBe(true);
    expect(a.request.signal.aborted).toBe(true);
    expect(a.request.cancelled).toBe(true);
    expect(b.request.signal.aborted).toBe(false);
    expect(b.request.cancelled).toBe(false);
  });

  it('matches-ids-exactly: 1 and "1" are different requests', () => {
    const inFlight = new InFlightRequests();
    const number = inFlight.begin(1, new Cancellation());
    const string = inFlight.begin('1', new Cancellation());
    expect(inFlight.cancel('1')).toBe(true);
    expect(string.request.cancelled).toBe(true);
    expect(number.request.cancelled).toBe(false);
    expect(inFlight.cancel(2)).toBe(false);
    expect(inFlight.cancel('01')).toBe(false);
    expect(number.request.cancelled).toBe(false);
  });

  it('cancels-everything-in-flight-when-the-session-ends, and nothing that had ended', () => {
    const inFlight = new InFlightRequests();
    const done = inFlight.begin(0, new Cancellation());
    done.end();
    const running = [inFlight.begin(1, new Cancellation()), inFlight.begin('1', new Cancellation()), inFlight.begin(1, new Cancellation())];
    inFlight.cancelAll();
    expect(running.map((r) => [r.request.signal.aborted, r.request.cancelled])).toEqual([
      [true, true],
      [true, true],
      [true, true],
    ]);
    expect(done.request.signal.aborted).toBe(false);
    for (const r of running) r.end();
    expect(inFlight.size).toBe(0);
  });

  it('ignores-finished-requests: an ended request leaves no entry, and a late cancel finds nothing', () => {
    const inFlight = new InFlightRequests();
    const a = inFlight.begin(7, new Cancellation());
    a.end();
    a.end();
    expect(inFlight.size).toBe(0);
    expect(inFlight.cancel(7)).toBe(false);
    expect(a.request.signal.aborted).toBe(false);
  });

  it('a-client-leaving-aborts-without-cancelling: the signal fires, the request does not count as cancelled', () => {
    const inFlight = new InFlightRequests();
    const gone = new Cancellation();
    const a = inFlight.begin(1, gone);
    gone.cancel();
    expect(a.request.signal.aborted).toBe(true);
    expect(a.request.cancelled).toBe(false);
    // A cancel after the client left changes nothing: the request was over for it already.
    inFlight.cancel(1);
    expect(a.request.cancelled).toBe(false);
    // Gone before it began: aborted from the start.
    const left = new Cancellation();
    left.cancel();
    expect(inFlight.begin(2, left).request.signal.aborted).toBe(true);
  });

  it('a-reused-id-cancels-each-request-with-it, and each one ends on its own', () => {
    const inFlight = new InFlightRequests();
    const first = inFlight.begin(3, new Cancellation());
    const second = inFlight.begin(3, new Cancellation());
    expect(inFlight.size).toBe(2);
    first.end();
    expect(inFlight.size).toBe(1);
    expect(inFlight.cancel(3)).toBe(true);
    expect(first.request.cancelled).toBe(false);
    expect(second.request.cancelled).toBe(true);
    second.end();
    expect(inFlight.size).toBe(0);
  });

  it('holds-only-what-is-in-flight: any order of begin, end and cancel leaves exactly the unended requests', () => {
    const id = fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constantFrom('0', '1', 'a'));
    const step = fc.oneof(
      fc.record({ op: fc.constant('begin' as const), id }),
      fc.record({ op: fc.constant('end' as const), at: fc.nat() }),
      fc.record({ op: fc.constant('cancel' as const), id }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const inFlight = new InFlightRequests();
        const open: { id: string | number; handle: ReturnType<InFlightRequests['begin']> }[] = [];
        for (const s of steps) {
          if (s.op === 'begin') open.push({ id: s.id, handle: inFlight.begin(s.id, new Cancellation()) });
          else if (s.op === 'end' && open.length > 0) open.splice(s.at % open.length, 1)[0]!.handle.end();
          else if (s.op === 'cancel') {
            const named = open.filter((o) => o.id === s.id);
            expect(inFlight.cancel(s.id)).toBe(named.length > 0);
            for (const o of named) expect(o.handle.request.cancelled).toBe(true);
          }
          expect(inFlight.size).toBe(open.length);
        }
      }),
    );
  });
});

describe('the request a notifications/cancelled names', () => {
  it('reads-a-json-rpc-id-as-sent: strings and numbers, nothing else', () => {
    expect(cancelledRequestIdOf({ requestId: 1, reason: 'x' })).toBe(1);
    expect(cancelledRequestIdOf({ requestId: '1' })).toBe('1');
    expect(cancelledRequestIdOf({ requestId: '' })).toBe('');
    for (const params of [
      undefined,
      null,
      'x',
      [],
      {},
      { requestId: null },
      { requestId: true },
      { requestId: { id: 1 } },
      { requestId: [1] },
      { requestId: Number.NaN },
    ]) {
      expect(cancelledRequestIdOf(params)).toBeUndefined();
    }
  });
});
