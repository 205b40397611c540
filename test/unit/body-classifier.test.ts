import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifyBody, isJsonRpcMessage } from '../../src/mcp/protocol.js';

const initParams = {
  protocolVersion: '2025-06-18',
  capabilities: {},
  clientInfo: { name: 'test-client', version: '1.0.0' },
};

describe('isJsonRpcMessage', () => {
  it('accepts requests, notifications and responses', () => {
    expect(isJsonRpcMessage({ jsonrpc: '2.0', id: 1, method: 'tools/list' })).toBe(true);
    expect(isJsonRpcMessage({ jsonrpc: '2.0', id: 'abc', method: 'tools/call', params: { name: 'x' } })).toBe(true);
    expect(isJsonRpcMessage({ jsonrpc: '2.0', method: 'notifications/initialized' })).toBe(true);
    expect(isJsonRpcMessage({ jsonrpc: '2.0', id: 7, result: {} })).toBe(true);
    expect(isJsonRpcMessage({ jsonrpc: '2.0', id: 7, error: { code: -32601, message: 'Method not found' } })).toBe(true);
    expect(isJsonRpcMessage({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } })).toBe(true);
  });

  it('rejects values that are not JSON-RPC 2.0 messages', () => {
    expect(isJsonRpcMessage(null)).toBe(false);
    expect(isJsonRpcMessage([])).toBe(false);
    expect(isJsonRpcMessage('{"jsonrpc":"2.0"}')).toBe(false);
    expect(isJsonRpcMessage({ id: 1, method: 'ping' })).toBe(false); // no jsonrpc
    expect(isJsonRpcMessage({ jsonrpc: '1.0', id: 1, method: 'ping' })).toBe(false);
    expect(isJsonRpcMessage({ jsonrpc: '2.0', id: 1, method: 42 })).toBe(false);
    expect(isJsonRpcMessage({ jsonrpc: '2.0', id: { n: 1 }, method: 'ping' })).toBe(false);
    expect(isJsonRpcMessage({ jsonrpc: '2.0', id: null, method: 'ping' })).toBe(false);
    expect(isJsonRpcMessage({ jsonrpc: '2.0', id: Number.NaN, method: 'ping' })).toBe(false);
    expect(isJsonRpcMessage({ jsonrpc: '2.0', id: 1, method: 'ping', params: 'x' })).toBe(false);
    expect(isJsonRpcMessage({ jsonrpc: '2.0', id: 1, method: 'ping', params: null })).toBe(false);
    // Responses: exactly one of result / error, and a usable id.
    expect(isJsonRpcMessage({ jsonrpc: '2.0', id: 1 })).toBe(false);
    expect(isJsonRpcMessage({ jsonrpc: '2.0', id: 1, result: {}, error: { code: 1, message: 'x' } })).toBe(false);
    expect(isJsonRpcMessage({ jsonrpc: '2.0', id: null, result: {} })).toBe(false);
    expect(isJsonRpcMessage({ jsonrpc: '2.0', result: {} })).toBe(false);
    expect(isJsonRpcMessage({ jsonrpc: '2.0', id: 1, error: 'boom' })).toBe(false);
    expect(isJsonRpcMessage({ jsonrpc: '2.0', id: 1, error: { code: '-32000', message: 'x' } })).toBe(false);
  });
});

