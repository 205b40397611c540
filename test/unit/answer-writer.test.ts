/**
 * The answer writer (http/answer-writer.ts): JSON until the first event, then SSE, the open
 * streams counted in one place. Each case is a real request to an in-process HTTP server whose
 * handler drives one writer.
 */
import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { ProxyError } from '../../src/errors.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { AnswerWriter } from '../../src/http/answer-writer.js';

let server: Server | undefined;
afterEach(() => {
  server?.closeAllConnections();
  server?.close();
});

/** Open streams as the gauge counts them. */
let openStreams = 0;
const metrics = { ...createMetrics(false, () => 0), streamOpened: () => void openStreams++, streamClosed: () => void openStreams-- };

interface Seen {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** What a client receives from a handler that drives a writer on its response. */
async function answered(drive: (writer: AnswerWriter, res: ServerResponse) => void, status?: number): Promise<Seen> {
  openStreams = 0;
  server = createServer((_req, res) => drive(new AnswerWriter(res, metrics, status), res));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const response = await fetch(`http://127.0.0.1:${(server.address() as { port: number }).port}/`);
  const body = await response.text();
  const headers: Record<string, string> = {};
  for (const name of ['content-type', 'content-length', 'cache-control']) {
    const value = response.headers.get(name);
    if (value !== null) headers[name] = value;
  }
  return { status: response.status, headers, body };
}

const event = (json: string) => `event: message\ndata: ${json}\n\n`;
const ANSWER = '{"jsonrpc":"2.0","id":1,"result":{}}';

describe('an answer that is JSON until its first event, then SSE', () => {
  it('is a JSON body with its length while nothing was streamed, and no open stream', async () => {
    expect(await answered((writer) => writer.end(ANSWER), 201)).toEqual({
      status: 201,
      headers: { 'content-type': 'application/json', 'content-length': String(ANSWER.length) },
      body: ANSWER,
    });
    expect(openStreams).toBe(0);
  });

  it('becomes a stream at its first event; the answer is then its last event; the stream is counted until the response closes', async () => {
    let whileStreaming = -1;
    const seen = await answered((writer) => {
      writer.write(event('{"n":1}'));
      writer.write(': keepalive\n\n');
      whileStreaming = openStreams;
      writer.end(ANSWER);
    });
    expect(seen).toEqual({
      status: 200,
      headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
      body: `${event('{"n":1}')}: keepalive\n\n${event(ANSWER)}`,
    });
    expect(whileStreaming).toBe(1);
    await expect.poll(() => openStreams).toBe(0);
  });

  it('streams the answer after events still pending, in one write', async () => {
    const seen = await answered((writer) => writer.end(ANSWER, event('{"n":1}')));
    expect(seen.headers['content-type']).toBe('text/event-stream');
    expect(seen.body).toBe(event('{"n":1}') + event(ANSWER));
  });

  it('fails with the refusal (its own status) while nothing went out, even once opened as a stream', async () => {
    const error = new ProxyError('MODERN_MISSING_CAPABILITY');
    const refusal = '{"refused":true}';
    const seen = await answered((writer, res) => {
      writer.open();
      writer.fail(error, 1, () => {
        res.writeHead(400, { 'content-length': String(refusal.length) });
        res.end(refusal);
      });
    }, 200);
    expect(seen).toEqual({ status: 400, headers: { 'content-length': String(refusal.length) }, body: refusal });
  });

  it('fails with an error event once something went out, or when events are pending', async () => {
    const error = new ProxyError('MODERN_MISSING_CAPABILITY', { detail: { message: 'Missing required client capabilities: roots' } });
    const refuse = () => {
      throw new Error('not to be refused');
    };
    const after = await answered((writer) => {
      writer.write(event('{"n":1}'));
      writer.fail(error, 7, refuse);
    });
    expect(after.body.split('\n\n')[1]).toMatch(/^event: message\ndata: \{"jsonrpc":"2.0","id":7,"error":\{"code":-32021,/);
    const pending = await answered((writer) => writer.fail(error, 7, refuse, event('{"n":1}')));
    expect(pending.headers['content-type']).toBe('text/event-stream');
    expect(pending.body.startsWith(event('{"n":1}'))).toBe(true);
  });

  it('writes nothing to a response that is gone, and does not count it as an open stream', async () => {
    let wrote: boolean | undefined;
    server = createServer((_req, res) => {
      res.destroy();
      const writer = new AnswerWriter(res, metrics);
      wrote = writer.write(event('{"n":1}'));
      writer.end(ANSWER);
    });
    openStreams = 0;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    await expect(fetch(`http://127.0.0.1:${(server.address() as { port: number }).port}/`)).rejects.toThrow();
    expect(wrote).toBe(false);
    expect(openStreams).toBe(0);
  });
});
