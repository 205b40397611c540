import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, startFixture, startProxy, type Fixture, type Proxy } from '../helpers/processes.js';

describe('paths other than the MCP endpoint', () => {
  let upstream: Fixture;
  let proxy: Proxy;
  beforeAll(async () => {
    upstream = await startFixture('sdk');
    proxy = await startProxy(upstream.mcpUrl);
  });
  afterAll(killAll);

  it('pass through to the upstream origin unchanged, Authorization intact', async () => {
    const res = await fetch(`${proxy.origin}/.well-known/oauth-protected-resource`, {
      headers: { authorization: 'Bearer discovery-token-123' },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ resource: 'fixture', sawAuthorization: 'Bearer discovery-token-123' });
  });

  it('pass the upstream\'s own 404 through', async () => {
    const res = await fetch(`${proxy.origin}/nowhere`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'not found' });
  });

  it('answer other methods on the MCP path with 405 and an Allow header', async () => {
    const res = await fetch(proxy.url, { method: 'PUT', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, POST, DELETE');
    expect(await res.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32000 } });
  });
});
