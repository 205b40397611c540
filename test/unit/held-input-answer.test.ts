/**
 * How a held session's input-capable request (flows/hosted/input.ts) reads its 2026-07-28 upstream's
 * SSE answer: through the one SSE reader, so a byte order mark, line endings and a last event
 * without its blank line read as anywhere else. The upstream is a stub; the client's request is a
 * real one to an in-process HTTP server.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { hostedExchange } from '../../src/flows/hosted/input.js';
import { Cancellation, type UpstreamClient } from '../../src/upstream/client.js';
import { HostedSession } from '../../src/flows/hosted/hosted-session.js';

let server: Server | undefined;
afterEach(() => {
  server?.closeAllConnections();
  server?.close();
});

/** The client's answer to a tools/call whose upstream answers with `sse`, in the given chunks. */
async function callWith(chunks: readonly string[]): Promise<{ contentType: string | null; messages: unknown[] }> {
  const upstream: UpstreamClient = {
    request: () =>
      Promise.resolve({
        statusCode: 200,
        headers: { 'content-type': 'text/event-stream' },
        body: Readable.from(chunks.map((c) => Buffer.from(c))),
      }),
    probe: () => Promise.resolve(true),
    close: () => Promise.resolve(),
  };
  const session = new HostedSession({ clientInfo: { name: 'c', version: '1' }, capabilities: {} }, '2025-11-25');
  const deps = { upstream, timeoutMs: 1000, metrics: createMetrics(false, () => 0), log: createLogger('silent') };
  server = createServer((_req, res) => {
    void hostedExchange(deps, { res, gone: new Cancellation(), acceptsEventStream: true }, session, {
      id: 1,
      method: 'tools/call',
      params: { name: 't', arguments: {} },
      headers: {},
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const response = await fetch(`http://127.0.0.1:${(server.address() as { port: number }).port}/`, { method: 'POST', body: '{}' });
  const text = await response.text();
  const contentType = response.headers.get('content-type');
  const messages =
    contentType === 'text/event-stream'
      ? text
          .split('\n')
          .filter((l) => l.startsWith('data: '))
          .map((l) => JSON.parse(l.slice(6)) as unknown)
      : [JSON.parse(text) as unknown];
  return { contentType, messages };
}

const log = { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'working' } };
const answer = { jsonrpc: '2.0', id: 1, result: { resultType: 'complete', content: [{ type: 'text', text: 'done' }] } };

describe('a held input-capable request reading its upstream SSE answer', () => {
  it('reads an answer that starts with a byte order mark', async () => {
    const { contentType, messages } = await callWith([`\uFEFFdata: ${JSON.stringify(log)}\n\n`, `data: ${JSON.stringify(answer)}\n\n`]);
    expect(contentType).toBe('text/event-stream');
    expect(messages).toEqual([log, { jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'done' }] } }]);
  });

  it('reads an answer whose last event ends without its blank line, in CR line endings cut anywhere', async () => {
    const text = `data: ${JSON.stringify(log)}\r\rdata: ${JSON.stringify(answer)}`;
    const { messages } = await callWith([text.slice(0, 7), text.slice(7, 70), text.slice(70)]);
    expect(messages).toEqual([log, { jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'done' }] } }]);
  });
});
