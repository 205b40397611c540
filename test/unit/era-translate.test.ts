import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  discoverResult,
  toLegacyRequest,
  answerBodyOf,
  toModernMessage,
  toSessionlessMessage,
  splicedJsonAnswer,
  type AnswerContext,
  type Translated,
} from '../../src/mcp/translate.js';

const envelope = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': { elicitation: {} },
  'io.modelcontextprotocol/clientInfo': { name: 'modern-client', version: '2.4.0' },
  'io.modelcontextprotocol/logLevel': 'info',
};
const serverInfo = { name: 'mcp-servers/everything', title: 'Everything Reference Server', version: '2.0.0' };
const SERVER_INFO = 'io.modelcontextprotocol/serverInfo';

const legacy = (method: string, params: Record<string, unknown>, id: string, token?: string) =>
  JSON.parse(toLegacyRequest(method, params, id, token)) as unknown;

describe('toLegacyRequest: a modern request on the legacy wire', () => {
  it('removes the envelope, keeps other _meta keys, and swaps the id and progress token', () => {
    const params = {
      name: 'echo',
      arguments: { text: 'hi' },
      _meta: {
        ...envelope,
        progressToken: 'progress-test-1',
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        tracestate: 'congo=t61rcWkgMzE',
        baggage: 'userId=alice',
        'com.example/tenant': 't-1',
      },
    };
    expect(legacy('tools/call', params, 'u-1', 'p-u-1')).toStrictEqual({
      jsonrpc: '2.0',
      id: 'u-1',
      method: 'tools/call',
      params: {
        name: 'echo',
        arguments: { text: 'hi' },
        _meta: {
          progressToken: 'p-u-1',
          traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
          tracestate: 'congo=t61rcWkgMzE',
          baggage: 'userId=alice',
          'com.example/tenant': 't-1',
        },
      },
    });
  });

  it('leaves no _meta when it held only envelope keys', () => {
    expect(legacy('tools/list', { _meta: envelope }, 'u-2')).toStrictEqual({
      jsonrpc: '2.0',
      id: 'u-2',
      method: 'tools/list',
      params: {},
    });
    expect(legacy('resources/list', { cursor: 'c2', _meta: envelope }, 'u-3')).toStrictEqual({
      jsonrpc: '2.0',
      id: 'u-3',
      method: 'resources/list',
      params: { cursor: 'c2' },
    });
  });

  it('removes every io.modelcontextprotocol/* key, not only the four envelope ones', () => {
    const params = { _meta: { ...envelope, 'io.modelcontextprotocol/future-key': 1, baggage: 'b' } };
    expect(legacy('prompts/list', params, 'u-4')).toStrictEqual({
      jsonrpc: '2.0',
      id: 'u-4',
      method: 'prompts/list',
      params: { _meta: { baggage: 'b' } },
    });
  });

  it('never sends a client progress token upstream without an upstream one', () => {
    const params = { name: 'echo', _meta: { ...envelope, progressToken: 7 } };
    expect(legacy('tools/call', params, 'u-5')).toStrictEqual({
      jsonrpc: '2.0',
      id: 'u-5',
      method: 'tools/call',
      params: { name: 'echo' },
    });
  });

  it('puts the upstream progress token in even when _meta had nothing else', () => {
    expect(legacy('tools/call', { name: 'slow', _meta: envelope }, 'u-6', 'p-u-6')).toStrictEqual({
      jsonrpc: '2.0',
      id: 'u-6',
      method: 'tools/call',
      params: { name: 'slow', _meta: { progressToken: 'p-u-6' } },
    });
  });

  it('changes nothing else: MRTR retry params, odd keys, key order of params', () => {
    const params = {
      name: 'confirm',
      arguments: {},
      inputResponses: { answer: { action: 'accept', content: { ok: true } } },
      requestState: 'opaque+state==',
      _meta: envelope,
    };
    const text = toLegacyRequest('tools/call', params, 'u-7', undefined);
    expect(text).toBe(
      '{"jsonrpc":"2.0","id":"u-7","method":"tools/call","params":{"name":"confirm","arguments":{},' +
        '"inputResponses":{"answer":{"action":"accept","content":{"ok":true}}},"requestState":"opaque+state=="}}',
    );
  });

  it('keeps a param named __proto__ as data', () => {
    const params = JSON.parse('{"__proto__":{"x":1},"_meta":{"__proto__":{"y":2}}}') as Record<string, unknown>;
    expect(toLegacyRequest('tools/call', params, 'u-8', undefined)).toBe(
      '{"jsonrpc":"2.0","id":"u-8","method":"tools/call","params":{"__proto__":{"x":1},"_meta":{"__proto__":{"y":2}}}}',
    );
  });

  it('does not touch the request it was given', () => {
    const params = { name: 'echo', _meta: { ...envelope, progressToken: 1 } };
    const before = structuredClone(params);
    toLegacyRequest('tools/call', params, 'u-9', 'p-u-9');
    expect(params).toStrictEqual(before);
  });
});

