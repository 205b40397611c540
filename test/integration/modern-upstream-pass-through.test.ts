/**
 * A 2026-07-28 upstream (the TypeScript SDK v2 `createMcpHandler`, test/fixtures/modern-upstream.ts)
 * behind the proxy. With UPSTREAM_ERA=auto the proxy probes it once with server/discover and then
 * passes modern requests through untouched: the upstream sees the client's envelope and routing
 * headers, and never a session id. UPSTREAM_ERA=legacy translates onto a pooled session instead,
 * which a v2 handler serves statelessly. A legacy upstream replaced by a modern one on the same
 * port is found out again (the cached era is forgotten) and then passed through.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { connectModern, modernCallText } from '../helpers/modern-client.js';
import { killAll, startFixture, startModernFixture, startProxy } from '../helpers/processes.js';

afterAll(killAll);

const MODERN = '2026-07-28';

describe('UPSTREAM_ERA=auto in front of a modern upstream', () => {
  it('passes requests through untouched, after one probe, and keeps working across an upstream restart', async () => {
    // legacy: 'reject', so that anything the proxy translated would fail rather than pass unnoticed.
    let upstream = await startModernFixture({ legacy: 'reject' });
    const proxy = await startProxy(upstream.mcpUrl);
    const c = await connectModern(proxy.url, 'pass-through');
    expect(c.transport.sessionId).toBeUndefined();
    expect(c.client.getServerVersion()).toEqual({ name: 'modern-reject', version: '2.0.0' });

    expect((await c.client.listTools()).tools.map((t) => t.name)).toEqual(expect.arrayContaining(['echo', 'whoami']));
    expect(await modernCallText(c, 'echo', { text: 'through' })).toBe('through');
    // The upstream read the client's own envelope (a translating proxy would have sent its own initialize).
    expect(JSON.parse(await modernCallText(c, 'whoami'))).toEqual({
      clientInfo: { name: 'pass-through', version: '2.4.0' },
      capabilities: {},
    });

    const stats = await upstream.stats();
    // One server/discover from the proxy's probe, one from the client's connect; nothing else.
    expect(stats.discovers).toBe(2);
    expect(stats.methods).toEqual(['server/discover', 'server/discover', 'tools/list', 'tools/call', 'tools/call']);
    expect(stats.withEnvelope).toBe(stats.methods.length);
    expect(stats.withoutEnvelope).toBe(0);
    expect(stats.mcpMethodHeaders).toEqual(stats.methods);
    expect(stats.mcpNameHeaders).toEqual(['echo', 'whoami']);
    expect(stats.protocolVersionHeaders.every((v) => v === MODERN)).toBe(true);
    expect(stats.sessionIds).toEqual([]);
    expect(stats.initializes).toEqual([]);

    // A restart on the same port: the modern upstream keeps nothing, so there is nothing to lose.
    await upstream.stop();
    upstream = await startModernFixture({ legacy: 'reject', port: upstream.port });
    expect(await modernCallText(c, 'echo', { text: 'after restart' })).toBe('after restart');
    const after = await upstream.stats();
    expect(after.methods.filter((m) => m !== 'server/discover')).toEqual(['tools/call']);
    expect(after.withoutEnvelope).toBe(0);
    expect(after.sessionIds).toEqual([]);
    await c.close();
  });
});

describe('UPSTREAM_ERA=legacy in front of a modern upstream that serves legacy requests statelessly', () => {
  it('translates: the upstream sees 2025-era requests without the envelope, and answers them', async () => {
    const upstream = await startModernFixture({ legacy: 'stateless' });
    const proxy = await startProxy(upstream.mcpUrl, { UPSTREAM_ERA: 'legacy' });
    const c = await connectModern(proxy.url, 'forced-legacy');
    // server/discover is answered by the proxy, from the pooled session's InitializeResult.
    expect(c.client.getServerVersion()).toEqual({ name: 'modern-stateless', version: '2.0.0' });
    expect(await modernCallText(c, 'echo', { text: 'translated' })).toBe('translated');
    // A fresh server per legacy request never met the pooled session's initialize.
    expect(JSON.parse(await modernCallText(c, 'whoami'))).toEqual({ clientInfo: null, capabilities: null });

    const stats = await upstream.stats();
    expect(stats.discovers).toBe(0);
    expect(stats.withEnvelope).toBe(0);
    expect(stats.initializes).toEqual(['forced-legacy']);
    expect(stats.methods).toEqual(['initialize', 'notifications/initialized', 'tools/call', 'tools/call']);
    // Routing headers of the modern request are not sent with its translation; the version is the pooled session's.
    expect(stats.mcpMethodHeaders.every((v) => v === null)).toBe(true);
    expect(stats.mcpNameHeaders).toEqual([]);
    expect(stats.protocolVersionHeaders.slice(1).every((v) => v === '2025-11-25')).toBe(true);
    // The v2 handler never issues a session id, so the pooled session never presents one.
    expect(stats.sessionIds).toEqual([]);
    await c.close();
  });
});

describe('a legacy upstream replaced by a modern one on the same port (UPSTREAM_ERA=auto)', () => {
  it('a modern-only replacement refuses the translated session traffic (-32022): the proxy probes again and passes through', async () => {
    const legacy = await startFixture('sdk');
    const proxy = await startProxy(legacy.mcpUrl);
    const c = await connectModern(proxy.url, 'upgraded-reject');
    expect(await modernCallText(c, 'echo', { text: 'legacy' })).toBe('legacy');
    expect((await legacy.stats()).initializes['upgraded-reject']).toBe(1);

    await legacy.stop();
    const modern = await startModernFixture({ legacy: 'reject', port: legacy.port });
    expect(await modernCallText(c, 'echo', { text: 'modern' })).toBe('modern');
    expect(JSON.parse(await modernCallText(c, 'whoami'))).toEqual({
      clientInfo: { name: 'upgraded-reject', version: '2.4.0' },
      capabilities: {},
    });
    const stats = await modern.stats();
    // The translated request it refused, the proxy's new probe, then the client's requests untouched.
    expect(stats.methods).toEqual(['tools/call', 'server/discover', 'tools/call', 'tools/call']);
    expect(stats.withoutEnvelope).toBe(1);
    expect(stats.discovers).toBe(1);
    expect(stats.mcpMethodHeaders.slice(1)).toEqual(['server/discover', 'tools/call', 'tools/call']);
    await c.close();
  });

  it('with nothing failing in between, a dual-era replacement gets the translation, which its stateless legacy leg serves', async () => {
    const legacy = await startFixture('sdk');
    const proxy = await startProxy(legacy.mcpUrl);
    const c = await connectModern(proxy.url, 'upgraded-unnoticed');
    expect(await modernCallText(c, 'echo', { text: 'legacy' })).toBe('legacy');

    await legacy.stop();
    const modern = await startModernFixture({ legacy: 'stateless', port: legacy.port });
    // No loss (the v2 legacy leg ignores the old session id), no refusal, no connection failure:
    // the proxy has no reason to probe again and keeps translating, which works.
    expect(await modernCallText(c, 'echo', { text: 'still translated' })).toBe('still translated');
    const stats = await modern.stats();
    expect(stats.methods).toEqual(['tools/call']);
    expect(stats.withoutEnvelope).toBe(1);
    expect(stats.sessionIds).toHaveLength(1);
    await c.close();
  });

  it('after a connection failure while no upstream was there, the proxy probes again and passes through to a dual-era replacement', async () => {
    const legacy = await startFixture('sdk');
    // No retrying of refused connections: the request made while nothing listens fails at once.
    const proxy = await startProxy(legacy.mcpUrl, { UPSTREAM_RETRY_MS: '0' });
    const c = await connectModern(proxy.url, 'upgraded-stateless');
    expect(await modernCallText(c, 'echo', { text: 'legacy' })).toBe('legacy');

    await legacy.stop();
    await expect(modernCallText(c, 'echo', { text: 'nobody there' })).rejects.toThrow();
    const modern = await startModernFixture({ legacy: 'stateless', port: legacy.port });
    expect(await modernCallText(c, 'echo', { text: 'modern' })).toBe('modern');
    const stats = await modern.stats();
    expect(stats.methods).toEqual(['server/discover', 'tools/call']);
    expect(stats.withoutEnvelope).toBe(0);
    expect(stats.mcpMethodHeaders).toEqual(['server/discover', 'tools/call']);
    expect(stats.sessionIds).toEqual([]);
    await c.close();
  });
});