describe('classifyBody', () => {
  it('classifies a lone initialize request, keeping its id and params verbatim', () => {
    const body = { jsonrpc: '2.0', id: 0, method: 'initialize', params: initParams };
    const classified = classifyBody(body);
    expect(classified).toEqual({ kind: 'initialize', id: 0, params: initParams });
    expect(classified.kind === 'initialize' && classified.params).toBe(initParams);
  });

  it('accepts a string id on initialize', () => {
    expect(classifyBody({ jsonrpc: '2.0', id: 'init-1', method: 'initialize', params: initParams })).toMatchObject({
      kind: 'initialize',
      id: 'init-1',
    });
  });

  it('classifies a single request as messages and carries its id', () => {
    expect(classifyBody({ jsonrpc: '2.0', id: 5, method: 'tools/list' })).toEqual({ kind: 'messages', id: 5 });
    expect(classifyBody({ jsonrpc: '2.0', id: 'req-9', method: 'tools/call', params: { name: 'echo' } })).toEqual({
      kind: 'messages',
      id: 'req-9',
    });
  });

  it('classifies a notification as messages without id', () => {
    expect(classifyBody({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } })).toEqual({
      kind: 'messages',
      id: null,
    });
  });

  it("tells the client's lone notifications/initialized apart (it completes the handshake), but not in a batch or with an id", () => {
    expect(classifyBody({ jsonrpc: '2.0', method: 'notifications/initialized' })).toEqual({ kind: 'initialized', id: null });
    expect(classifyBody([{ jsonrpc: '2.0', method: 'notifications/initialized' }])).toEqual({ kind: 'messages', id: null });
    expect(classifyBody({ jsonrpc: '2.0', id: 4, method: 'notifications/initialized' })).toEqual({ kind: 'messages', id: 4 });
  });

  it('classifies responses (a client answering a server request) as messages without id', () => {
    expect(classifyBody({ jsonrpc: '2.0', id: 3, result: { roots: [] } })).toEqual({ kind: 'messages', id: null });
    expect(classifyBody({ jsonrpc: '2.0', id: 3, error: { code: -32601, message: 'nope' } })).toEqual({
      kind: 'messages',
      id: null,
    });
    expect(classifyBody({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } })).toEqual({
      kind: 'messages',
      id: null,
    });
  });

  it('accepts a valid batch as messages, with no single id', () => {
    const batch = [
      { jsonrpc: '2.0', id: 1, method: 'tools/list' },
      { jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1 } },
      { jsonrpc: '2.0', id: 9, result: {} },
    ];
    expect(classifyBody(batch)).toEqual({ kind: 'messages', id: null });
  });

  it('rejects an empty batch', () => {
    expect(classifyBody([])).toEqual({ kind: 'invalid', reason: 'EMPTY_BATCH', id: null });
  });

  it('rejects initialize inside a batch', () => {
    const batch = [
      { jsonrpc: '2.0', id: 1, method: 'initialize', params: initParams },
      { jsonrpc: '2.0', method: 'notifications/initialized' },
    ];
    expect(classifyBody(batch)).toEqual({ kind: 'invalid', reason: 'INITIALIZE_IN_BATCH', id: null });
    // Also when it is not the first element.
    expect(classifyBody([batch[1], batch[0]])).toEqual({ kind: 'invalid', reason: 'INITIALIZE_IN_BATCH', id: null });
  });

  it('rejects a batch that contains a non-message', () => {
    expect(classifyBody([{ jsonrpc: '2.0', id: 1, method: 'ping' }, 42])).toEqual({
      kind: 'invalid',
      reason: 'INVALID_REQUEST',
      id: null,
    });
    expect(
      classifyBody([
        { jsonrpc: '2.0', id: 1, method: 'ping' },
        { id: 2, method: 'ping' },
      ]),
    ).toEqual({
      kind: 'invalid',
      reason: 'INVALID_REQUEST',
      id: null,
    });
    expect(classifyBody([null])).toEqual({ kind: 'invalid', reason: 'INVALID_REQUEST', id: null });
    expect(classifyBody([[]])).toEqual({ kind: 'invalid', reason: 'INVALID_REQUEST', id: null });
  });

  it('judges a batch as invalid before looking for initialize', () => {
    const batch = [{ jsonrpc: '2.0', id: 1, method: 'initialize', params: initParams }, 'junk'];
    expect(classifyBody(batch)).toEqual({ kind: 'invalid', reason: 'INVALID_REQUEST', id: null });
  });

  it('rejects initialize sent as a notification (no id)', () => {
    expect(classifyBody({ jsonrpc: '2.0', method: 'initialize', params: initParams })).toEqual({
      kind: 'invalid',
      reason: 'INVALID_REQUEST',
      id: null,
    });
  });

  it('rejects initialize without a params object, carrying its id back', () => {
    expect(classifyBody({ jsonrpc: '2.0', id: 4, method: 'initialize' })).toEqual({
      kind: 'invalid',
      reason: 'INVALID_REQUEST',
      id: 4,
    });
    expect(classifyBody({ jsonrpc: '2.0', id: 'x', method: 'initialize', params: [] })).toEqual({
      kind: 'invalid',
      reason: 'INVALID_REQUEST',
      id: 'x',
    });
    expect(classifyBody({ jsonrpc: '2.0', id: 4, method: 'initialize', params: null })).toEqual({
      kind: 'invalid',
      reason: 'INVALID_REQUEST',
      id: 4,
    });
  });

  it('reports an unparseable body (undefined) as PARSE_ERROR', () => {
    expect(classifyBody(undefined)).toEqual({ kind: 'invalid', reason: 'PARSE_ERROR', id: null });
  });

  it.each([null, 0, 42, -1.5, true, false, '', 'tools/list', '{"jsonrpc":"2.0"}'])('rejects the scalar %j as INVALID_REQUEST', (body) => {
    expect(classifyBody(body)).toEqual({ kind: 'invalid', reason: 'INVALID_REQUEST', id: null });
  });

  it('carries the id of an invalid single object back for the error reply', () => {
    // Wrong jsonrpc version: still worth answering with the id the client used.
    expect(classifyBody({ jsonrpc: '1.0', id: 12, method: 'ping' })).toEqual({
      kind: 'invalid',
      reason: 'INVALID_REQUEST',
      id: 12,
    });
    expect(classifyBody({ jsonrpc: '2.0', id: 'abc', method: 17 })).toEqual({
      kind: 'invalid',
      reason: 'INVALID_REQUEST',
      id: 'abc',
    });
    // An id that is not a JSON-RPC id is not echoed.
    expect(classifyBody({ jsonrpc: '1.0', id: { nested: true }, method: 'ping' })).toEqual({
      kind: 'invalid',
      reason: 'INVALID_REQUEST',
      id: null,
    });
    expect(classifyBody({ jsonrpc: '2.0', id: true, method: 'ping' })).toEqual({
      kind: 'invalid',
      reason: 'INVALID_REQUEST',
      id: null,
    });
  });
});