const ctx: AnswerContext = {
  method: 'tools/call',
  clientId: 7,
  upstreamId: 'u-1',
  clientProgressToken: 'progress-test-1',
  upstreamProgressToken: 'p-u-1',
  logLevel: undefined,
  serverInfo,
};
const answer = (result: unknown) => ({ jsonrpc: '2.0', id: 'u-1', result });
const forwarded = (message: Record<string, unknown>): Translated => ({ kind: 'forward', message });
const DROP: Translated = { kind: 'drop' };

describe('toModernMessage: the response to the request', () => {
  it('restores the client id and stamps resultType and serverInfo', () => {
    expect(toModernMessage(answer({ content: [{ type: 'text', text: 'hi' }] }), ctx)).toStrictEqual(
      forwarded({
        jsonrpc: '2.0',
        id: 7,
        result: { content: [{ type: 'text', text: 'hi' }], resultType: 'complete', _meta: { [SERVER_INFO]: serverInfo } },
      }),
    );
  });

  it('keeps the other _meta keys of a result and a serverInfo the upstream set itself', () => {
    const result = { content: [], _meta: { 'com.example/cost': 3 } };
    expect(toModernMessage(answer(result), { ...ctx, clientId: 'c' })).toStrictEqual(
      forwarded({
        jsonrpc: '2.0',
        id: 'c',
        result: { content: [], resultType: 'complete', _meta: { 'com.example/cost': 3, [SERVER_INFO]: serverInfo } },
      }),
    );
    const own = { content: [], _meta: { [SERVER_INFO]: { name: 'own', version: '1' } } };
    expect(toModernMessage(answer(own), ctx)).toStrictEqual(
      forwarded({ jsonrpc: '2.0', id: 7, result: { ...own, resultType: 'complete' } }),
    );
  });

  it('adds no _meta without a serverInfo and leaves a malformed _meta as it is', () => {
    expect(toModernMessage(answer({ content: [] }), { ...ctx, serverInfo: undefined })).toStrictEqual(
      forwarded({ jsonrpc: '2.0', id: 7, result: { content: [], resultType: 'complete' } }),
    );
    expect(toModernMessage(answer({ content: [], _meta: 'odd' }), ctx)).toStrictEqual(
      forwarded({ jsonrpc: '2.0', id: 7, result: { content: [], _meta: 'odd', resultType: 'complete' } }),
    );
  });

  it('keeps a resultType that is present', () => {
    const result = { resultType: 'input_required', inputRequests: { a: { method: 'roots/list', params: {} } } };
    expect(toModernMessage(answer(result), { ...ctx, method: 'resources/read' })).toStrictEqual(
      forwarded({ jsonrpc: '2.0', id: 7, result: { ...result, _meta: { [SERVER_INFO]: serverInfo } } }),
    );
  });

  it.each(['tools/list', 'prompts/list', 'resources/list', 'resources/templates/list', 'resources/read', 'server/discover'])(
    'stamps ttlMs 0 and cacheScope private on %s',
    (method) => {
      expect(toModernMessage(answer({ items: [] }), { ...ctx, method })).toStrictEqual(
        forwarded({
          jsonrpc: '2.0',
          id: 7,
          result: { items: [], resultType: 'complete', ttlMs: 0, cacheScope: 'private', _meta: { [SERVER_INFO]: serverInfo } },
        }),
      );
    },
  );

  it.each(['tools/call', 'prompts/get', 'completion/complete'])('adds no cache fields on %s', (method) => {
    expect(toModernMessage(answer({}), { ...ctx, method })).toStrictEqual(
      forwarded({ jsonrpc: '2.0', id: 7, result: { resultType: 'complete', _meta: { [SERVER_INFO]: serverInfo } } }),
    );
  });

  it('keeps valid cache fields and replaces invalid ones', () => {
    const read = { ...ctx, method: 'resources/read', serverInfo: undefined };
    expect(toModernMessage(answer({ contents: [], ttlMs: 60_000, cacheScope: 'public' }), read)).toStrictEqual(
      forwarded({ jsonrpc: '2.0', id: 7, result: { contents: [], ttlMs: 60_000, cacheScope: 'public', resultType: 'complete' } }),
    );
    for (const [ttlMs, cacheScope] of [
      [-1, 'shared'],
      [1.5, null],
      ['10', 'PUBLIC'],
    ] as const) {
      expect(toModernMessage(answer({ contents: [], ttlMs, cacheScope }), read)).toStrictEqual(
        forwarded({ jsonrpc: '2.0', id: 7, result: { contents: [], ttlMs: 0, cacheScope: 'private', resultType: 'complete' } }),
      );
    }
  });

  it('strips tools[].execution on tools/list', () => {
    const tools = [
      { name: 'a', inputSchema: { type: 'object' }, execution: { taskSupport: 'optional' } },
      { name: 'b', inputSchema: { type: 'object' } },
    ];
    expect(toModernMessage(answer({ tools, nextCursor: 'n' }), { ...ctx, method: 'tools/list', serverInfo: undefined })).toStrictEqual(
      forwarded({
        jsonrpc: '2.0',
        id: 7,
        result: {
          tools: [
            { name: 'a', inputSchema: { type: 'object' } },
            { name: 'b', inputSchema: { type: 'object' } },
          ],
          nextCursor: 'n',
          resultType: 'complete',
          ttlMs: 0,
          cacheScope: 'private',
        },
      }),
    );
  });

  it('strips capabilities.tasks from any result', () => {
    const result = { capabilities: { tools: {}, tasks: { list: {} } } };
    expect(toModernMessage(answer(result), { ...ctx, serverInfo: undefined })).toStrictEqual(
      forwarded({ jsonrpc: '2.0', id: 7, result: { capabilities: { tools: {} }, resultType: 'complete' } }),
    );
  });

  it('maps resource-not-found -32002 to -32602, keeping message and data', () => {
    const error = { code: -32002, message: 'Resource not found', data: { uri: 'test://missing' } };
    expect(toModernMessage({ jsonrpc: '2.0', id: 'u-1', error }, { ...ctx, method: 'resources/read' })).toStrictEqual(
      forwarded({ jsonrpc: '2.0', id: 7, error: { code: -32602, message: 'Resource not found', data: { uri: 'test://missing' } } }),
    );
  });

  it('passes other error codes unchanged', () => {
    for (const code of [-32602, -32601, -32603, -32000, 42]) {
      const error = { code, message: 'no' };
      expect(toModernMessage({ jsonrpc: '2.0', id: 'u-1', error }, ctx)).toStrictEqual(forwarded({ jsonrpc: '2.0', id: 7, error }));
    }
  });

  it('drops responses to other ids, errors without an id included', () => {
    expect(toModernMessage({ jsonrpc: '2.0', id: 'u-2', result: {} }, ctx)).toStrictEqual(DROP);
    expect(toModernMessage({ jsonrpc: '2.0', id: 7, result: {} }, ctx)).toStrictEqual(DROP);
    expect(toModernMessage({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } }, ctx)).toStrictEqual(DROP);
  });
});

