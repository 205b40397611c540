import { connect as connectSocket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROXY_ERRORS, type ProxyErrorReason } from '../../src/errors.js';
import { callText, connect, type Connected } from '../helpers/client.js';
import { killAll, startFixture, startProxy, type Proxy } from '../helpers/processes.js';

const ACCEPT = 'application/json, text/event-stream';
const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
};

describe('bad input from clients gets a clear JSON-RPC error, and the proxy keeps serving', () => {
  let proxy: Proxy;
  let c: Connected;
  beforeAll(async () => {
    const upstream = await startFixture('sdk');
    proxy = await startProxy(upstream.mcpUrl, { BODY_LIMIT_BYTES: '65536' });
    c = await connect(proxy.url, 'bystander');
  });
  afterAll(async () => {
    // After every bad input above, a normal session still works end to end.
    expect(await callText(c, 'echo', { text: 'still fine' })).toBe('still fine');
    await c.close();
    await killAll();
  });

  async function expectError(res: Response, status: number, code: number, reason: string) {
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(res.headers.get('mcp-session-id')).toBeNull();
    const body = (await res.json()) as { jsonrpc: string; error: { code: number; message: string; data: { reason: string } } };
    expect(body.jsonrpc).toBe('2.0');
    expect(body.error.code).toBe(code);
    expect(body.error.data.reason).toBe(reason);
    expect(body.error.message).toBe(PROXY_ERRORS[reason as ProxyErrorReason].message);
  }

  const post = (body: BodyInit | null, headers: Record<string, string> = {}) =>
    fetch(proxy.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: ACCEPT, 'mcp-session-id': c.sessionId()!, ...headers },
      body,
    });

  it.each([
    ['invalid JSON', '{"jsonrpc":"2.0",', -32700, 'PARSE_ERROR'],
    ['an empty body', '', -32700, 'PARSE_ERROR'],
    ['a JSON number', '42', -32600, 'INVALID_REQUEST'],
    ['a JSON string', '"hello"', -32600, 'INVALID_REQUEST'],
    ['JSON null', 'null', -32600, 'INVALID_REQUEST'],
    ['a message without jsonrpc', '{"id":1,"method":"ping"}', -32600, 'INVALID_REQUEST'],
    ['a method that is not a string', '{"jsonrpc":"2.0","id":1,"method":5}', -32600, 'INVALID_REQUEST'],
    ['an id that is an object', '{"jsonrpc":"2.0","id":{},"method":"ping"}', -32600, 'INVALID_REQUEST'],
    ['an empty batch', '[]', -32600, 'EMPTY_BATCH'],
    ['a batch with a non-message', '[{"jsonrpc":"2.0","method":"ping","id":1},7]', -32600, 'INVALID_REQUEST'],
  ])('%s → 400', async (_name, body, code, reason) => {
    await expectError(await post(body), 400, code, reason);
  });

  it('initialize inside a batch → 400', async () => {
    const res = await post(JSON.stringify([INIT, { jsonrpc: '2.0', method: 'notifications/initialized' }]), {
      'mcp-session-id': '',
    });
    await expectError(res, 400, -32600, 'INITIALIZE_IN_BATCH');
  });

  it('a second initialize carrying an existing session id → 400, and the session is not replaced', async () => {
    await expectError(await post(JSON.stringify(INIT)), 400, -32600, 'INITIALIZE_WITH_SESSION');
    expect(await callText(c, 'echo', { text: 'same session' })).toBe('same session');
  });

  it('a body over the limit (Content-Length) → 413', async () => {
    const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(200_000) } });
    await expectError(await post(big), 413, -32600, 'PAYLOAD_TOO_LARGE');
  });

  it('a streamed body over the limit → 413 without reading it all', async () => {
    // A raw socket (as curl does it): Node's HTTP clients drop an early answer on EPIPE.
    const chunk = `10000\r\n${' '.repeat(0x10000)}\r\n`; // 64 KiB chunked-encoding frames
    const LIMIT = 256 * 1024 * 1024; // bound the test; a proxy that buffered first would need all of it
    let sent = 0;
    const answer = await new Promise<string>((resolve) => {
      const socket = connectSocket(proxy.port, '127.0.0.1');
      let received = '';
      socket.on('data', (d: Buffer) => (received += d.toString()));
      socket.on('error', () => undefined); // EPIPE once the proxy closes: expected
      socket.on('close', () => resolve(received));
      socket.write(
        `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\naccept: ${ACCEPT}\r\n` +
          `mcp-session-id: ${c.sessionId()}\r\ntransfer-encoding: chunked\r\n\r\n`,
      );
      const pump = () => {
        while (received === '' && sent < LIMIT && !socket.destroyed) {
          sent += 0x10000;
          if (!socket.write(chunk)) return void socket.once('drain', pump);
        }
        socket.end();
      };
      pump();
    });
    // The first answer on the connection (a malformed rest of the upload may get its own 400).
    const headEnd = answer.indexOf('\r\n\r\n');
    const head = answer.slice(0, headEnd);
    expect(head).toMatch(/^HTTP\/1\.1 413 /);
    const length = Number(/content-length: (\d+)/i.exec(head)![1]);
    const body = answer.slice(headEnd + 4, headEnd + 4 + length);
    expect(JSON.parse(body)).toMatchObject({ error: { code: -32600, data: { reason: 'PAYLOAD_TOO_LARGE' } } });
    expect(sent).toBeLessThan(64 * 1024 * 1024);
  });

  it.each([
    ['text/plain', { 'content-type': 'text/plain' }],
    ['application/x-www-form-urlencoded', { 'content-type': 'application/x-www-form-urlencoded' }],
  ])('Content-Type %s → 415', async (_name, headers) => {
    await expectError(await post('{"jsonrpc":"2.0","id":1,"method":"ping"}', headers), 415, -32000, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it.each([
    ['unknown', 'Q'.repeat(43)],
    ['too short', 'abc'],
    ['8 KB long', 'a'.repeat(8192)],
    ['non-ASCII', 'sessión-ïd-ñ'.padEnd(43, 'x')],
    ['with spaces', 'a b c'],
  ])('%s session id → 404 (never 500)', async (_name, id) => {
    const res = await post('{"jsonrpc":"2.0","id":3,"method":"tools/list"}', { 'mcp-session-id': id });
    await expectError(res, 404, -32001, 'SESSION_NOT_FOUND');
    const get = await fetch(proxy.url, { headers: { accept: 'text/event-stream', 'mcp-session-id': id } });
    await expectError(get, 404, -32001, 'SESSION_NOT_FOUND');
    const del = await fetch(proxy.url, { method: 'DELETE', headers: { 'mcp-session-id': id } });
    await expectError(del, 404, -32001, 'SESSION_NOT_FOUND');
  });

  it('a deleted session id → 404', async () => {
    const other = await connect(proxy.url, 'short-lived');
    const id = other.sessionId()!;
    await other.transport.terminateSession();
    await expectError(
      await post('{"jsonrpc":"2.0","id":3,"method":"tools/list"}', { 'mcp-session-id': id }),
      404,
      -32001,
      'SESSION_NOT_FOUND',
    );
    await other.close();
  });

  it("a client that goes away in the middle of its body is no error of the proxy's", async () => {
    await new Promise<void>((resolve) => {
      const socket = connectSocket(proxy.port, '127.0.0.1');
      socket.on('error', () => resolve());
      socket.write(
        `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\nmcp-session-id: ${c.sessionId()}\r\n` +
          'content-length: 1000\r\n\r\n{"jsonrpc":',
        // Written: the proxy reads the headers and the start of the body before the end of the
        // stream, which TCP delivers after them.
        () => (socket.destroy(), resolve()),
      );
    });
    // The access line of that request, once the proxy has logged it (no sooner than its flush).
    await expect.poll(() => proxy.output()).toMatch(/"error":"CLIENT_CLOSED","complete":false/);
    expect(proxy.output()).not.toMatch(/"level":50/);
  });

  it.each(['PUT', 'PATCH', 'HEAD'])('method %s on the MCP path → 405 with Allow', async (method) => {
    const res = await fetch(proxy.url, { method });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, POST, DELETE');
    if (method !== 'HEAD') await expectError(res, 405, -32000, 'METHOD_NOT_ALLOWED');
  });
});
