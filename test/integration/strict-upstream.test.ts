import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callText, connect } from '../helpers/client.js';
import { killAll, startFixture, startProxy, type Fixture, type Proxy } from '../helpers/processes.js';

describe('python-sdk-style strict upstream (400 "No valid session ID provided", refuses requests before initialized)', () => {
  let upstream: Fixture;
  let proxy: Proxy;
  beforeAll(async () => {
    upstream = await startFixture('strict');
    proxy = await startProxy(upstream.mcpUrl);
  });
  afterAll(killAll);

  it('every call works, including after the upstream forgets the session', async () => {
    const c = await connect(proxy.url, 'strict-client');
    const id = c.sessionId();
    expect(await callText(c, 'echo', { text: 'one' })).toBe('one');
    await upstream.drop();
    expect(await callText(c, 'echo', { text: 'two' })).toBe('two');
    await upstream.drop();
    expect((await c.client.listTools()).tools.length).toBeGreaterThan(0);
    expect(c.sessionId()).toBe(id);
    const stats = await upstream.stats();
    expect(stats.initializes['strict-client']).toBe(3);
    // The replay sent notifications/initialized before retrying: nothing was refused for that.
    expect(stats.requestsBeforeInitialized).toBe(0);
    await c.close();
  });
});