describe('toModernMessage: notifications and server requests on the stream', () => {
  const progress = (progressToken: unknown) => ({
    jsonrpc: '2.0',
    method: 'notifications/progress',
    params: { progressToken, progress: 50, total: 100, message: 'half' },
  });

  it('forwards progress for the request with the client token restored', () => {
    expect(toModernMessage(progress('p-u-1'), ctx)).toStrictEqual(
      forwarded({
        jsonrpc: '2.0',
        method: 'notifications/progress',
        params: { progressToken: 'progress-test-1', progress: 50, total: 100, message: 'half' },
      }),
    );
    expect(toModernMessage(progress('p-u-1'), { ...ctx, clientProgressToken: 3 })).toStrictEqual(
      forwarded({
        jsonrpc: '2.0',
        method: 'notifications/progress',
        params: { progressToken: 3, progress: 50, total: 100, message: 'half' },
      }),
    );
  });

  it('drops progress for other tokens or for a request that asked for none', () => {
    expect(toModernMessage(progress('p-u-2'), ctx)).toStrictEqual(DROP);
    expect(toModernMessage(progress('progress-test-1'), ctx)).toStrictEqual(DROP);
    expect(toModernMessage(progress('p-u-1'), { ...ctx, clientProgressToken: undefined })).toStrictEqual(DROP);
    expect(
      toModernMessage(progress(undefined), { ...ctx, clientProgressToken: undefined, upstreamProgressToken: undefined }),
    ).toStrictEqual(DROP);
    expect(toModernMessage({ jsonrpc: '2.0', method: 'notifications/progress' }, ctx)).toStrictEqual(DROP);
  });

  const log = (level: unknown) => ({ jsonrpc: '2.0', method: 'notifications/message', params: { level, logger: 'x', data: 'd' } });

  it('drops every log message when the request set no logLevel', () => {
    for (const level of ['debug', 'error', 'emergency']) expect(toModernMessage(log(level), ctx)).toStrictEqual(DROP);
  });

  it('forwards log messages at or above the request logLevel, unchanged', () => {
    const warning = { ...ctx, logLevel: 'warning' as const };
    for (const level of ['warning', 'error', 'critical', 'alert', 'emergency']) {
      expect(toModernMessage(log(level), warning)).toStrictEqual(forwarded(log(level)));
    }
    for (const level of ['debug', 'info', 'notice', 'fatal', 3, undefined]) {
      expect(toModernMessage(log(level), warning)).toStrictEqual(DROP);
    }
    expect(toModernMessage(log('debug'), { ...ctx, logLevel: 'debug' })).toStrictEqual(forwarded(log('debug')));
  });

  it('drops the notifications a modern client gets from subscriptions/listen', () => {
    for (const method of [
      'notifications/tools/list_changed',
      'notifications/prompts/list_changed',
      'notifications/resources/list_changed',
      'notifications/resources/updated',
      'notifications/cancelled',
      'notifications/elicitation/complete',
    ]) {
      expect(toModernMessage({ jsonrpc: '2.0', method, params: {} }, ctx)).toStrictEqual(DROP);
    }
  });

  it('refuses server→client requests so the caller can answer the upstream', () => {
    expect(toModernMessage({ jsonrpc: '2.0', id: 0, method: 'elicitation/create', params: { message: 'name?' } }, ctx)).toStrictEqual({
      kind: 'refuse-upstream',
      id: 0,
      method: 'elicitation/create',
    });
    for (const method of ['sampling/createMessage', 'roots/list', 'ping']) {
      expect(toModernMessage({ jsonrpc: '2.0', id: 'srv-1', method }, ctx)).toStrictEqual({ kind: 'refuse-upstream', id: 'srv-1', method });
    }
  });

  it('marks a server→client request needing a capability the envelope did not declare (the client gets -32021)', () => {
    const declaredNone = { ...ctx, clientCapabilities: {} };
    for (const [method, capability] of [
      ['sampling/createMessage', 'sampling'],
      ['elicitation/create', 'elicitation'],
      ['roots/list', 'roots'],
    ] as const) {
      expect(toModernMessage({ jsonrpc: '2.0', id: 3, method }, declaredNone)).toStrictEqual({
        kind: 'refuse-upstream',
        id: 3,
        method,
        missingCapability: capability,
      });
      // Declared: refused upstream all the same (no MRTR yet), but the client's request goes on.
      const declared = { ...ctx, clientCapabilities: { [capability]: {} } };
      expect(toModernMessage({ jsonrpc: '2.0', id: 3, method }, declared)).toStrictEqual({ kind: 'refuse-upstream', id: 3, method });
    }
    // No capability governs ping; a capability that is not an object is not declared.
    expect(toModernMessage({ jsonrpc: '2.0', id: 4, method: 'ping' }, declaredNone)).toStrictEqual({
      kind: 'refuse-upstream',
      id: 4,
      method: 'ping',
    });
    expect(toModernMessage({ jsonrpc: '2.0', id: 5, method: 'roots/list' }, { ...ctx, clientCapabilities: { roots: true } })).toMatchObject(
      {
        missingCapability: 'roots',
      },
    );
  });

  it('drops whatever is not a JSON-RPC message', () => {
    for (const message of [
      undefined,
      null,
      'text',
      42,
      [],
      [answer({})],
      {},
      { jsonrpc: '1.0', id: 'u-1', result: {} },
      { jsonrpc: '2.0', id: 'u-1' },
    ]) {
      expect(toModernMessage(message, ctx)).toStrictEqual(DROP);
    }
    expect(toModernMessage({ jsonrpc: '2.0', id: 'u-1', result: {}, error: { code: 1, message: 'x' } }, ctx)).toStrictEqual(DROP);
    expect(toModernMessage({ jsonrpc: '2.0', id: 'u-1', error: 'bad' }, ctx)).toStrictEqual(DROP);
  });
});

