/**
 * Heap per pooled upstream session, measured in-process (node --expose-gc): pooled links made as
 * the route makes them (one per caller key: credential digest, clientInfo, capabilities) and opened
 * against an in-memory upstream that keeps nothing itself, so the heap holds only what the proxy
 * keeps: the pool's entry and key, the link, its initialize params and the upstream's
 * InitializeResult. Prints a JSON array.
 */
import { createHmac } from 'node:crypto';
import { Readable } from 'node:stream';
import pino from 'pino';
import { DEFAULT_LOSS_RULES } from '../src/mcp/loss.js';
import { createMetrics } from '../src/observability/metrics.js';
import type { LogId } from '../src/session/ids.js';
import { Cancellation, type UpstreamClient, type UpstreamRequest } from '../src/upstream/client.js';
import type { LinkDeps } from '../src/upstream/link.js';
import { createLinkPool } from '../src/upstream/pool.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const counts = (process.env.POOL_COUNTS ?? '2000,20000').split(',').map(Number);

// What a small real server answers initialize with (server-everything's is larger: instructions).
const RESULT = JSON.stringify({
  protocolVersion: '2025-11-25',
  capabilities: { tools: { listChanged: true }, logging: {} },
  serverInfo: { name: 'cheap', version: '1.0.0' },
});
let issued = 0;
const upstream: UpstreamClient = {
  async request(request: UpstreamRequest) {
    const body = request.body === undefined ? undefined : (JSON.parse(request.body.toString()) as { id?: unknown; method?: string });
    const text = body?.method === 'initialize' ? `{"jsonrpc":"2.0","id":${JSON.stringify(body.id)},"result":${RESULT}}` : '';
    return {
      statusCode: body?.method === 'initialize' ? 200 : 202,
      headers: { 'content-type': 'application/json', 'mcp-session-id': `0f8fad5b-d9cb-469f-a165-${String(++issued).padStart(12, '0')}` },
      body: Readable.from(text === '' ? [] : [Buffer.from(text)]),
    };
  },
  probe: async () => true,
  close: async () => undefined,
};
const deps: LinkDeps = {
  upstream,
  log: pino({ level: 'silent' }),
  metrics: createMetrics(false, () => 0),
  fingerprint: () => 'fp:000000000000' as LogId,
  loss: DEFAULT_LOSS_RULES,
  timeoutMs: 60_000,
  now: () => 0,
};
const initParams = JSON.stringify({
  protocolVersion: '2025-11-25',
  capabilities: {},
  clientInfo: { name: 'claude-code', version: '2.0.14' },
});

const results = [];
for (const count of counts) {
  const pool = createLinkPool(deps, { max: count, idleTtlMs: 3_600_000 });
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < count; i++) {
    // A credential digest per caller, as binding.of() makes them (32 bytes).
    const credential = createHmac('sha256', 'k').update(String(i)).digest();
    const link = pool.link({ credential, initParams, protocolVersion: '2025-11-25', logLevel: undefined });
    await link.describe({
      headers: {},
      body: undefined,
      initialized: false,
      versionFromLink: true,
      cancel: new Cancellation(),
      replayed: undefined,
    });
  }
  gc();
  const after = process.memoryUsage().heapUsed;
  if (pool.size !== count) throw new Error('pool lost sessions');
  results.push({ pooledSessions: count, heapBytesPerPooledSession: Math.round((after - before) / count) });
  pool.clear();
}
process.stdout.write(JSON.stringify(results) + '\n');
