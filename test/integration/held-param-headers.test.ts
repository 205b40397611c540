/**
 * Tools whose inputSchema declares `x-mcp-header` (SEP-2243), called by a 2025-era client (the v1
 * SDK Client, which knows nothing of Mcp-Param-*) through the proxy holding its session: the
 * proxy adds the headers the 2026-07-28-only upstream requires, learnt from tools/list answers or,
 * when none went by on this replica, from a tools/list of its own after the upstream's -32020.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { startBalancer } from '../helpers/balancer.js';
import { callText, connect } from '../helpers/client.js';
import { killAll, startModernFixture, startProxy } from '../helpers/processes.js';

afterAll(killAll);

describe('Mcp-Param-* headers for a held session', () => {
  it('are added from what tools/list declared, base64 for non-ASCII values, and learnt on demand', async () => {
    const upstream = await startModernFixture({ legacy: 'reject' });
    const proxy = await startProxy(upstream.mcpUrl, { UPSTREAM_ERA: 'modern' });
    const c = await connect(proxy.url, 'param-client');
    const regional = (await c.client.listTools()).tools.find((t) => t.name === 'regional');
    expect(regional?.inputSchema.properties).toMatchObject({ region: { 'x-mcp-header': 'Region' } });
    expect(await callText(c, 'regional', { region: 'eu-west', priority: 3, note: 'n' })).toBe('eu-west:3');
    expect(await callText(c, 'regional', { region: 'zürich' })).toBe('zürich:-');
    expect((await upstream.stats()).paramHeaders).toEqual([
      { 'mcp-param-region': 'eu-west', 'mcp-param-priority': '3' },
      { 'mcp-param-region': `=?base64?${Buffer.from('zürich').toString('base64')}?=` },
    ]);

    // A session that never listed tools: refused once (-32020), learnt, sent again.
    const direct = await connect(proxy.url, 'direct-client');
    const before = (await upstream.stats()).methods.length;
    expect(await callText(direct, 'regional', { region: 'ap' })).toBe('ap:-');
    expect((await upstream.stats()).methods.slice(before).filter((m) => m !== 'subscriptions/listen')).toEqual([
      'tools/call',
      'tools/list',
      'tools/call',
    ]);
    // Learnt for the session: no refusal the second time.
    expect(await callText(direct, 'regional', { region: 'us' })).toBe('us:-');
    await c.close();
    await direct.close();
  });

  it('two replicas round robin: the replica that did not see tools/list learns it itself', async () => {
    const upstream = await startModernFixture({ legacy: 'reject' });
    const env = { SESSION_SECRET: randomBytes(32).toString('base64'), UPSTREAM_ERA: 'modern' };
    const a = await startProxy(upstream.mcpUrl, env);
    const b = await startProxy(upstream.mcpUrl, env);
    const balancer = await startBalancer([a.origin, b.origin]);
    const c = await connect(balancer.url, 'replicated');
    await c.client.listTools();
    for (let i = 0; i < 4; i++) expect(await callText(c, 'regional', { region: `r${i}`, priority: i })).toBe(`r${i}:${i}`);
    expect(balancer.counts.every((n) => n > 1)).toBe(true);
    await c.close();
  });
});
