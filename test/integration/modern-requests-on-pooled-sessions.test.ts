/**
 * Raw 2026-07-28 requests (and sessionless 2025 ones) through the proxy in front of a legacy
 * upstream: the errors a 2026-07-28 server gives, who shares a pooled upstream session, ids that
 * never collide on it, per-request logs, cancellation, the pool's bounds, and raw HTTP callers.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { connectModern, envelope, modernCallText, modernHeaders, post } from '../helpers/modern-client.js';
import { useFixtureAndProxy } from '../helpers/fixture-and-proxy.js';
import { killAll, startFixture, startProxy } from '../helpers/processes.js';

afterAll(killAll);

const call = (id: number | string, name: string, args: Record<string, unknown> = {}, meta: Record<string, unknown> = {}) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args, _meta: envelope(meta) },
});

describe('modern requests refused as a 2026-07-28 server refuses them', () => {
  const env = useFixtureAndProxy('strict');
  const cases: [string, Record<string, string>, unknown, number, number][] = [
    [
      'the protocol version header and the body disagree',
      { ...modernHeaders('tools/list'), 'mcp-protocol-version': '2025-11-25' },
      { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: envelope() } },
      400,
      -32020,
    ],
    [
      'the protocol version header is missing',
      { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-method': 'tools/list' },
      { jsonrpc: '2.0', id: 2, method: 'tools/list', params: { _meta: envelope() } },
      400,
      -32020,
    ],
    [
      'the Mcp-Method header is missing',
      { ...modernHeaders('x'), 'mcp-method': '' },
      { jsonrpc: '2.0', id: 3, method: 'tools/list', params: { _meta: envelope() } },
      400,
      -32020,
    ],
    ['the Mcp-Name header names another tool', modernHeaders('tools/call', 'whoami'), call(4, 'echo', { text: 'x' }), 400, -32020],
    [
      'the envelope lacks clientCapabilities',
      modernHeaders('tools/list'),
      { jsonrpc: '2.0', id: 5, method: 'tools/list', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } } },
      400,
      -32602,
    ],
    [
      'a modern header comes without the envelope',
      modernHeaders('tools/list'),
      { jsonrpc: '2.0', id: 6, method: 'tools/list', params: {} },
      400,
      -32602,
    ],
    ['ping was removed', modernHeaders('ping'), { jsonrpc: '2.0', id: 7, method: 'ping', params: { _meta: envelope() } }, 404, -32601],
    [
      'logging/setLevel was removed',
      modernHeaders('logging/setLevel'),
      { jsonrpc: '2.0', id: 8, method: 'logging/setLevel', params: { level: 'info', _meta: envelope() } },
      404,
      -32601,
    ],
    [
      'initialize was removed',
      modernHeaders('initialize'),
      { jsonrpc: '2.0', id: 9, method: 'initialize', params: { _meta: envelope() } },
      404,
      -32601,
    ],
    [
      'an unknown method',
      modernHeaders('unknown/method'),
      { jsonrpc: '2.0', id: 10, method: 'unknown/method', params: { _meta: envelope() } },
      404,
      -32601,
    ],
    [
      'a batch',
      modernHeaders('tools/list'),
      [{ jsonrpc: '2.0', id: 11, method: 'tools/list', params: { _meta: envelope() } }],
      400,
      -32600,
    ],
  ];
  it.each(cases)('%s', async (_name, headers, body, status, code) => {
    const answer = await post(env.proxy.url, headers, body);
    expect(answer.status).toBe(status);
    expect(answer.messages).toHaveLength(1);
    const [error] = answer.messages;
    expect(error).toMatchObject({ jsonrpc: '2.0', error: { code } });
    // The error answers the request's id (a batch has no single id).
    expect(error!.id).toBe(Array.isArray(body) ? null : (body as { id: number }).id);
  });

  it('an unsupported version: -32022 naming what is supported and what was asked', async () => {
    const body = {
      jsonrpc: '2.0',
      id: 12,
      method: 'tools/list',
      params: { _meta: envelope({ 'io.modelcontextprotocol/protocolVersion': 'v999.0.0' }) },
    };
    const answer = await post(env.proxy.url, { ...modernHeaders('tools/list'), 'mcp-protocol-version': 'v999.0.0' }, body);
    expect(answer.status).toBe(400);
    expect(answer.messages[0]).toMatchObject({
      id: 12,
      error: { code: -32022, data: { supported: ['2026-07-28'], requested: 'v999.0.0' } },
    });
  });

  it('a notification is accepted with 202 and nothing reaches the upstream', async () => {
    const before = (await env.upstream.stats()).sessionHeadersSeen;
    const answer = await post(env.proxy.url, modernHeaders('notifications/cancelled'), {
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: 1, _meta: envelope() },
    });
    expect(answer.status).toBe(202);
    expect(answer.text).toBe('');
    expect((await env.upstream.stats()).sessionHeadersSeen).toBe(before);
  });

  it('a legacy "resource not found" (-32002) reaches the client as -32602, and results carry resultType', async () => {
    const answer = await post(env.proxy.url, modernHeaders('resources/read', 'test://gone'), {
      jsonrpc: '2.0',
      id: 13,
      method: 'resources/read',
      params: { uri: 'test://gone', _meta: envelope() },
    });
    expect(answer.messages.at(-1)).toMatchObject({
      id: 13,
      error: { code: -32602, message: 'MCP error -32002: Resource not found: test://gone' },
    });
    const read = await post(env.proxy.url, modernHeaders('resources/read', 'test://readme'), {
      jsonrpc: '2.0',
      id: 15,
      method: 'resources/read',
      params: { uri: 'test://readme', _meta: envelope() },
    });
    expect(read.messages.at(-1)).toMatchObject({
      id: 15,
      result: { contents: [{ text: 'read me' }], resultType: 'complete', ttlMs: 0, cacheScope: 'private' },
    });
    const listed = await post(env.proxy.url, modernHeaders('tools/list'), {
      jsonrpc: '2.0',
      id: 14,
      method: 'tools/list',
      params: { _meta: envelope() },
    });
    expect(listed.messages.at(-1)).toMatchObject({
      id: 14,
      result: {
        resultType: 'complete',
        ttlMs: 0,
        cacheScope: 'private',
        _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'legacy-strict', version: '1.0.0' } },
      },
    });
  });
});

describe('who shares a pooled upstream session', () => {
  const env = useFixtureAndProxy('sdk');

  it('callers with different credentials never share one; callers with the same share it without id collisions', async () => {
    const alice = await Promise.all(
      [0, 1].map(() => connectModern(env.proxy.url, 'shared-app', { headers: { authorization: 'Bearer alice' } })),
    );
    const bob = await connectModern(env.proxy.url, 'shared-app', { headers: { authorization: 'Bearer bob' } });
    // Both of alice's clients number their requests alike (from 0): on one shared upstream
    // session, the proxy's rewriting keeps them apart.
    const texts = await Promise.all(
      [...alice, bob].flatMap((c, i) => Array.from({ length: 10 }, (_, j) => modernCallText(c, 'echo', { text: `${i}-${j}` }))),
    );
    expect(texts).toEqual([0, 1, 2].flatMap((i) => Array.from({ length: 10 }, (_, j) => `${i}-${j}`)));
    const stats = await env.upstream.stats();
    const sessions = Object.entries(stats.clientBySession)
      .filter(([, client]) => client === 'shared-app')
      .map(([id]) => id);
    // One upstream session for alice (both clients), one for bob.
    expect(sessions).toHaveLength(2);
    expect(sessions.map((id) => stats.authorizationBySession[id]).sort()).toEqual([['Bearer alice'], ['Bearer bob']]);
    expect(stats.duplicateRequestIds).toBe(0);
    await Promise.all([...alice, bob].map((c) => c.close()));
  });

  it('logs reach a request only at or above the level it asked for, and never without one', async () => {
    const logsOf = async (meta: Record<string, unknown>, id: number) => {
      const answer = await post(env.proxy.url, modernHeaders('tools/call', 'log'), call(id, 'log', {}, meta));
      expect(answer.messages.at(-1)).toMatchObject({ id, result: { content: [{ text: 'logged' }], resultType: 'complete' } });
      return answer.messages.filter((m) => m.method === 'notifications/message').map((m) => (m.params as { level: string }).level);
    };
    expect(await logsOf({}, 20)).toEqual([]);
    expect(await logsOf({ 'io.modelcontextprotocol/logLevel': 'warning' }, 21)).toEqual(['warning', 'error']);
    expect(await logsOf({ 'io.modelcontextprotocol/logLevel': 'debug' }, 22)).toEqual(['debug', 'info', 'warning', 'error']);
  });

  it('a client that closes its request cancels it upstream', async () => {
    const controller = new AbortController();
    const before = await env.upstream.stats();
    const pending = fetch(env.proxy.url, {
      method: 'POST',
      headers: modernHeaders('tools/call', 'wait'),
      body: JSON.stringify(call(30, 'wait')),
      signal: controller.signal,
    }).catch((error: unknown) => error);
    await expect.poll(async () => (await env.upstream.stats()).waits).toBe(before.waits + 1);
    controller.abort();
    await pending;
    await expect.poll(async () => (await env.upstream.stats()).waitsCancelled).toBe(before.waitsCancelled + 1);
    const { cancelled } = await env.upstream.stats();
    // The upstream was told the id it knows the request by: the proxy's, not the client's 30.
    expect(cancelled.at(-1)).toMatch(/^mcp-session-proxy-\d+-\d+$/);
  });
});

describe('the pool is bounded, and what leaves it is ended upstream', () => {
  it('beyond POOL_MAX_SESSIONS the least recently used pooled session is DELETEd upstream; its callers get a new one', async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl, { POOL_MAX_SESSIONS: '1' });
    const first = await connectModern(proxy.url, 'first-app');
    expect(await modernCallText(first, 'echo', { text: 'a' })).toBe('a');
    const second = await connectModern(proxy.url, 'second-app');
    expect(await modernCallText(second, 'echo', { text: 'b' })).toBe('b');
    await expect.poll(async () => (await upstream.stats()).deletes).toBe(1);
    expect(await modernCallText(first, 'echo', { text: 'c' })).toBe('c');
    const stats = await upstream.stats();
    expect(stats.initializes).toEqual({ 'first-app': 2, 'second-app': 1 });
    const metrics = await (await fetch(`${proxy.origin}/metrics`)).text();
    expect(metrics).toMatch(/^mcp_session_proxy_pooled_upstream_sessions 1$/m);
    expect(metrics).toMatch(/^mcp_session_proxy_pooled_sessions_ended_total\{reason="evicted"\} 2$/m);
    await Promise.all([first.close(), second.close()]);
  });
});

describe('2025-style callers without a session (raw HTTP)', () => {
  const legacyHeaders = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2025-06-18',
  };
  const echo = (id: number | string) => ({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name: 'echo', arguments: { text: `raw ${id}` } },
  });

  it('are served on a pooled session by default, with their own ids', async () => {
    const upstream = await startFixture('strict');
    const proxy = await startProxy(upstream.mcpUrl);
    const answers = await Promise.all([1, 1, 'x'].map((id) => post(proxy.url, legacyHeaders, echo(id))));
    for (const [i, id] of ([1, 1, 'x'] as const).entries()) {
      expect(answers[i]!.status).toBe(200);
      expect(answers[i]!.messages.at(-1)).toEqual({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: `raw ${id}` }] } });
    }
    const stats = await upstream.stats();
    expect(stats.duplicateRequestIds).toBe(0);
    expect(stats.initializes).toEqual({ 'mcp-session-proxy': 1 });
  });

  it('get the old 400 with SESSIONLESS=reject', async () => {
    const upstream = await startFixture('strict');
    const proxy = await startProxy(upstream.mcpUrl, { SESSIONLESS: 'reject' });
    const answer = await post(proxy.url, legacyHeaders, echo(5));
    expect(answer.status).toBe(400);
    expect(answer.messages[0]).toMatchObject({ id: 5, error: { code: -32000, data: { reason: 'SESSION_REQUIRED' } } });
  });
});
