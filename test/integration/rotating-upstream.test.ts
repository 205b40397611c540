import { describe, expect, it } from 'vitest';
import { callText, connect } from '../helpers/client.js';
import { useFixtureAndProxy } from '../helpers/fixture-and-proxy.js';

describe('upstream that issues a new Mcp-Session-Id on every answer', () => {
  const env = useFixtureAndProxy('rotating');

  it('follows the newest upstream id while the client id never changes', async () => {
    const c = await connect(env.proxy.url, 'rotated');
    const id = c.sessionId();
    // The SDK client opens its GET stream in the background, concurrently with the first call;
    // two requests in flight at once may legitimately carry the same (soon previous) id.
    expect(await callText(c, 'echo', { text: 'first' })).toBe('first');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const staleBefore = (await env.upstream.stats()).staleIdUses;
    for (let i = 0; i < 5; i++) expect(await callText(c, 'echo', { text: `n${i}` })).toBe(`n${i}`);
    expect(c.sessionId()).toBe(id);
    const stats = await env.upstream.stats();
    expect(stats.issuedIds.length).toBeGreaterThan(5);
    expect(stats.issuedIds).not.toContain(id);
    expect(stats.staleIdUses).toBe(staleBefore);
    expect(stats.initializes['rotated']).toBe(1);
    await c.close();
  });
});
