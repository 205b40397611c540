/**
 * A deliberately cheap stateful MCP upstream for benchmarks, on bare node:http, so that what a
 * benchmark measures is the proxy's own cost. It issues a session id on initialize, answers 404
 * for unknown ids, answers tools/call with a fixed small JSON result, and for the tool `stream`
 * answers over SSE with `count` progress notifications before the result. With
 * CHEAP_UPSTREAM_ERA=modern it speaks only 2026-07-28 instead: requests with the envelope in
 * `_meta` are answered statelessly (server/discover and tools/call). Without it, it is a legacy
 * server through and through (a 2026 request without a session gets what a legacy server gives):
 * a proxy in front of it must translate 2026-07-28 requests, not pass them through.
 *
 * The tool `ask` asks the client one question as a legacy server does (MRTR, bench/mrtr.ts): an
 * `elicitation/create` request on its SSE answer; the client's JSON-RPC response (a POST, 202)
 * releases the result on that stream.
 *
 * Prints {"event":"listening","port":N}. POST /admin/forget drops every session (a replay storm);
 * GET /admin/stats reports how many initializes it has seen.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';

const sessions = new Set<string>();
let initializes = 0;
/** `ask` answers waiting for the client's answer: the elicitation's id (JSON) → its SSE answer. */
const asking = new Map<string, { readonly res: ServerResponse; readonly id: unknown }>();
let questions = 0;
const QUESTION = (id: string) =>
  `event: message\ndata: {"jsonrpc":"2.0","id":"${id}","method":"elicitation/create","params":{"message":"Your name?","requestedSchema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}}\n\n`;

const RESULT = (id: unknown) => `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":{"content":[{"type":"text","text":"ok"}]}}`;

function json(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

const MODERN_ONLY = process.env.CHEAP_UPSTREAM_ERA === 'modern';

const server = createServer((req, res) => {
  if (req.url === '/admin/forget') {
    sessions.clear();
    return json(res, 200, '{}');
  }
  if (req.url === '/admin/stats') return json(res, 200, JSON.stringify({ initializes, sessions: sessions.size }));
  if (req.method === 'GET') return json(res, 405, '{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Method not allowed"}}');
  const sid = req.headers['mcp-session-id'];
  if (req.method === 'DELETE') {
    if (typeof sid === 'string') sessions.delete(sid);
    return json(res, 200, '');
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const message = JSON.parse(Buffer.concat(chunks).toString()) as {
      id?: unknown;
      method?: string;
      params?: { name?: string; arguments?: { count?: number }; _meta?: { progressToken?: unknown } };
    };
    // A 2026-07-28 request (the proxy holding a 2025 client's session, UPSTREAM_ERA=modern): no
    // session, the envelope in _meta, resultType on every result.
    const meta = message.params?._meta as Record<string, unknown> | undefined;
    if (MODERN_ONLY && meta !== undefined && 'io.modelcontextprotocol/protocolVersion' in meta) {
      const id = JSON.stringify(message.id);
      if (message.method === 'server/discover') {
        return json(
          res,
          200,
          `{"jsonrpc":"2.0","id":${id},"result":{"resultType":"complete","supportedVersions":["2026-07-28"],"capabilities":{"tools":{}},"ttlMs":0,"cacheScope":"private","_meta":{"io.modelcontextprotocol/serverInfo":{"name":"cheap","version":"1"}}}}`,
        );
      }
      // As the v2 SDK server frames it (result first, serverInfo in _meta).
      if (message.method === 'tools/call') {
        return json(
          res,
          200,
          `{"result":{"content":[{"type":"text","text":"ok"}],"resultType":"complete","_meta":{"io.modelcontextprotocol/serverInfo":{"name":"cheap","version":"1"}}},"jsonrpc":"2.0","id":${id}}`,
        );
      }
      return json(res, 404, `{"jsonrpc":"2.0","id":${id},"error":{"code":-32601,"message":"Method not found"}}`);
    }
    if (message.method === 'initialize') {
      initializes++;
      const id = randomUUID();
      sessions.add(id);
      return json(
        res,
        200,
        `{"jsonrpc":"2.0","id":${JSON.stringify(message.id)},"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"cheap","version":"1"}}}`,
        { 'mcp-session-id': id },
      );
    }
    if (typeof sid !== 'string' || !sessions.has(sid)) {
      return json(res, 404, '{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}');
    }
    if (message.id === undefined) {
      res.writeHead(202).end();
      return;
    }
    if (message.method === undefined) {
      // The client's answer to a question of `ask`: its result follows on the asking stream.
      res.writeHead(202).end();
      const key = JSON.stringify(message.id);
      const waiting = asking.get(key);
      asking.delete(key);
      waiting?.res.end(`event: message\ndata: ${RESULT(waiting.id)}\n\n`);
      return;
    }
    if (message.method === 'tools/call' && message.params?.name === 'ask') {
      const question = `q${++questions}`;
      const key = JSON.stringify(question);
      asking.set(key, { res, id: message.id });
      res.once('close', () => asking.delete(key));
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(QUESTION(question));
      return;
    }
    if (message.method === 'tools/call' && message.params?.name === 'stream') {
      const count = message.params.arguments?.count ?? 100;
      const token = JSON.stringify(message.params._meta?.progressToken ?? 0);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      for (let i = 1; i <= count; i++) {
        res.write(
          `event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":${token},"progress":${i},"total":${count}}}\n\n`,
        );
      }
      res.end(`event: message\ndata: ${RESULT(message.id)}\n\n`);
      return;
    }
    return json(res, 200, RESULT(message.id));
  });
});

server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(JSON.stringify({ event: 'listening', port: typeof address === 'object' && address ? address.port : 0 }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
