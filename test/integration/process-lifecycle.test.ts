import { once } from 'node:events';
import { request } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { callText, connect } from '../helpers/client.js';
import { FIXTURE_TOOLS, killAll, startFixture, startProxy } from '../helpers/processes.js';

afterAll(killAll);

describe('the proxy process', () => {
  it('exits 0 on SIGTERM even with a GET event stream open (the stream is ended)', async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl);
    const c = await connect(proxy.url, 'open-stream');
    // The SDK client opens its GET event stream in the background right after connecting.
    await expect.poll(async () => (await upstream.stats()).protocolVersionsOnGet.length).toBe(1);
    await proxy.stop(); // SIGTERM; resolves once the process exited and its output ended
    expect(proxy.child.exitCode).toBe(0);
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
    // Cut by the forced exit below; the timeout spares the SDK's default 60 s wait, and is long
    // enough that it does not end the call itself before that on a busy machine.
    const call = c2.client.callTool({ name: 'gated-progress', arguments: { steps: 1 } }, undefined, { timeout: 15_000 }).catch(() => 'cut');
    await expect.poll(async () => (await upstream.stats()).gateWaiters).toBe(1); // the call is at the gate
    const exited = once(other.child, 'exit');
    other.child.kill('SIGTERM');
    await expect.poll(() => other.output()).toContain('"msg":"shutting down"'); // the signal was handled
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
    // JSON, or one SSE event carrying it: the answer to request 9, listing the fixture's tools.
    const json = text.startsWith('{')
      ? text
      : text
          .split('\n')
          .find((l) => l.startsWith('data: '))!
          .slice('data: '.length);
    const answer = JSON.parse(json) as { id: number; result: { tools: { name: string }[] } };
    expect(answer.id).toBe(9);
    expect(answer.result.tools.map((t) => t.name)).toEqual(FIXTURE_TOOLS);
    expect(await callText(c, 'echo', { text: 'fine' })).toBe('fine');
    await c.close();
  });
});
