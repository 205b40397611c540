/**
 * 2026-07-28 clients (the TypeScript SDK v2 client, unmodified, pinned to 2026-07-28 and in auto
 * mode) through the proxy in front of legacy upstreams built on the v1 SDK: the proxy carries
 * the session a legacy server needs, on a pooled upstream session, and the client never knows.
 * Each upstream is restarted mid-run.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { connectModern, modernCallText } from '../helpers/modern-client.js';
import { FIXTURE_TOOLS, killAll, startFixture, startProxy, type FixtureMode } from '../helpers/processes.js';

afterAll(killAll);

describe.each<FixtureMode>(['strict', 'sdk', 'rotating', 'stateless'])('a pinned 2026-07-28 client, legacy %s upstream', (mode) => {
  it('discovers, lists, calls, gets progress live, and does not notice the upstream restarting', async () => {
    let upstream = await startFixture(mode);
    const proxy = await startProxy(upstream.mcpUrl);
    const name = `pinned-${mode}`;
    const c = await connectModern(proxy.url, name);
    // No session anywhere on the client side: it speaks 2026-07-28 end to end.
    expect(c.transport.sessionId).toBeUndefined();
    expect(c.client.getServerVersion()).toEqual({ name: `legacy-${mode}`, version: '1.0.0' });
    expect(c.client.getServerCapabilities()).toMatchObject({ tools: {}, logging: {}, resources: {} });

    const tools = await c.client.listTools();
    expect(tools.tools.map((t) => t.name)).toEqual(FIXTURE_TOOLS);
    expect(await modernCallText(c, 'echo', { text: 'one' })).toBe('one');
    // The upstream met this client as the client it is: its own clientInfo and capabilities (a
    // stateless server builds a fresh server per request, which never sees an initialize).
    expect(JSON.parse(await modernCallText(c, 'whoami'))).toEqual(
      mode === 'stateless' ? { clientInfo: null, capabilities: null } : { clientInfo: { name, version: '2.4.0' }, capabilities: {} },
    );

    // Each progress step is released by the fixture only once the client has seen it.
    const progress: number[] = [];
    const done = await c.client.callTool(
      { name: 'gated-progress', arguments: { steps: 3 } },
      {
        onprogress: (p) => {
          progress.push(p.progress);
          void upstream.release();
        },
      },
    );
    expect((done.content as Array<{ text: string }>)[0]!.text).toBe('done 3');
    expect(progress).toEqual([1, 2, 3]);

    const failed = await c.client.callTool({ name: 'fail', arguments: {} });
    expect(failed.isError).toBe(true);

    // A graceful restart on the same port: every upstream session is gone.
    const before = await upstream.stats();
    await upstream.stop();
    upstream = await startFixture(mode, { port: upstream.port });
    expect(await modernCallText(c, 'echo', { text: 'after restart' })).toBe('after restart');
    const stats = await upstream.stats();
    // The new process met the pooled session's replay once (a stateless server keeps nothing to lose,
    // and its fresh process initialises nothing: every request is served without a session).
    expect(stats.initializes[name] ?? 0).toBe(mode === 'stateless' ? 0 : 1);
    // The only ids the new process did not issue are the old process's (the request that met the
    // loss): never anything of the client's.
    for (const id of stats.foreignIds) expect(before.issuedIds).toContain(id);
    expect(stats.requestsBeforeInitialized).toBe(0);
    await c.close();
  });
});

describe('the TypeScript SDK v2 client in auto mode', () => {
  it('probes with server/discover, which the proxy answers for the legacy upstream, and goes modern', async () => {
    const upstream = await startFixture('strict');
    const proxy = await startProxy(upstream.mcpUrl);
    const c = await connectModern(proxy.url, 'auto-client', { mode: 'auto' });
    expect(c.transport.sessionId).toBeUndefined();
    expect(await modernCallText(c, 'echo', { text: 'auto' })).toBe('auto');
    await upstream.drop();
    expect(await modernCallText(c, 'echo', { text: 'after drop' })).toBe('after drop');
    // Its pooled upstream session: opened once, replayed once after the drop.
    expect((await upstream.stats()).initializes['auto-client']).toBe(2);
    await c.close();
  });
});