describe('toModernMessage never throws', () => {
  const contexts = fc.record({
    method: fc.constantFrom('tools/call', 'tools/list', 'resources/read', 'server/discover', 'completion/complete'),
    clientId: fc.oneof(fc.integer(), fc.string()),
    upstreamId: fc.constantFrom('u-1', '1'),
    clientProgressToken: fc.option(fc.oneof(fc.integer(), fc.string()), { nil: undefined }),
    upstreamProgressToken: fc.option(fc.constantFrom('p-u-1', 'p'), { nil: undefined }),
    logLevel: fc.option(fc.constantFrom('debug', 'info', 'warning', 'emergency' as const), { nil: undefined }),
    serverInfo: fc.option(fc.constant(serverInfo), { nil: undefined }),
  });
  const messageish = fc.record(
    {
      jsonrpc: fc.constantFrom('2.0', '1.0'),
      id: fc.oneof(fc.constantFrom('u-1', '1', 1, null), fc.jsonValue()),
      method: fc.oneof(fc.constantFrom('notifications/progress', 'notifications/message', 'ping'), fc.jsonValue()),
      params: fc.oneof(
        fc.record({ progressToken: fc.constantFrom('p-u-1', 'p', 1), level: fc.constantFrom('info', 'error', 'x') }, { requiredKeys: [] }),
        fc.jsonValue(),
      ),
      result: fc.oneof(
        fc.record(
          {
            tools: fc.array(fc.oneof(fc.record({ name: fc.string(), execution: fc.jsonValue() }), fc.jsonValue())),
            capabilities: fc.oneof(fc.record({ tasks: fc.jsonValue() }), fc.jsonValue()),
            _meta: fc.jsonValue(),
            resultType: fc.jsonValue(),
            ttlMs: fc.jsonValue(),
            cacheScope: fc.jsonValue(),
          },
          { requiredKeys: [] },
        ),
        fc.jsonValue(),
      ),
      error: fc.oneof(fc.record({ code: fc.constantFrom(-32002, -32602, 1), message: fc.string(), data: fc.jsonValue() }), fc.jsonValue()),
    },
    { requiredKeys: ['jsonrpc'] },
  );

  it('on arbitrary JSON and on messages that look almost right, and what it forwards is JSON', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), messageish), contexts, (message, context) => {
        const translated = toModernMessage(message, context);
        if (translated.kind === 'forward') expect(JSON.parse(JSON.stringify(translated.message))).toBeTypeOf('object');
      }),
      { numRuns: 2000 },
    );
  });
});

