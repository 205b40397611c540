/**
 * A round-robin HTTP load balancer for integration tests, in front of several proxy replicas.
 *
 * It picks the next backend for every REQUEST, not every connection: the SDK client reuses its
 * keep-alive connections, and a balancer that pinned a connection to one replica would hide
 * exactly what multi-replica tests want to see. Request and response bodies stream through
 * unbuffered in both directions (SSE answers flow event by event, and their headers go out at
 * once even before the first byte of body); status and headers are copied, minus hop-by-hop
 * headers. A backend that cannot be reached gets the client a 502. Backend connections are not
 * kept alive, so a killed replica never leaves a stale pooled socket behind.
 */
import { Agent, createServer, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
// The same hop-by-hop list (RFC 9110 §7.6.1) as the proxy's; a balancer follows the same rule.
import { HOP_BY_HOP } from '../../src/http/headers.js';

export interface Balancer {
  readonly port: number;
  readonly origin: string;
  /** The MCP endpoint through the balancer. */
  readonly url: string;
  /** Requests sent to each backend, in the order of the backends given. */
  readonly counts: readonly number[];
  /** Stop listening, cut every open connection (client and backend side), and wait. */
  close(): Promise<void>;
}

function endToEnd(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name) && !named.has(name)) out[name] = value;
  }
  return out;
}

/** Balance over backends given as origins (`http://127.0.0.1:PORT`) or ports. */
export async function startBalancer(backends: readonly (string | number)[], mcpPath = '/mcp'): Promise<Balancer> {
  if (backends.length === 0) throw new Error('a balancer needs at least one backend');
  const targets = backends.map((b) => new URL(typeof b === 'number' ? `http://127.0.0.1:${b}` : b));
  const counts = targets.map(() => 0);
  const agent = new Agent({ keepAlive: false });
  const inFlight = new Set<{ destroy(): void }>();
  let next = 0;

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const index = next;
    next = (next + 1) % targets.length;
    counts[index]!++;
    const target = targets[index]!;

    const upstream = request(
      {
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: endToEnd(req.headers),
        agent,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, endToEnd(answer.headers));
        // An SSE answer may send no byte of body for a long time: its headers must not wait.
        res.flushHeaders();
        answer.pipe(res);
        // The backend broke off the answer: break it off for the client too.
        answer.on('aborted', () => res.destroy());
        answer.on('error', () => res.destroy());
      },
    );
    inFlight.add(upstream);
    upstream.on('close', () => inFlight.delete(upstream));
    upstream.on('error', (error) => {
      if (!res.headersSent) {
        const body = JSON.stringify({ error: 'backend unreachable', backend: index, code: (error as NodeJS.ErrnoException).code });
        res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      } else {
        res.destroy();
      }
    });
    // The client went away before the answer was complete: abort the backend request too (a
    // GET event stream otherwise stays open on the replica for ever).
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.on('error', () => upstream.destroy());
    req.pipe(upstream);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const origin = `http://127.0.0.1:${port}`;

  return {
    port,
    origin,
    url: `${origin}${mcpPath}`,
    counts,
    async close() {
      const closed = once(server, 'close');
      server.close();
      server.closeAllConnections();
      for (const r of inFlight) r.destroy();
      agent.destroy();
      await closed;
    },
  };
}
