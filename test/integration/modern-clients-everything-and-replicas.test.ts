/**
 * A 2026-07-28 client (TS SDK v2, pinned) in front of @modelcontextprotocol/server-everything, a
 * real legacy server, restarted mid-run; and through two proxy replicas behind a round-robin
 * balancer, with no session secret and no sticky routing: any replica serves any request from
 * its own pool.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startBalancer } from '../helpers/balancer.js';
import { connectModern } from '../helpers/modern-client.js';
import { killAll, startEverything, startFixture, startProxy } from '../helpers/processes.js';

afterAll(killAll);

async function echo(c: Awaited<ReturnType<typeof connectModern>>, message: string): Promise<string> {
  const result = await c.client.callTool({ name: 'echo', arguments: { message } });
  return JSON.stringify(result.content);
}

describe('server-everything as the legacy upstream of a 2026-07-28 client', () => {
  it('lists and calls tools, streams progress, and rides out the server restarting', async () => {
    const everything = await startEverything();
    const proxy = await startProxy(everything.mcpUrl);
    const c = await connectModern(proxy.url, 'modern-everything');
    expect(c.transport.sessionId).toBeUndefined();
    const tools = await c.client.listTools();
    expect(tools.tools.map((t) => t.name)).toEqual(expect.arrayContaining(['echo', 'trigger-long-running-operation']));
    expect(await echo(c, 'hello')).toContain('hello');

    const events: string[] = [];
    await c.client.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 4 } },
      { onprogress: (p) => events.push(`${p.progress}/${p.total}`) },
    );
    expect(events).toEqual(['1/4', '2/4', '3/4', '4/4']);

    // Killed and started again on the same port: the pooled session is gone with it.
    await everything.kill();
    // Started again on its port (killAll ends it).
    await startEverything(everything.port);
    expect(await echo(c, 'after restart')).toContain('after restart');
    await c.close();
  });
});

describe('two proxy replicas behind round robin, no session secret', () => {
  it('every request of a 2026-07-28 client lands on alternating replicas, each serving it from its own pool', async () => {
    const upstream = await startFixture('strict');
    const replicas = [await startProxy(upstream.mcpUrl), await startProxy(upstream.mcpUrl)];
    const balancer = await startBalancer(replicas.map((r) => r.port));
    try {
      const c = await connectModern(balancer.url, 'replicated-modern');
      for (let i = 0; i < 6; i++) {
        const result = await c.client.callTool({ name: 'echo', arguments: { text: `call ${i}` } });
        expect((result.content as Array<{ text: string }>)[0]!.text).toBe(`call ${i}`);
      }
      expect(balancer.counts.every((n) => n >= 3)).toBe(true);
      // Each replica opened one pooled upstream session of its own for this client.
      expect((await upstream.stats()).initializes['replicated-modern']).toBe(2);
      await c.close();
    } finally {
      await balancer.close();
    }
  });
});