/** Contexts of the answers the text splices take (no progress tokens, no logLevel): ids needing JSON escapes included. */
const spliceContexts = fc.record({
  method: fc.constantFrom('tools/call', 'prompts/get', 'completion/complete', 'tools/list', 'resources/read'),
  clientId: fc.oneof(fc.integer(), fc.string()),
  upstreamId: fc.constantFrom('u-1', 'mcp-session-proxy:"7"\\', '\u2028', '7'),
  clientProgressToken: fc.constant(undefined),
  upstreamProgressToken: fc.constant(undefined),
  logLevel: fc.constant(undefined),
  serverInfo: fc.option(fc.constant(serverInfo), { nil: undefined }),
});

describe('the common answer rewritten as text (the fast path) says what the object path says', () => {
  // Every order of the three members, compact as SDKs write them, or indented (the object path).
  const orders = fc.constantFrom(
    ['jsonrpc', 'id', 'result'],
    ['result', 'jsonrpc', 'id'],
    ['id', 'result', 'jsonrpc'],
    ['result', 'id', 'jsonrpc'],
  );
  const spelled = (message: Record<string, unknown>, order: readonly string[], indent: number) =>
    JSON.stringify(Object.fromEntries(order.map((key) => [key, message[key]])), null, indent);
  const results = fc.oneof(
    fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 6 }),
    fc.record(
      {
        content: fc.array(fc.record({ type: fc.constant('text'), text: fc.string() })),
        isError: fc.boolean(),
        structuredContent: fc.jsonValue(),
      },
      { requiredKeys: [] },
    ),
    // Keys that must leave the fast path: the object path rewrites them.
    fc.record(
      { resultType: fc.jsonValue(), _meta: fc.jsonValue(), capabilities: fc.jsonValue(), tools: fc.jsonValue() },
      { requiredKeys: [] },
    ),
  );
  const contexts = spliceContexts;
  const textOf = (translated: Translated) =>
    translated.kind === 'answer' ? translated.text : translated.kind === 'forward' ? JSON.stringify(translated.message) : undefined;

  it('for a 2026-07-28 client', () => {
    fc.assert(
      fc.property(results, contexts, orders, fc.constantFrom(0, 0, 2), (result, context, order, indent) => {
        const message = { jsonrpc: '2.0', id: context.upstreamId, result };
        const text = spelled(message, order, indent);
        const viaText = toModernMessage(JSON.parse(text), context, text);
        const viaObject = toModernMessage(JSON.parse(text), context);
        expect(viaObject.kind).toBe('forward');
        expect(JSON.parse(textOf(viaText)!)).toStrictEqual(JSON.parse(textOf(viaObject)!));
      }),
      { numRuns: 3000 },
    );
  });

  it('for a sessionless 2025-style caller', () => {
    fc.assert(
      fc.property(results, contexts, orders, fc.constantFrom(0, 2), (result, context, order, indent) => {
        const message = { jsonrpc: '2.0', id: context.upstreamId, result };
        const text = spelled(message, order, indent);
        const viaText = toSessionlessMessage(JSON.parse(text), context, text);
        const viaObject = toSessionlessMessage(JSON.parse(text), context);
        expect(JSON.parse(textOf(viaText)!)).toStrictEqual(JSON.parse(textOf(viaObject)!));
      }),
      { numRuns: 1000 },
    );
  });

  it('is taken for the answer every SDK writes to tools/call, and not for what it cannot rewrite', () => {
    const sdk = '{"result":{"content":[{"type":"text","text":"hi"}]},"jsonrpc":"2.0","id":"u-1"}';
    expect(toModernMessage(JSON.parse(sdk), ctx, sdk)).toStrictEqual({
      kind: 'answer',
      text: `{"jsonrpc":"2.0","id":7,"result":{"resultType":"complete","_meta":{"${SERVER_INFO}":${JSON.stringify(serverInfo)}},"content":[{"type":"text","text":"hi"}]}}`,
    });
    const empty = '{"jsonrpc":"2.0","id":"u-1","result":{}}';
    expect(toModernMessage(JSON.parse(empty), { ...ctx, serverInfo: undefined }, empty)).toStrictEqual({
      kind: 'answer',
      text: '{"jsonrpc":"2.0","id":7,"result":{"resultType":"complete"}}',
    });
    expect(toSessionlessMessage(JSON.parse(sdk), ctx, sdk)).toStrictEqual({
      kind: 'answer',
      text: '{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"hi"}]}}',
    });
    for (const text of [
      '{"result":{"content":[]}, "jsonrpc":"2.0","id":"u-1"}', // whitespace
      '{"result":{"content":[]},"jsonrpc":"2.0","\\u0069d":"u-1"}', // an escaped name
      '{"result":{"content":[],"_meta":{}},"jsonrpc":"2.0","id":"u-1"}', // the upstream's own _meta
      '{"result":{"content":[]},"jsonrpc":"2.0","id":"u-1","x":1}', // a fourth member
    ]) {
      expect(toModernMessage(JSON.parse(text), ctx, text).kind).toBe('forward');
    }
    const list = '{"jsonrpc":"2.0","id":"u-1","result":{"tools":[]}}';
    expect(toModernMessage(JSON.parse(list), { ...ctx, method: 'tools/list' }, list).kind).toBe('forward');
  });
});

