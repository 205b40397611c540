import { connect as connectSocket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { useFixtureAndProxy } from '../helpers/fixture-and-proxy.js';

const BODY_TIMEOUT_MS = 300;
const INIT =
  '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"slow","version":"1"}}}';

/** Send `head` and `partial` of a body, then nothing more; resolve with all the proxy sent once it closes the connection. */
function stall(port: number, partial: string, declared = INIT.length): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectSocket(port, '127.0.0.1');
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString()));
    socket.on('error', reject);
    socket.on('close', () => resolve(received));
    socket.write(
      'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\n' +
        `content-length: ${declared}\r\n\r\n${partial}`,
    );
  });
}

function parse(answer: string) {
  const headEnd = answer.indexOf('\r\n\r\n');
  const head = answer.slice(0, headEnd);
  const length = Number(/content-length: (\d+)/i.exec(head)?.[1]);
  return { head, body: JSON.parse(answer.slice(headEnd + 4, headEnd + 4 + length)) as unknown };
}

describe('a request body that stops arriving', () => {
  const env = useFixtureAndProxy('sdk', { env: { BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS) } });

  it('stalled mid-body: 408 with a JSON-RPC error, and the connection is closed', async () => {
    const { head, body } = parse(await stall(env.proxy.port, INIT.slice(0, 20)));
    expect(head).toMatch(/^HTTP\/1\.1 408 /);
    expect(head).toMatch(/\r\nconnection: close/i);
    expect(body).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32000, data: { reason: 'REQUEST_TIMEOUT' } } });
    await expect.poll(() => env.proxy.output()).toMatch(/"error":"REQUEST_TIMEOUT"/);
  });

  it('headers sent, not one byte of the body: 408 as well', async () => {
    const { head, body } = parse(await stall(env.proxy.port, ''));
    expect(head).toMatch(/^HTTP\/1\.1 408 /);
    expect(body).toMatchObject({ error: { data: { reason: 'REQUEST_TIMEOUT' } } });
  });

  it('a body in several chunks, each within the timeout, is read as usual', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connectSocket(env.proxy.port, '127.0.0.1');
      let received = '';
      socket.on('error', reject);
      socket.write(
        'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nconnection: close\r\ncontent-type: application/json\r\n' +
          `accept: application/json, text/event-stream\r\ncontent-length: ${INIT.length}\r\n\r\n`,
      );
      // Each next chunk goes out once the previous one has been flushed: no clock involved.
      const chunks = INIT.match(/.{1,16}/g)!;
      const next = () => {
        const chunk = chunks.shift();
        if (chunk !== undefined) socket.write(chunk, () => setImmediate(next));
      };
      next();
      socket.on('data', (d: Buffer) => (received += d.toString()));
      socket.on('close', () => resolve(received));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toMatch(/mcp-session-id: /i);
  });

  it('an SSE answer idle for longer than the body timeout stays open: only bodies are timed', async () => {
    // A session of its own, without the SDK client (which holds its own GET stream).
    const post = (body: string, headers: Record<string, string> = {}) =>
      fetch(env.proxy.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
        body,
      });
    const init = await post(INIT);
    await init.text();
    const session = { 'mcp-session-id': init.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-06-18' };
    expect((await post('{"jsonrpc":"2.0","method":"notifications/initialized"}', session)).status).toBe(202);
    const stream = await fetch(env.proxy.url, { headers: { accept: 'text/event-stream', ...session } });
    expect(stream.status).toBe(200);
    let ended = false;
    const reader = stream.body!.getReader();
    const drained = (async () => {
      while (!(await reader.read()).done);
      ended = true;
    })().catch(() => (ended = true));
    // A stalled body started after the stream opened, and refused: the stream has now been idle
    // for longer than the body timeout.
    expect(parse(await stall(env.proxy.port, '{')).head).toMatch(/^HTTP\/1\.1 408 /);
    expect(ended).toBe(false);
    // It was open all along: ending the session is what ends it.
    expect((await fetch(env.proxy.url, { method: 'DELETE', headers: session })).status).toBe(200);
    await drained;
    expect(ended).toBe(true);
  });
});