describe('classifyBody properties', () => {
  const kinds = ['initialize', 'messages', 'invalid'];

  function checkShape(body: unknown): void {
    const classified = classifyBody(body);
    expect(kinds).toContain(classified.kind);
    if (classified.kind === 'invalid') {
      expect(['PARSE_ERROR', 'INVALID_REQUEST', 'EMPTY_BATCH', 'INITIALIZE_IN_BATCH']).toContain(classified.reason);
    }
    if (classified.id !== null) {
      expect(typeof classified.id === 'string' || (typeof classified.id === 'number' && Number.isFinite(classified.id))).toBe(true);
    }
  }

  it('never throws on arbitrary JSON values and always returns one of the three kinds', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (body) => checkShape(body)),
      { numRuns: 1000 },
    );
  });

  it('never throws on arbitrary JavaScript values', () => {
    fc.assert(
      fc.property(fc.anything(), (body) => checkShape(body)),
      { numRuns: 1000 },
    );
  });

  it('never throws on arbitrary message-shaped objects', () => {
    const messageish = fc.record(
      {
        jsonrpc: fc.constantFrom('2.0', '1.0', 2),
        id: fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.double(), fc.jsonValue()),
        method: fc.oneof(fc.constantFrom('initialize', 'tools/list', 'ping'), fc.jsonValue()),
        params: fc.oneof(fc.object(), fc.jsonValue()),
        result: fc.jsonValue(),
        error: fc.oneof(fc.record({ code: fc.integer(), message: fc.string() }), fc.jsonValue()),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(messageish, fc.array(messageish)), (body) => checkShape(body)),
      { numRuns: 1000 },
    );
  });
});