describe('the common JSON answer rewritten before any parse (splicedJsonAnswer) says what the object path says', () => {
  const results = fc.oneof(
    fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 6 }),
    fc.record(
      { content: fc.array(fc.record({ type: fc.constant('text'), text: fc.string() })), isError: fc.boolean() },
      { requiredKeys: [] },
    ),
    fc.record(
      { resultType: fc.jsonValue(), _meta: fc.jsonValue(), capabilities: fc.jsonValue(), error: fc.jsonValue(), result: fc.jsonValue() },
      { requiredKeys: [] },
    ),
  );
  // Extra members beside the three (kept by both paths), and every order, compact.
  const messages = fc.record({
    result: results,
    extra: fc.option(fc.dictionary(fc.constantFrom('x', 'error', 'method', 'result', 'jsonrpc', 'id'), fc.jsonValue(), { maxKeys: 2 }), {
      nil: undefined,
    }),
    order: fc.constantFrom('id-first', 'result-first'),
  });
  const contexts = spliceContexts;
  const spelled = (m: { result: unknown; extra?: Record<string, unknown> | undefined; order: string }, id: string) =>
    m.order === 'id-first'
      ? `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${JSON.stringify(m.result)}${m.extra ? JSON.stringify(m.extra).replace(/^\{/, ',').replace(/^,\}$/, '}') : '}'}`
      : `{"result":${JSON.stringify(m.result)},${m.extra && Object.keys(m.extra).length > 0 ? JSON.stringify(m.extra).slice(1, -1) + ',' : ''}"jsonrpc":"2.0","id":${JSON.stringify(id)}}`;
  const objectPath = (text: string, translate: (message: unknown) => Translated) => {
    const translated = translate(JSON.parse(text));
    return translated.kind === 'forward' && !('method' in translated.message) ? translated.message : undefined;
  };

  it('for a 2026-07-28 client and a sessionless caller, whenever it answers at all', () => {
    let taken = 0;
    fc.assert(
      fc.property(messages, contexts, (m, context) => {
        const text = spelled(m, context.upstreamId);
        const modern = splicedJsonAnswer(text, context, context);
        if (modern !== undefined) {
          taken++;
          expect(JSON.parse(modern)).toStrictEqual(objectPath(text, (message) => toModernMessage(message, context)));
        }
        const sessionless = splicedJsonAnswer(text, context, undefined);
        if (sessionless !== undefined)
          expect(JSON.parse(sessionless)).toStrictEqual(objectPath(text, (message) => toSessionlessMessage(message, context)));
      }),
      { numRuns: 3000 },
    );
    // Not vacuous: the fast path was taken for a good share of the answers.
    expect(taken).toBeGreaterThan(300);
  });

  it('is taken for the answers SDK servers write, and never for anything else it cannot vouch for', () => {
    const sdk = '{"result":{"content":[{"type":"text","text":"hi"}]},"jsonrpc":"2.0","id":"u-1"}';
    expect(splicedJsonAnswer(sdk, ctx, ctx)).toBe(
      `{"jsonrpc":"2.0","id":7,"result":{"resultType":"complete","_meta":{"${SERVER_INFO}":${JSON.stringify(serverInfo)}},"content":[{"type":"text","text":"hi"}]}}`,
    );
    expect(splicedJsonAnswer('{"jsonrpc":"2.0","id":"u-1","result":{}}', ctx, undefined)).toBe('{"jsonrpc":"2.0","id":7,"result":{}}');
    for (const text of [
      '{"jsonrpc":"2.0","id":"u-2","result":{}}', // another caller's
      '{"jsonrpc":"2.0","id":"u-1","result":{}, "x":1}', // not compact where it matters
      '{"jsonrpc":"2.0","id":"u-1","result":{"content":[]},"error":{"code":1,"message":"m"}}',
      '{"jsonrpc":"2.0","id":"u-1","result":{"a":1},"result":{"b":2}}',
      '{"jsonrpc":"2.0","id":"u-1","result":{"_meta":{}}}',
      '{"jsonrpc":"2.0","id":"u-1","method":"x","result":{}}',
      '[{"jsonrpc":"2.0","id":"u-1","result":{}}]',
      '',
    ]) {
      expect(splicedJsonAnswer(text, ctx, ctx)).toBeUndefined();
    }
    const list: AnswerContext = { ...ctx, method: 'tools/list' };
    expect(splicedJsonAnswer('{"jsonrpc":"2.0","id":"u-1","result":{"tools":[]}}', list, list)).toBeUndefined();
  });

  it('never throws on arbitrary text', () => {
    fc.assert(fc.property(fc.string(), (text) => void splicedJsonAnswer(`{"jsonrpc":"2.0","id":"u-1","result":{${text}`, ctx, ctx)));
  });
});

