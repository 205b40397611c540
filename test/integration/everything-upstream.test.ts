import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBalancer } from '../helpers/balancer.js';
import { connect } from '../helpers/client.js';
import { killAll, startEverything, startProxy, type Proxy } from '../helpers/processes.js';

describe('@modelcontextprotocol/server-everything as a real upstream', () => {
  let proxy: Proxy;
  beforeAll(async () => {
    const everything = await startEverything();
    // A page from another origin must be listed: the proxy listens on loopback (gate.ts).
    proxy = await startProxy(everything.mcpUrl, { ALLOWED_ORIGINS: 'https://app.example.com' });
  });
  afterAll(killAll);

  it('passes a CORS preflight from an allowed Origin on the MCP path to the upstream, which decides CORS', async () => {
    const res = await fetch(proxy.url, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-methods')).toMatch(/POST/);
  });

  it('streams every progress notification of a long-running tool, then its result', async () => {
    const c = await connect(proxy.url, 'progress-watcher');
    const events: string[] = [];
    const result = await c.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 4 } }, undefined, {
      onprogress: (p) => events.push(`progress ${p.progress}/${p.total}`),
    });
    events.push('result');
    expect(events).toEqual(['progress 1/4', 'progress 2/4', 'progress 3/4', 'progress 4/4', 'result']);
    expect(result.content).toEqual([{ type: 'text', text: 'Long running operation completed. Duration: 1 seconds, Steps: 4.' }]);
    await c.close();
  });

  it("carries a server-to-client sampling request and the client's answer through the session", async () => {
    const c = await connect(proxy.url, 'sampler');
    c.client.setRequestHandler(CreateMessageRequestSchema, async () => ({
      model: 'test-model',
      role: 'assistant',
      content: { type: 'text', text: 'sampled through the proxy' },
    }));
    const result = await c.client.callTool({
      name: 'trigger-sampling-request',
      arguments: { prompt: 'say something', maxTokens: 20 },
    });
    // server-everything answers with the client's sampling result, as JSON after a fixed prefix.
    const [first, ...others] = result.content as Array<{ type: string; text: string }>;
    expect(others).toEqual([]);
    expect(first!.type).toBe('text');
    const prefix = 'LLM sampling result: \n';
    expect(first!.text.slice(0, prefix.length)).toBe(prefix);
    expect(JSON.parse(first!.text.slice(prefix.length))).toEqual({
      model: 'test-model',
      role: 'assistant',
      content: { type: 'text', text: 'sampled through the proxy' },
    });
    await c.close();
  });
});

describe('@modelcontextprotocol/server-everything behind two proxy replicas with one session secret', () => {
  afterAll(killAll);

  it('one client session, its requests alternating between replicas, streams progress and calls tools on both', async () => {
    const everything = await startEverything();
    const secret = { SESSION_SECRET: randomBytes(32).toString('base64') };
    const replicas = [await startProxy(everything.mcpUrl, secret), await startProxy(everything.mcpUrl, secret)];
    const balancer = await startBalancer(replicas.map((r) => r.port));
    try {
      const c = await connect(balancer.url, 'replicated');
      const id = c.sessionId();
      for (let i = 0; i < 4; i++) {
        const result = await c.client.callTool({ name: 'echo', arguments: { message: `call ${i}` } });
        expect(result.content).toEqual([{ type: 'text', text: `Echo: call ${i}` }]);
      }
      const events: number[] = [];
      await c.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } }, undefined, {
        onprogress: (p) => events.push(p.progress),
      });
      expect(events).toEqual([1, 2, 3]);
      expect(c.sessionId()).toBe(id);
      // Both replicas served the session: the one that did not make it reopened it from its id.
      expect(balancer.counts.every((n) => n >= 3)).toBe(true);
      const reopened = await Promise.all(
        replicas.map(
          async (r) => /mcp_session_proxy_sessions_reopened_total (\d+)/.exec(await (await fetch(`${r.origin}/metrics`)).text())?.[1],
        ),
      );
      expect(reopened.sort()).toEqual(['0', '1']);
      await c.close();
    } finally {
      await balancer.close();
    }
  });
});
