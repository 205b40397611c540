/**
 * 2025-era clients (the official v1 SDK `Client`, unmodified) in front of a 2026-07-28-only
 * upstream (the v2 SDK's createMcpHandler with `legacy: 'reject'`, which answers every 2025-era
 * request 400 -32022): the proxy holds the session itself and translates each request. The
 * upstream must never see a 2025-era request once the proxy knows its era, nor any session id.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { startBalancer } from '../helpers/balancer.js';
import { callText, connect, sessionHeaders } from '../helpers/client.js';
import { expectNoSecretsInLogs } from '../helpers/log-audit.js';
import { killAll, startModernFixture, startProxy } from '../helpers/processes.js';

afterAll(killAll);

const logDir = mkdtempSync(join(tmpdir(), 'held-sessions-'));

describe('a v1 SDK client in front of a modern-only upstream', () => {
  it('gets a session the proxy holds: initialize from server/discover, every request in the 2026 envelope, across an upstream restart', async () => {
    let upstream = await startModernFixture({ legacy: 'reject' });
    const logFile = join(logDir, 'proxy.log');
    const proxy = await startProxy(upstream.mcpUrl, { LOG_LEVEL: 'trace' }, '0', logFile);
    const c = await connect(proxy.url, 'legacy-client');
    const sessionId = c.sessionId()!;
    expect(sessionId).toMatch(/^[\w-]{20,}$/);
    // The identity and capabilities come from the upstream's server/discover.
    expect(c.client.getServerVersion()).toEqual({ name: 'modern-reject', version: '2.0.0' });
    expect(c.client.getServerCapabilities()).toMatchObject({ tools: {}, logging: {} });
    expect(c.transport.protocolVersion).toBe('2025-11-25');

    expect((await c.client.listTools()).tools.map((t) => t.name)).toEqual(expect.arrayContaining(['echo', 'whoami']));
    expect(await callText(c, 'echo', { text: 'from 2025' })).toBe('from 2025');
    // The upstream read the legacy client's own identity and capabilities, from the envelope.
    expect(JSON.parse(await callText(c, 'whoami'))).toEqual({
      clientInfo: { name: 'legacy-client', version: '3.1.4' },
      capabilities: { sampling: {}, roots: { listChanged: true } },
    });
    // Answered by the proxy: 2026-07-28 removed them.
    await c.client.ping();
    await c.client.setLoggingLevel('warning');
    expect(await callText(c, 'echo', { text: 'after setLevel' })).toBe('after setLevel');
    // An unknown tool: the upstream's error, as a JSON-RPC error the client can read.
    const unknown = await c.client.callTool({ name: 'nope', arguments: {} }).catch((error: unknown) => error);
    expect(unknown).toBeInstanceOf(McpError);
    expect((unknown as McpError).code).toBe(-32602);

    const stats = await upstream.stats();
    // The client's own GET stream became a subscriptions/listen (held-event-stream.test.ts), at
    // whatever point the SDK opened it.
    expect(stats.methods.filter((m) => m === 'subscriptions/listen')).toHaveLength(1);
    const requests = stats.methods.filter((m) => m !== 'subscriptions/listen');
    // The first initialize went upstream (and was refused: that is how the proxy found out), then
    // the era probe; after that only 2026-07-28 requests, never a session id.
    expect(requests).toEqual([
      'initialize',
      'server/discover',
      'server/discover',
      'tools/list',
      'tools/call',
      'tools/call',
      'tools/call',
      'tools/call',
    ]);
    expect(stats.withoutEnvelope).toBe(1);
    expect(stats.sessionIds).toEqual([]);
    expect(stats.mcpMethodHeaders.slice(1)).toEqual(stats.methods.slice(1));
    expect(stats.mcpNameHeaders).toEqual(['echo', 'whoami', 'echo', 'nope']);
    expect(stats.protocolVersionHeaders.slice(1).every((v) => v === '2026-07-28')).toBe(true);
    // logging/setLevel is kept on the session and sent as each later request's logLevel.
    expect(stats.logLevels.filter((_, i) => stats.methods[i + 1] !== 'subscriptions/listen')).toEqual([
      null,
      null,
      null,
      null,
      null,
      'warning',
      'warning',
    ]);

    // The upstream restarts: it kept nothing, and the client notices nothing.
    await upstream.stop();
    upstream = await startModernFixture({ legacy: 'reject', port: upstream.port });
    expect(await callText(c, 'echo', { text: 'after restart' })).toBe('after restart');
    expect(c.sessionId()).toBe(sessionId);
    const after = await upstream.stats();
    // (and the client's stream listens again there: held-event-stream.test.ts)
    expect(after.methods.filter((m) => m !== 'subscriptions/listen')).toEqual(['tools/call']);
    expect(after.withoutEnvelope).toBe(0);

    // A new client now needs no refused initialize: the era is known.
    const second = await connect(proxy.url, 'second-client');
    expect(await callText(second, 'echo', { text: 'second' })).toBe('second');
    expect((await upstream.stats()).initializes).toEqual([]);

    // A batch cannot be sent on to a 2026-07-28 server.
    const batch = await fetch(proxy.url, {
      method: 'POST',
      headers: sessionHeaders(c),
      body: JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'ping' }]),
    });
    expect(batch.status).toBe(400);
    expect(await batch.json()).toMatchObject({ error: { code: -32600, data: { reason: 'HELD_BATCH' } } });

    // DELETE ends the session; the id is unknown afterwards.
    await c.transport.terminateSession();
    const gone = await fetch(proxy.url, {
      method: 'POST',
      headers: sessionHeaders(c),
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
    });
    expect(gone.status).toBe(404);
    await c.close();
    await second.close();

    await proxy.stop();
    expectNoSecretsInLogs([readFileSync(logFile, 'utf8')], [sessionId, second.sessionId()!]);
  });

  it('with UPSTREAM_ERA=modern, never sends a 2025-era request; two replicas with a session secret serve one session round robin', async () => {
    const upstream = await startModernFixture({ legacy: 'reject' });
    const secret = { SESSION_SECRET: randomBytes(32).toString('base64'), UPSTREAM_ERA: 'modern' };
    const a = await startProxy(upstream.mcpUrl, secret);
    const b = await startProxy(upstream.mcpUrl, secret);
    const balancer = await startBalancer([a.origin, b.origin]);
    const c = await connect(balancer.url, 'replicated');
    const id = c.sessionId();
    for (let i = 0; i < 6; i++) expect(await callText(c, 'echo', { text: `call ${i}` })).toBe(`call ${i}`);
    await c.client.setLoggingLevel('error');
    expect(JSON.parse(await callText(c, 'whoami'))).toMatchObject({ clientInfo: { name: 'replicated', version: '3.1.4' } });
    expect(c.sessionId()).toBe(id);
    // Both replicas served the session (round robin), and the upstream never saw a 2025 request.
    expect(balancer.counts.every((n) => n > 2)).toBe(true);
    const stats = await upstream.stats();
    expect(stats.withoutEnvelope).toBe(0);
    expect(stats.initializes).toEqual([]);
    expect(stats.sessionIds).toEqual([]);
    await c.close();
  });
});