describe('answerBodyOf: a whole JSON answer', () => {
  const listCtx = { ...ctx, method: 'tools/list' };
  const expected = {
    jsonrpc: '2.0',
    id: 7,
    result: { tools: [], resultType: 'complete', ttlMs: 0, cacheScope: 'private', _meta: { [SERVER_INFO]: serverInfo } },
  };

  it('returns the response for the client as JSON text', () => {
    const body = JSON.stringify(answer({ tools: [] }));
    expect(
      JSON.parse(
        answerBodyOf(
          body,
          'application/json',
          (m) => toModernMessage(m, listCtx),
          () => undefined,
        ) ?? 'null',
      ),
    ).toStrictEqual(expected);
  });

  it('finds the response in an array among other traffic', () => {
    const body = JSON.stringify([
      { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'error', data: 'x' } },
      { jsonrpc: '2.0', id: 'u-9', result: {} },
      answer({ tools: [] }),
    ]);
    expect(
      JSON.parse(
        answerBodyOf(
          body,
          'application/json; charset=utf-8',
          (m) => toModernMessage(m, { ...listCtx, logLevel: 'debug' }),
          () => undefined,
        ) ?? 'null',
      ),
    ).toStrictEqual(expected);
  });

  it('reads a buffered SSE body as well', () => {
    const body = `event: message\ndata: ${JSON.stringify(answer({ tools: [] }))}\n\n`;
    expect(
      JSON.parse(
        answerBodyOf(
          body,
          'text/event-stream',
          (m) => toModernMessage(m, listCtx),
          () => undefined,
        ) ?? 'null',
      ),
    ).toStrictEqual(expected);
  });

  it('reads a buffered SSE body that starts with a byte order mark', () => {
    const body = `\uFEFFdata: ${JSON.stringify(answer({ tools: [] }))}\n\n`;
    expect(
      JSON.parse(
        answerBodyOf(
          body,
          'text/event-stream',
          (m) => toModernMessage(m, listCtx),
          () => undefined,
        ) ?? 'null',
      ),
    ).toStrictEqual(expected);
  });

  it('returns undefined when nothing in it is for the client', () => {
    expect(
      answerBodyOf(
        '',
        'application/json',
        (m) => toModernMessage(m, listCtx),
        () => undefined,
      ),
    ).toBeUndefined();
    expect(
      answerBodyOf(
        'not json',
        'application/json',
        (m) => toModernMessage(m, listCtx),
        () => undefined,
      ),
    ).toBeUndefined();
    expect(
      answerBodyOf(
        JSON.stringify({ jsonrpc: '2.0', id: 'u-9', result: {} }),
        'application/json',
        (m) => toModernMessage(m, listCtx),
        () => undefined,
      ),
    ).toBeUndefined();
  });

  it('hands server requests in it to onRefuse, and still finds the answer', () => {
    const refused: [unknown, string][] = [];
    const body = [
      `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'roots/list' })}\n\n`,
      `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: listCtx.upstreamId, result: { tools: [] } })}\n\n`,
    ].join('');
    const text = answerBodyOf(
      body,
      'text/event-stream',
      (m) => toModernMessage(m, listCtx),
      (id, method) => void refused.push([id, method]),
    );
    expect(refused).toEqual([[3, 'roots/list']]);
    expect(JSON.parse(text ?? 'null')).toMatchObject({ id: listCtx.clientId, result: { tools: [], resultType: 'complete' } });
  });
});

