/**
 * The peers' way of serving a 2026-07-28 client in front of a legacy server, for comparison
 * (ToolHive's vMCP re-originates every request): for each modern request, a fresh upstream session
 * — initialize, notifications/initialized, the call, DELETE — then the answer. Kept as lean as the
 * approach allows (bare node:http, one undici pool, no logs), so the comparison measures the
 * approach, not an implementation's overhead. UPSTREAM_ORIGIN names the upstream; prints
 * {"event":"listening","port":N}.
 */
import { createServer, type ServerResponse } from 'node:http';
import { Pool } from 'undici';

const pool = new Pool(process.env.UPSTREAM_ORIGIN!, { connections: 64 });
const INIT = JSON.stringify({
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'reoriginating-proxy', version: '1' } },
});
const INITIALIZED = '{"jsonrpc":"2.0","method":"notifications/initialized"}';
const BASE = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };

async function post(body: string, sessionId?: string) {
  const headers = sessionId === undefined ? BASE : { ...BASE, 'mcp-session-id': sessionId };
  const res = await pool.request({ path: '/mcp', method: 'POST', headers, body });
  return {
    status: res.statusCode,
    sessionId: res.headers['mcp-session-id'] as string | undefined,
    contentType: String(res.headers['content-type'] ?? ''),
    text: await res.body.text(),
  };
}

/** The response's JSON: the body, or (an SDK server answers over SSE) its last event's data line. */
function responseText(text: string, contentType: string): string {
  if (!contentType.startsWith('text/event-stream')) return text;
  const data = text.split('\n').filter((line) => line.startsWith('data: '));
  return data[data.length - 1]!.slice('data: '.length);
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => void reoriginate(chunks, res));
});

/** One request: initialize, initialized, the request, DELETE, on a fresh upstream session. */
async function reoriginate(chunks: Buffer[], res: ServerResponse) {
  try {
    const request = JSON.parse(Buffer.concat(chunks).toString()) as { id: unknown; method: string; params: Record<string, unknown> };
    const { _meta: _envelope, ...params } = request.params;
    const opened = await post(INIT);
    await post(INITIALIZED, opened.sessionId);
    const answer = await post(JSON.stringify({ jsonrpc: '2.0', id: request.id, method: request.method, params }), opened.sessionId);
    const ended = await pool.request({ path: '/mcp', method: 'DELETE', headers: { ...BASE, 'mcp-session-id': opened.sessionId! } });
    await ended.body.dump();
    const message = JSON.parse(responseText(answer.text, answer.contentType)) as { result?: Record<string, unknown> };
    if (message.result) message.result.resultType = 'complete';
    const out = JSON.stringify(message);
    res.writeHead(answer.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) }).end(out);
  } catch {
    res.writeHead(502).end();
  }
}
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(JSON.stringify({ event: 'listening', port: typeof address === 'object' && address ? address.port : 0 }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
