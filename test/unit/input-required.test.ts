import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  answerFor,
  canonicalJson,
  digestOf,
  INPUT_KEY_META,
  inputRequiredResult,
  NO_KNOWLEDGE,
  nextKnowledge,
  questionOf,
  readRetryParams,
  requestDigestOf,
  undeclaredCapability,
  withoutKeyHint,
} from '../../src/mcp/input-required.js';

const ELICIT = { message: 'What is your name?', requestedSchema: { type: 'object', properties: { name: { type: 'string' } } } };

describe('input-required-keys: the inputRequests key of a legacy server request', () => {
  it('is the server-named key when the hint is usable, and the hint never reaches the client', () => {
    const q = questionOf('elicitation/create', { ...ELICIT, _meta: { [INPUT_KEY_META]: 'user_name' } }, new Set());
    expect(q.key).toBe('user_name');
    expect(q.params).toEqual(ELICIT);
    const kept = questionOf('elicitation/create', { ...ELICIT, _meta: { [INPUT_KEY_META]: 'k', other: 1 } }, new Set());
    expect(kept.params).toEqual({ ...ELICIT, _meta: { other: 1 } });
  });

  it('is derived from method and params otherwise: the same question gets the same key on every run', () => {
    const a = questionOf('elicitation/create', ELICIT, new Set());
    const b = questionOf('elicitation/create', JSON.parse(JSON.stringify(ELICIT)), new Set());
    expect(a.key).toMatch(/^elicitation-[A-Za-z0-9_-]{12}$/);
    expect(b.key).toBe(a.key);
    expect(questionOf('elicitation/create', { ...ELICIT, message: 'Other?' }, new Set()).key).not.toBe(a.key);
    expect(questionOf('roots/list', undefined, new Set()).key).toMatch(/^roots-/);
  });

  it('falls back to a derived key for a hint that is not a plain short key', () => {
    for (const hint of ['', 'has space', 'x'.repeat(65), 42, { a: 1 }]) {
      expect(questionOf('sampling/createMessage', { _meta: { [INPUT_KEY_META]: hint } }, new Set()).key).toMatch(/^sampling-/);
    }
  });

  it('numbers a key already taken in this run', () => {
    const first = questionOf('roots/list', {}, new Set());
    expect(questionOf('roots/list', {}, new Set([first.key])).key).toBe(`${first.key}-2`);
    expect(questionOf('roots/list', {}, new Set([first.key, `${first.key}-2`])).key).toBe(`${first.key}-3`);
  });
});

describe('input-required-matching: answering a question from what the client said', () => {
  const q = questionOf('elicitation/create', ELICIT, new Set());
  const answer = { action: 'accept', content: { name: 'Alice' } };

  it('takes this round’s response under the key', () => {
    expect(answerFor(q, { ...NO_KNOWLEDGE, responses: { [q.key]: answer } })).toEqual(answer);
    expect(answerFor(q, { ...NO_KNOWLEDGE, responses: { other: answer } })).toBeUndefined();
  });

  it('takes an earlier answer only for the same question', () => {
    expect(answerFor(q, { asked: { [q.key]: q.digest }, answers: { [q.key]: answer }, responses: {} })).toEqual(answer);
    expect(
      answerFor(q, { asked: { [q.key]: 'another-question' }, answers: { [q.key]: answer }, responses: { [q.key]: answer } }),
    ).toBeUndefined();
    // An answer to a key never asked is not trusted from the state.
    expect(answerFor(q, { asked: {}, answers: { [q.key]: answer }, responses: {} })).toBeUndefined();
  });

  it('carries every question asked and every answer given to the next round', () => {
    const next = nextKnowledge({ asked: { old: 'd1' }, answers: { old: { a: 1 } }, responses: { old: { a: 2 }, stray: { b: 1 } } }, [q]);
    expect(next.asked).toEqual({ old: 'd1', [q.key]: q.digest });
    expect(next.answers).toEqual({ old: { a: 2 } });
  });
});