describe('discoverResult: server/discover from the upstream InitializeResult', () => {
  // What a v1 SDK McpServer (the everything reference server) answers initialize with.
  const initializeResult = {
    protocolVersion: '2025-11-25',
    capabilities: {
      tools: { listChanged: true },
      prompts: { listChanged: true },
      resources: { subscribe: true, listChanged: true },
      logging: {},
      completions: {},
      tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } },
      experimental: { 'com.example/x': {} },
    },
    serverInfo,
    instructions: 'Testing and demonstration server.',
  };

  it('reports the modern version, the capabilities a modern client can use, and the identity', () => {
    expect(discoverResult(initializeResult)).toStrictEqual({
      resultType: 'complete',
      supportedVersions: ['2026-07-28'],
      capabilities: {
        tools: { listChanged: true },
        prompts: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        logging: {},
        completions: {},
        experimental: { 'com.example/x': {} },
      },
      instructions: 'Testing and demonstration server.',
      ttlMs: 0,
      cacheScope: 'private',
      _meta: { [SERVER_INFO]: serverInfo },
    });
  });

  it('does not change the InitializeResult it reads', () => {
    const before = structuredClone(initializeResult);
    discoverResult(initializeResult);
    expect(initializeResult).toStrictEqual(before);
  });

  it('leaves out what the upstream did not say', () => {
    expect(discoverResult({ protocolVersion: '2025-03-26', capabilities: { tools: {} }, serverInfo })).toStrictEqual({
      resultType: 'complete',
      supportedVersions: ['2026-07-28'],
      capabilities: { tools: {} },
      ttlMs: 0,
      cacheScope: 'private',
      _meta: { [SERVER_INFO]: serverInfo },
    });
    expect(discoverResult({})).toStrictEqual({
      resultType: 'complete',
      supportedVersions: ['2026-07-28'],
      capabilities: {},
      ttlMs: 0,
      cacheScope: 'private',
    });
  });
});
