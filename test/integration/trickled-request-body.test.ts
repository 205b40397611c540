/**
 * A body that trickles in is bounded in total, not only per pause (issue 20): a client sending a
 * byte now and then, each pause well within --body-timeout-ms, still gets 408 once the body falls
 * behind its allowance (--body-allowance-ms plus a second per --body-min-rate-bytes-per-s bytes).
 * The clients pace their own bytes (that is the behaviour under test); the assertions wait for
 * the proxy's answer, never for a time.
 */
import { connect as connectSocket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { useFixtureAndProxy } from '../helpers/fixture-and-proxy.js';

const INIT =
  '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"slow","version":"1"}}}';
/** A pause far longer than any the trickling clients make: only the total allowance can stop them. */
const PAUSE_MS = 60_000;
const MIN_RATE = 5; // bytes per second
const TRICKLE_EVERY_MS = 500; // 2 bytes per second: below the minimum rate
/** The most bytes a trickling client sends; the proxy must answer long before. */
const MAX_TRICKLED = 60;

interface Trickled {
  /** Everything the proxy sent before it closed the connection. */
  readonly answer: string;
  /** How many body bytes the client had sent when the answer began. */
  readonly sentWhenAnswered: number;
}

/** Headers announcing a 100000-byte body, then one byte every TRICKLE_EVERY_MS until the proxy answers. */
function trickle(port: number): Promise<Trickled> {
  return new Promise((resolve, reject) => {
    const socket = connectSocket(port, '127.0.0.1');
    let answer = '';
    let sent = 0;
    let sentWhenAnswered: number | undefined;
    let timer: NodeJS.Timeout | undefined;
    const next = () => {
      if (sentWhenAnswered !== undefined || sent >= MAX_TRICKLED) return;
      socket.write(' ', () => {
        sent++;
        timer = setTimeout(next, TRICKLE_EVERY_MS);
      });
    };
    socket.on('data', (d: Buffer) => {
      sentWhenAnswered ??= sent;
      answer += d.toString();
    });
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ answer, sentWhenAnswered: sentWhenAnswered ?? sent });
    });
    socket.write(
      'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\n' +
        'content-length: 100000\r\n\r\n',
      () => next(),
    );
  });
}

describe('a request body that trickles in', () => {
  const env = useFixtureAndProxy('sdk', {
    env: { BODY_TIMEOUT_MS: String(PAUSE_MS), BODY_ALLOWANCE_MS: '500', BODY_MIN_RATE_BYTES_PER_S: String(MIN_RATE) },
  });

  it('a byte at a time, below the minimum rate: 408 with a JSON-RPC error while it is still trickling, and the connection closed', async () => {
    const { answer, sentWhenAnswered } = await trickle(env.proxy.port);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toMatch(/\r\nconnection: close/i);
    expect(answer).toContain('"reason":"REQUEST_TIMEOUT"');
    // Answered on the rate, not by the pause timeout after the client gave up.
    expect(sentWhenAnswered).toBeLessThan(MAX_TRICKLED);
  });

  it('twenty trickling clients at once are all refused and closed', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, () => trickle(env.proxy.port)));
    for (const { answer, sentWhenAnswered } of results) {
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(sentWhenAnswered).toBeLessThan(MAX_TRICKLED);
    }
  });

  it('a body slower than the initial allowance but above the minimum rate is read as usual', async () => {
    // 15 bytes every 100 ms (150 B/s, thirty times the minimum): it takes about a second, twice
    // the 500 ms allowance, which grows with every chunk received.
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connectSocket(env.proxy.port, '127.0.0.1');
      let received = '';
      socket.on('error', reject);
      socket.on('data', (d: Buffer) => (received += d.toString()));
      socket.on('close', () => resolve(received));
      socket.write(
        'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nconnection: close\r\ncontent-type: application/json\r\n' +
          `accept: application/json, text/event-stream\r\ncontent-length: ${INIT.length}\r\n\r\n`,
      );
      const chunks = INIT.match(/.{1,15}/g)!;
      const next = () => {
        const chunk = chunks.shift();
        if (chunk !== undefined) socket.write(chunk, () => setTimeout(next, 100));
      };
      next();
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toMatch(/mcp-session-id: /i);
  });
});