describe('input-required-retry-params: reading inputResponses and requestState', () => {
  it('splits them off the params for the upstream', () => {
    const read = readRetryParams({ name: 't', arguments: {}, inputResponses: { k: { action: 'decline' } }, requestState: 's' });
    expect(read).toEqual({ kind: 'ok', params: { name: 't', arguments: {} }, responses: { k: { action: 'decline' } }, requestState: 's' });
    const plain = { name: 't' };
    expect(readRetryParams(plain)).toEqual({ kind: 'ok', params: plain, responses: {}, requestState: undefined });
  });

  it('refuses responses that are not result objects, and a state that is not a string', () => {
    for (const inputResponses of [null, 12, [], 'x', { k: 12345 }, { k: null }, { k: [] }]) {
      expect(readRetryParams({ inputResponses })).toEqual({ kind: 'invalid', field: 'inputResponses' });
    }
    for (const requestState of [null, 42, {}, 'x'.repeat(300 * 1024)]) {
      expect(readRetryParams({ requestState })).toEqual({ kind: 'invalid', field: 'requestState' });
    }
  });

  it('binds a state to method and params, whatever the per-request _meta', () => {
    const a = requestDigestOf('tools/call', { name: 't', arguments: { x: 1 }, _meta: { progressToken: 1 } });
    expect(requestDigestOf('tools/call', { arguments: { x: 1 }, name: 't', _meta: { progressToken: 2 } })).toBe(a);
    expect(requestDigestOf('tools/call', { name: 't', arguments: { x: 2 } })).not.toBe(a);
    expect(requestDigestOf('prompts/get', { name: 't', arguments: { x: 1 } })).not.toBe(a);
  });
});

describe('input-required-result: the 2026-07-28 shape', () => {
  it('has resultType, one inputRequest per question, the state and the server identity', () => {
    const q = questionOf('roots/list', { _meta: { [INPUT_KEY_META]: 'client_roots' } }, new Set());
    expect(inputRequiredResult([q], 'state', { name: 'up', version: '1' }, 'io.modelcontextprotocol/serverInfo')).toEqual({
      resultType: 'input_required',
      inputRequests: { client_roots: { method: 'roots/list', params: {} } },
      requestState: 'state',
      _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'up', version: '1' } },
    });
  });
});

describe('undeclared-capability: what a question needs that the client did not declare', () => {
  it('names the capability of each kind of question, unless the client declared it with an object', () => {
    expect(undeclaredCapability('sampling/createMessage', {})).toBe('sampling');
    expect(undeclaredCapability('elicitation/create', { sampling: {} })).toBe('elicitation');
    expect(undeclaredCapability('roots/list', { roots: { listChanged: true } })).toBeUndefined();
    expect(undeclaredCapability('elicitation/create', { elicitation: { form: {} } })).toBeUndefined();
    // A declaration is an object: true, null or an array declares nothing.
    for (const declared of [true, null, [], 'yes']) expect(undeclaredCapability('roots/list', { roots: declared })).toBe('roots');
  });

  it('asks nothing of a request no capability governs (ping, an unknown method), nor of an inherited member', () => {
    expect(undeclaredCapability('ping', {})).toBeUndefined();
    expect(undeclaredCapability('tools/call', {})).toBeUndefined();
    expect(undeclaredCapability('toString', {})).toBeUndefined();
    expect(undeclaredCapability('__proto__', {})).toBeUndefined();
  });

  it('never throws, and names a capability exactly when the question is one and it is not declared as an object', () => {
    const method = fc.oneof(
      fc.constantFrom('sampling/createMessage', 'elicitation/create', 'roots/list', 'ping', 'constructor'),
      fc.string(),
    );
    const declared = fc.dictionary(fc.constantFrom('sampling', 'elicitation', 'roots', 'other', '__proto__'), fc.anything());
    fc.assert(
      fc.property(method, declared, (m, d) => {
        const missing = undeclaredCapability(m, d);
        const kinds: Record<string, string> = {
          'sampling/createMessage': 'sampling',
          'elicitation/create': 'elicitation',
          'roots/list': 'roots',
        };
        const needed = Object.hasOwn(kinds, m) ? kinds[m] : undefined;
        const objectDeclared =
          needed !== undefined &&
          Object.hasOwn(d, needed) &&
          typeof d[needed] === 'object' &&
          d[needed] !== null &&
          !Array.isArray(d[needed]);
        expect(missing).toBe(needed === undefined || objectDeclared ? undefined : needed);
      }),
    );
  });
});

describe('input-required-never-throws: any input', () => {
  it('canonical JSON ignores key order, and nothing throws on garbage', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(obj));
        expect(digestOf('m', reversed)).toBe(digestOf('m', obj));
      }),
    );
    fc.assert(
      fc.property(fc.string(), fc.anything(), fc.anything(), (method, params, retry) => {
        const q = questionOf(method, params, new Set(['x']));
        expect(typeof q.key).toBe('string');
        withoutKeyHint(params);
        const read = readRetryParams(
          typeof retry === 'object' && retry !== null && !Array.isArray(retry)
            ? (retry as Record<string, unknown>)
            : { inputResponses: retry },
        );
        expect(['ok', 'invalid']).toContain(read.kind);
        answerFor(q, NO_KNOWLEDGE);
      }),
    );
  });
});
