/**
 * Resets right after sending (an upstream restarting: its pooled connections close one after
 * another) are retried, however many stale connections the pool held (upstream/client.ts), with
 * a real socket server that resets the first requests it reads.
 */
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createUpstreamClient } from '../../src/upstream/client.js';

const ANSWER = 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}';

/** A server that resets the first `resets` requests as soon as it has read their bytes, then answers. */
async function resettingServer(resets: number): Promise<{ server: Server; url: URL; seen: () => number }> {
  let seen = 0;
  const server = createServer((socket: Socket) => {
    socket.once('data', () => {
      seen++;
      if (seen <= resets) socket.resetAndDestroy();
      else socket.end(ANSWER);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return { server, url: new URL(`http://127.0.0.1:${port}/mcp`), seen: () => seen };
}

let server: Server | undefined;
afterEach(() => server?.close());

const client = (url: URL, resetRetryWindowMs: number) =>
  createUpstreamClient({ url, headersTimeoutMs: 5000, connectTimeoutMs: 5000, connectRetryMs: 5000, resetRetryWindowMs });
const post = { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' } as const;

describe('a POST reset right after it was sent', () => {
  it('is sent again as long as the resets keep coming right after sending (a restart closing many pooled connections)', async () => {
    const upstream = await resettingServer(5);
    server = upstream.server;
    const answer = await client(upstream.url, 1000).request(post);
    expect(answer.statusCode).toBe(200);
    await answer.body.toArray();
    expect(upstream.seen()).toBe(6);
  });

  it('is not sent again when resets are not to be retried (window 0): 502 UPSTREAM_UNAVAILABLE', async () => {
    const upstream = await resettingServer(1);
    server = upstream.server;
    await expect(client(upstream.url, 0).request(post)).rejects.toMatchObject({ reason: 'UPSTREAM_UNAVAILABLE' });
    expect(upstream.seen()).toBe(1);
  });
});
