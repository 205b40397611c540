import { describe, expect, it } from 'vitest';
import { connect, sessionHeaders } from '../helpers/client.js';
import { useFixtureAndProxy } from '../helpers/fixture-and-proxy.js';

describe('SSE answers stream through as they arrive', () => {
  const env = useFixtureAndProxy('sdk');

  it('delivers each progress notification before the tool may go on (a buffering proxy would stall it)', async () => {
    const c = await connect(env.proxy.url, 'gated');
    const seen: number[] = [];
    // The tool waits after each notification until the client has seen it (the fixture's gate).
    const result = await c.client.callTool({ name: 'gated-progress', arguments: { steps: 3 } }, undefined, {
      onprogress: (p) => {
        seen.push(p.progress);
        void env.upstream.release();
      },
    });
    expect(result.isError).toBeFalsy();
    expect((result.content as Array<{ text: string }>)[0]!.text).toBe('done 3');
    expect(seen).toEqual([1, 2, 3]);
    await c.close();
  });

  it('aborts the upstream request when the client disconnects mid-stream', async () => {
    const c = await connect(env.proxy.url, 'quitter');
    const before = (await env.upstream.stats()).abortedResponses;
    // A client that goes away: a raw request on the same session, dropped after the first event.
    const controller = new AbortController();
    const res = await fetch(env.proxy.url, {
      method: 'POST',
      signal: controller.signal,
      headers: sessionHeaders(c),
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 99,
        method: 'tools/call',
        params: { name: 'gated-progress', arguments: { steps: 2 }, _meta: { progressToken: 'p' } },
      }),
    });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain('notifications/progress');
    controller.abort();
    // The fixture counts answers whose connection closed before they were complete.
    await expect.poll(async () => (await env.upstream.stats()).abortedResponses).toBe(before + 1);
    await c.close();
  });
});
