import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  hostedJsonAnswer,
  initializeResultOf,
  legacyClientOf,
  negotiatedVersion,
  routingHeadersFor,
  toLegacyMessage,
  toModernRequest,
} from '../../src/mcp/modern-upstream.js';

const SERVER_INFO = 'io.modelcontextprotocol/serverInfo';
const client = legacyClientOf({ protocolVersion: '2025-06-18', capabilities: { sampling: {} }, clientInfo: { name: 'c', version: '1' } });

describe('a legacy client session toward a 2026-07-28 upstream', () => {
  it('negotiates the version the client asked for when the proxy speaks it, else the newest', () => {
    expect(negotiatedVersion('2025-06-18')).toBe('2025-06-18');
    expect(negotiatedVersion('2024-11-05')).toBe('2024-11-05');
    expect(negotiatedVersion('2026-07-28')).toBe('2025-11-25');
    expect(negotiatedVersion(undefined)).toBe('2025-11-25');
    expect(negotiatedVersion(42)).toBe('2025-11-25');
  });

  it('answers initialize from the DiscoverResult', () => {
    const discover = {
      resultType: 'complete',
      supportedVersions: ['2026-07-28'],
      capabilities: { tools: { listChanged: true }, logging: {} },
      instructions: 'be nice',
      ttlMs: 0,
      cacheScope: 'private',
      _meta: { [SERVER_INFO]: { name: 'up', version: '2' } },
    };
    expect(initializeResultOf(discover, '2025-06-18')).toStrictEqual({
      protocolVersion: '2025-06-18',
      capabilities: { tools: { listChanged: true }, logging: {} },
      serverInfo: { name: 'up', version: '2' },
      instructions: 'be nice',
    });
    expect(initializeResultOf({}, '2025-11-25')).toStrictEqual({
      protocolVersion: '2025-11-25',
      capabilities: {},
      serverInfo: { name: 'mcp-session-proxy', version: 'modern-upstream' },
    });
  });

  it("puts the session into each request: envelope in _meta, the client's own _meta kept, routing headers", () => {
    const body = JSON.parse(
      toModernRequest(5, 'tools/call', { name: 'echo', arguments: {}, _meta: { progressToken: 5, traceparent: 't' } }, client, 'info'),
    );
    expect(body).toStrictEqual({
      jsonrpc: '2.0',
      id: 5,
      method: 'tools/call',
      params: {
        name: 'echo',
        arguments: {},
        _meta: {
          progressToken: 5,
          traceparent: 't',
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientInfo': { name: 'c', version: '1' },
          'io.modelcontextprotocol/clientCapabilities': { sampling: {} },
          'io.modelcontextprotocol/logLevel': 'info',
        },
      },
    });
    expect(JSON.parse(toModernRequest('x', 'tools/list', undefined, client, undefined)).params._meta).not.toHaveProperty(
      'io.modelcontextprotocol/logLevel',
    );
    expect(routingHeadersFor('tools/call', { name: 'echo' })).toStrictEqual({
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call',
      'mcp-name': 'echo',
    });
    expect(routingHeadersFor('resources/read', { uri: 'file:///a b' })).toStrictEqual({
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'resources/read',
      'mcp-name': 'file:///a b',
    });
    expect(routingHeadersFor('tools/call', { name: 'héllo' })).toStrictEqual({
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call',
      'mcp-name': `=?base64?${Buffer.from('héllo').toString('base64')}?=`,
    });
    expect(routingHeadersFor('tools/list', { name: 'x' })).toStrictEqual({
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/list',
    });
  });

  it('translates answers back: 2026-only members gone, resource-not-found to -32002, input_required a clear error', () => {
    const result = {
      content: [],
      resultType: 'complete',
      ttlMs: 0,
      cacheScope: 'private',
      _meta: { [SERVER_INFO]: { name: 'up' }, 'x/y': 1 },
    };
    expect(toLegacyMessage({ jsonrpc: '2.0', id: 1, result }, 'tools/call')).toStrictEqual({
      kind: 'forward',
      message: { jsonrpc: '2.0', id: 1, result: { content: [], _meta: { 'x/y': 1 } } },
    });
    const notFound = { jsonrpc: '2.0', id: 2, error: { code: -32602, message: 'Resource not found: a://b', data: { uri: 'a://b' } } };
    expect(toLegacyMessage(notFound, 'resources/read')).toStrictEqual({
      kind: 'forward',
      message: { ...notFound, error: { ...notFound.error, code: -32002 } },
    });
    expect(toLegacyMessage(notFound, 'tools/call')).toStrictEqual({ kind: 'forward', message: notFound });
    const invalid = { jsonrpc: '2.0', id: 2, error: { code: -32602, message: 'bad', data: { uri: 'a://b', why: 'x' } } };
    expect(toLegacyMessage(invalid, 'resources/read')).toStrictEqual({ kind: 'forward', message: invalid });
    expect(
      toLegacyMessage({ jsonrpc: '2.0', id: 3, result: { resultType: 'input_required', inputRequests: {} } }, 'tools/call'),
    ).toMatchObject({
      kind: 'forward',
      message: { id: 3, error: { code: -32603, data: { reason: 'INPUT_REQUIRED_NOT_RELAYED' } } },
    });
    const progress = { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } };
    expect(toLegacyMessage(progress, 'tools/call')).toStrictEqual({ kind: 'forward', message: progress });
  });

  it('never throws, whatever the upstream sends', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom('tools/call', 'resources/read'), (message, method) => {
        const translated = toLegacyMessage(message, method);
        if (translated.kind === 'forward') expect(JSON.parse(JSON.stringify(translated.message))).toBeTypeOf('object');
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (params, init) => {
        expect(() => toModernRequest(1, 'tools/call', params, legacyClientOf(init), undefined)).not.toThrow();
        expect(() => routingHeadersFor('tools/call', params)).not.toThrow();
      }),
    );
  });
});

