import { describe, expect, it } from 'vitest';
import { callText, connectSettled } from '../helpers/client.js';
import { useFixtureAndProxy } from '../helpers/fixture-and-proxy.js';

describe('upstream that issues a new Mcp-Session-Id on every answer', () => {
  const env = useFixtureAndProxy('rotating');

  it('follows the newest upstream id while the client id never changes', async () => {
    // The SDK client opens its GET stream in the background; two requests in flight at once may
    // legitimately carry the same (soon previous) id, so count from once the stream is open.
    const c = await connectSettled(env.proxy.url, 'rotated', env.upstream);
    const id = c.sessionId();
    expect(await callText(c, 'echo', { text: 'first' })).toBe('first');
    const before = await env.upstream.stats();
    for (let i = 0; i < 5; i++) expect(await callText(c, 'echo', { text: `n${i}` })).toBe(`n${i}`);
    expect(c.sessionId()).toBe(id);
    const stats = await env.upstream.stats();
    // One new upstream id per answer, each one followed by the next call.
    expect(stats.issuedIds.length - before.issuedIds.length).toBe(5);
    expect(stats.issuedIds).not.toContain(id);
    expect(stats.staleIdUses).toBe(before.staleIdUses);
    expect(stats.initializes['rotated']).toBe(1);
    await c.close();
  });
});
