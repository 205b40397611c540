import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  askIdOf,
  clientResponseOf,
  inputRoundOf,
  isInputRequired,
  missingCapabilityOf,
  retryIdOf,
  retryParams,
} from '../../src/mcp/hosted-input.js';
import { HostedSession } from '../../src/flows/hosted/hosted-session.js';

describe('input_required for a held 2025 client: the plan', () => {
  it('reads the questions of an input_required result, in order, with their keys', () => {
    const result = {
      resultType: 'input_required',
      inputRequests: {
        a: { method: 'elicitation/create', params: { message: 'a?' } },
        b: { method: 'sampling/createMessage', params: { messages: [], maxTokens: 1 } },
        c: { method: 'roots/list' },
      },
      requestState: 'opaque "state" é',
    };
    expect(isInputRequired(result)).toBe(true);
    expect(inputRoundOf(result)).toEqual({
      kind: 'ask',
      asks: [
        { key: 'a', method: 'elicitation/create', params: { message: 'a?' } },
        { key: 'b', method: 'sampling/createMessage', params: { messages: [], maxTokens: 1 } },
        { key: 'c', method: 'roots/list', params: undefined },
      ],
      requestState: 'opaque "state" é',
    });
    // State only: nothing to ask, the request goes again with its state.
    expect(inputRoundOf({ resultType: 'input_required', requestState: 's' })).toEqual({ kind: 'ask', asks: [], requestState: 's' });
  });

  it('refuses what it cannot ask: unknown methods, malformed entries, nothing at all', () => {
    for (const result of [
      { resultType: 'input_required' },
      { resultType: 'input_required', inputRequests: { x: { method: 'tools/call' } } },
      { resultType: 'input_required', inputRequests: { x: 'elicitation/create' } },
      { resultType: 'input_required', inputRequests: { x: { method: 'roots/list', params: [1] } } },
      { resultType: 'input_required', inputRequests: [], requestState: 's' },
      { resultType: 'input_required', inputRequests: {}, requestState: 3 },
    ]) {
      expect(inputRoundOf(result).kind).toBe('invalid');
    }
  });

  it('asks only what the client declared', () => {
    const asks = [
      { key: 'a', method: 'roots/list', params: undefined },
      { key: 'b', method: 'elicitation/create', params: {} },
    ];
    expect(missingCapabilityOf(asks, { roots: {}, elicitation: {} })).toBeUndefined();
    expect(missingCapabilityOf(asks, { roots: { listChanged: true } })).toBe('elicitation');
    expect(missingCapabilityOf(asks, { elicitation: {}, roots: true })).toBe('roots');
  });

  it('retries with the original params, the answers and the state as received', () => {
    expect(
      retryParams(
        { name: 't', arguments: { x: 1 }, inputResponses: { old: {} }, requestState: 'old', _meta: { progressToken: 3 } },
        { a: { action: 'accept' } },
        'new',
      ),
    ).toEqual({
      name: 't',
      arguments: { x: 1 },
      _meta: { progressToken: 3 },
      inputResponses: { a: { action: 'accept' } },
      requestState: 'new',
    });
    expect(retryParams(undefined, {}, undefined)).toEqual({ inputResponses: {} });
  });

  it('keeps any requestState byte for byte through the retry body', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.jsonValue(), (state, args) => {
        const text = JSON.stringify({ params: retryParams({ name: 'x', arguments: args }, {}, state) });
        expect((JSON.parse(text) as { params: { requestState: string } }).params.requestState).toBe(state);
      }),
    );
  });

  it('never throws on any result, and reads only string-id responses as answers', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        if (typeof value === 'object' && value !== null && !Array.isArray(value)) inputRoundOf(value as Record<string, unknown>);
        clientResponseOf(value);
        isInputRequired(value);
      }),
    );
    expect(clientResponseOf({ jsonrpc: '2.0', id: 'q', result: { roots: [] } })).toEqual({ id: 'q', result: { roots: [] } });
    expect(clientResponseOf({ jsonrpc: '2.0', id: 'q', error: { code: 'x' } })).toEqual({
      id: 'q',
      error: { code: -32603, message: 'error' },
    });
    expect(clientResponseOf({ jsonrpc: '2.0', id: 1, result: {} })).toBeUndefined();
    expect(clientResponseOf({ jsonrpc: '2.0', id: 'q', method: 'ping' })).toBeUndefined();
    expect(retryIdOf(7, 2)).not.toBe(retryIdOf(7, 3));
  });

  it('gives each question of a session its own id, and delivers an answer once', () => {
    const session = new HostedSession({ clientInfo: {}, capabilities: {} }, '2025-11-25');
    const got: unknown[] = [];
    const first = session.ask((r) => got.push(r));
    const second = session.ask((r) => got.push(r));
    expect(first).toBe(askIdOf(1));
    expect(second).not.toBe(first);
    expect(session.answer(first, 'one')).toBe(true);
    expect(session.answer(first, 'again')).toBe(false);
    session.forget(second);
    expect(session.answer(second, 'late')).toBe(false);
    expect(got).toEqual(['one']);
    expect(session.waitingCount).toBe(0);
  });
});