describe('the common v2 answer rewritten on its text', () => {
  const serverInfo = { 'io.modelcontextprotocol/serverInfo': { name: 'modern "x"', version: '2.0.0' } };
  const objectPath = (text: string) => {
    const translated = toLegacyMessage(JSON.parse(text), 'tools/call');
    return translated.kind === 'forward' ? JSON.stringify(translated.message) : undefined;
  };

  it('gives exactly what the object path gives, with the client id', () => {
    const text = JSON.stringify({
      result: { content: [{ type: 'text', text: 'hi' }], resultType: 'complete', _meta: serverInfo },
      jsonrpc: '2.0',
      id: 7,
    });
    expect(hostedJsonAnswer(text, 7, 7)).toBe('{"result":{"content":[{"type":"text","text":"hi"}]},"jsonrpc":"2.0","id":7}');
    expect(hostedJsonAnswer(text, 7, 'client-1')).toBe(
      '{"result":{"content":[{"type":"text","text":"hi"}]},"jsonrpc":"2.0","id":"client-1"}',
    );
    expect(hostedJsonAnswer(text, 8, 8)).toBeUndefined();
    // What it does not handle goes to the object path.
    for (const other of [
      JSON.stringify({ result: { resultType: 'input_required', inputRequests: {} }, jsonrpc: '2.0', id: 7 }),
      JSON.stringify({ result: { tools: [], resultType: 'complete', ttlMs: 0, cacheScope: 'private' }, jsonrpc: '2.0', id: 7 }),
      JSON.stringify({ error: { code: -32602, message: 'x' }, jsonrpc: '2.0', id: 7 }),
      JSON.stringify({ jsonrpc: '2.0', id: 7, result: { content: [], resultType: 'complete' } }),
      JSON.stringify({ result: { content: [], resultType: 'complete', _meta: { ...serverInfo, other: 1 } }, jsonrpc: '2.0', id: 7 }),
    ]) {
      expect(hostedJsonAnswer(other, 7, 7)).toBeUndefined();
    }
  });

  it('agrees with the object path on any content, meta and id (property)', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string(), fc.jsonValue()),
        fc.option(fc.record({ name: fc.string(), version: fc.string() }), { nil: undefined }),
        fc.oneof(fc.integer(), fc.string()),
        fc.oneof(fc.integer(), fc.string()),
        (members, info, upstreamId, clientId) => {
          const result: Record<string, unknown> = { ...members, resultType: 'complete' };
          if (info !== undefined) result._meta = { 'io.modelcontextprotocol/serverInfo': info };
          const text = JSON.stringify({ result, jsonrpc: '2.0', id: upstreamId });
          const fast = hostedJsonAnswer(text, upstreamId, clientId);
          if (fast === undefined) return;
          const slow = objectPath(text.slice(0, text.lastIndexOf('"id":')) + `"id":${JSON.stringify(clientId)}}`);
          expect(fast).toBe(slow);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
