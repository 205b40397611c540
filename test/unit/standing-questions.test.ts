/**
 * Questions on a legacy session's standing stream (mcp/standing-questions.ts): which in-flight call
 * a question belongs to, and a call's place on the stream (flows/pooled/mrtr/standing.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { INPUT_REQUEST_CAPABILITY } from '../../src/mcp/input-required.js';
import { attributeQuestion, overCallRefusal, unattributedRefusal, type Asker } from '../../src/mcp/standing-questions.js';
import { StandingCall } from '../../src/flows/pooled/mrtr/standing.js';
import type { NotificationFeed } from '../../src/flows/pooled/listen/feed.js';

const METHODS = Object.keys(INPUT_REQUEST_CAPABILITY);
const capabilityValue = fc.oneof(fc.constant({}), fc.constant({ listChanged: true }), fc.constant(null), fc.constant(true), fc.string());
const capabilities = fc.option(
  fc.record(
    { elicitation: capabilityValue, sampling: capabilityValue, roots: capabilityValue, experimental: capabilityValue },
    { requiredKeys: [] },
  ),
  { nil: undefined },
);
const asker = capabilities.map((c): Asker & { n?: number } => ({ clientCapabilities: c }));

describe('attributing a question on the standing stream', () => {
  it('goes to the one call that declared the capability (or the only call); refuses none as no_caller and several as ambiguous', () => {
    fc.assert(
      fc.property(fc.constantFrom(...METHODS), fc.array(asker, { maxLength: 6 }), (method, askers) => {
        const capability = INPUT_REQUEST_CAPABILITY[method]!;
        const able = askers.filter(
          (a) => typeof a.clientCapabilities?.[capability] === 'object' && a.clientCapabilities[capability] !== null,
        );
        const attribution = attributeQuestion(method, askers);
        if (able.length === 1) expect(attribution).toEqual({ kind: 'deliver', to: able[0] });
        else if (able.length === 0 && askers.length === 1) expect(attribution).toEqual({ kind: 'deliver', to: askers[0] });
        else expect(attribution).toEqual({ kind: 'refuse', reason: able.length === 0 ? 'no_caller' : 'ambiguous', capability });
      }),
    );
  });

  it('gives a question nobody declared to the only call (it fails there with -32021), and refuses it among several', () => {
    const lone = { clientCapabilities: { elicitation: {} } };
    expect(attributeQuestion('sampling/createMessage', [lone])).toEqual({ kind: 'deliver', to: lone });
    expect(attributeQuestion('sampling/createMessage', [lone, { clientCapabilities: { roots: {} } }])).toEqual({
      kind: 'refuse',
      reason: 'no_caller',
      capability: 'sampling',
    });
    expect(attributeQuestion('sampling/createMessage', [])).toEqual({ kind: 'refuse', reason: 'no_caller', capability: 'sampling' });
    const roots = { clientCapabilities: { roots: { listChanged: true } } };
    expect(attributeQuestion('roots/list', [{ clientCapabilities: { sampling: {} } }, roots])).toEqual({ kind: 'deliver', to: roots });
  });

  it('answers the upstream with a JSON-RPC error for its request id', () => {
    const noCaller = JSON.parse(
      unattributedRefusal(7, 'elicitation/create', { kind: 'refuse', reason: 'no_caller', capability: 'elicitation' }),
    );
    expect(noCaller).toEqual({
      jsonrpc: '2.0',
      id: 7,
      error: { code: -32601, message: 'elicitation/create is not available: the client did not declare elicitation' },
    });
    const ambiguous = JSON.parse(unattributedRefusal('s', 'roots/list', { kind: 'refuse', reason: 'ambiguous', capability: 'roots' }));
    expect(ambiguous).toMatchObject({ id: 's', error: { code: -32601, message: expect.stringContaining('relatedRequestId') } });
    expect(JSON.parse(overCallRefusal(3, 'roots/list'))).toMatchObject({ id: 3, error: { code: -32000 } });
  });
});

describe("a call's place on the standing stream", () => {
  function harness() {
    const releases: StandingCall[] = [];
    const feed = { release: (call: StandingCall) => void releases.push(call) } as unknown as NotificationFeed;
    const refused: unknown[] = [];
    const call = new StandingCall({ elicitation: {} }, feed, (id) => void refused.push(id));
    const taken: unknown[] = [];
    return { call, releases, refused, taken, sink: (id: unknown) => void taken.push(id) };
  }

  it('keeps questions that come before its exchange, in order, and hands them over when it attaches', () => {
    const { call, taken, sink } = harness();
    call.ask(1, 'elicitation/create', {});
    call.ask(2, 'elicitation/create', {});
    expect(taken).toEqual([]);
    call.attach(sink);
    expect(taken).toEqual([1, 2]);
    call.ask(3, 'elicitation/create', {});
    expect(taken).toEqual([1, 2, 3]);
  });

  it('on release leaves the feed once, refuses what never found its exchange, and refuses what comes after', () => {
    const { call, releases, refused, taken, sink } = harness();
    call.ask(1, 'elicitation/create', {});
    call.release();
    call.release();
    expect(releases).toEqual([call]);
    expect(refused).toEqual([1]);
    call.attach(sink);
    call.ask(2, 'elicitation/create', {});
    expect(taken).toEqual([]);
    expect(refused).toEqual([1, 2]);
  });
});
