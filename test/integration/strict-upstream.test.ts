import { describe, expect, it } from 'vitest';
import { callText, connect } from '../helpers/client.js';
import { useFixtureAndProxy } from '../helpers/fixture-and-proxy.js';
import { FIXTURE_TOOLS } from '../helpers/processes.js';

describe('python-sdk-style strict upstream (400 "No valid session ID provided", refuses requests before initialized)', () => {
  const env = useFixtureAndProxy('strict');

  it('every call works, including after the upstream forgets the session', async () => {
    const c = await connect(env.proxy.url, 'strict-client');
    const id = c.sessionId();
    expect(await callText(c, 'echo', { text: 'one' })).toBe('one');
    await env.upstream.drop();
    expect(await callText(c, 'echo', { text: 'two' })).toBe('two');
    await env.upstream.drop();
    expect((await c.client.listTools()).tools.map((t) => t.name)).toEqual(FIXTURE_TOOLS);
    expect(c.sessionId()).toBe(id);
    const stats = await env.upstream.stats();
    expect(stats.initializes['strict-client']).toBe(3);
    // The replay sent notifications/initialized before retrying: nothing was refused for that.
    expect(stats.requestsBeforeInitialized).toBe(0);
    await c.close();
  });
});
