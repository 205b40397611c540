import { once } from 'node:events';
import { request } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { callText, connect } from '../helpers/client.js';
import { killAll, startFixture, startProxy } from '../helpers/processes.js';

afterAll(killAll);

describe('the proxy process', () => {
  it('exits 0 on SIGTERM even with a GET event stream open (the stream is ended)', async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl);
    const c = await connect(proxy.url, 'open-stream');
    // The SDK client opens its GET event stream in the background right after connecting.
    await expect.poll(async () => (await upstream.stats()).protocolVersionsOnGet.length).toBe(1);
    const exited = once(proxy.child, 'exit');
    proxy.child.kill('SIGTERM');
    const [code] = await exited;
    expect(code).toBe(0);
    // The stream was open at SIGTERM and was ended (its access line is written when it closes).
    expect(proxy.output()).toMatch(/"method":"GET","path":"\/mcp","status":200/);
    await c.close();
    expect(proxy.output()).toContain('shutting down');
    expect(proxy.output()).not.toContain('grace period over');
  });

  it('lets a call in flight finish after SIGTERM, then exits 0; a second signal exits at once', async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl);
    const c = await connect(proxy.url, 'in-flight');
    let stopped: Promise<unknown> | undefined;
    // The gated tool waits after each progress event until the test releases it.
    const result = await c.client.callTool({ name: 'gated-progress', arguments: { steps: 2 } }, undefined, {
      onprogress: (p) => {
        if (p.progress === 1) {
          stopped = once(proxy.child, 'exit');
          proxy.child.kill('SIGTERM'); // shutdown starts while the call is in flight
        }
        void upstream.release();
      },
    });
    expect((result.content as Array<{ text: string }>)[0]!.text).toBe('done 2');
    expect(await stopped).toEqual([0, null]);

    const other = await startProxy(upstream.mcpUrl, { SHUTDOWN_GRACE_MS: '60000' });
    const c2 = await connect(other.url, 'stuck');
    // Cut by the forced exit below; the short timeout spares the SDK's default 60 s wait.
    const call = c2.client
      .callTool({ name: 'gated-progress', arguments: { steps: 1 } }, undefined, { timeout: 3000 })
      .catch(() => 'cut');
    await expect.poll(async () => (await upstream.stats()).initializes['stuck']).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 200)); // the call is now waiting at the gate
    const exited = once(other.child, 'exit');
    other.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(other.child.exitCode).toBeNull(); // still draining: the call holds it
    other.child.kill('SIGTERM');
    expect(await exited).toEqual([1, null]);
    expect(await call).toBe('cut');
  });

  it('handles Expect: 100-continue', async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl);
    const c = await connect(proxy.url, 'expecting');
    const body = JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' });
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(proxy.url, {
        method: 'POST',
        headers: {
          expect: '100-continue',
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-session-id': c.sessionId()!,
          'content-length': Buffer.byteLength(body),
        },
      });
      req.on('continue', () => req.end(body));
      req.on('response', (r) => {
        let t = '';
        r.on('data', (d: Buffer) => (t += d.toString()));
        r.on('end', () => resolve({ status: r.statusCode!, text: t }));
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    expect(status).toBe(200);
    expect(text).toContain('"tools"');
    expect(await callText(c, 'echo', { text: 'fine' })).toBe('fine');
    await c.close();
  });
});
