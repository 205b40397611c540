import { describe, expect, it } from 'vitest';
import { useFixtureAndProxy } from '../helpers/fixture-and-proxy.js';
import { startProxy } from '../helpers/processes.js';

describe('paths other than the MCP endpoint', () => {
  const env = useFixtureAndProxy('sdk');

  it('pass through to the upstream origin unchanged, Authorization intact', async () => {
    const res = await fetch(`${env.proxy.origin}/.well-known/oauth-protected-resource`, {
      headers: { authorization: 'Bearer discovery-token-123' },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ resource: 'fixture', sawAuthorization: 'Bearer discovery-token-123' });
  });

  it("pass the upstream's own 404 through", async () => {
    const res = await fetch(`${env.proxy.origin}/nowhere`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'not found' });
  });

  it('never carry session ids, in either direction', async () => {
    const res = await fetch(`${env.proxy.origin}/.well-known/oauth-protected-resource`, {
      headers: { 'mcp-session-id': 'client-secret-id' },
    });
    expect(res.status).toBe(200);
    await res.text();
    expect((await env.upstream.stats()).foreignIds).not.toContain('client-secret-id');
  });

  it('treat //mcp as the MCP endpoint too', async () => {
    const res = await fetch(`${env.proxy.origin}//mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"d","version":"1"}}}',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('mcp-session-id')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await res.text();
  });

  it("treat /mcp/ as the MCP endpoint, never as a way around the proxy to the upstream's", async () => {
    const init = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'slash', version: '1' } },
    });
    const res = await fetch(`${env.proxy.origin}/mcp/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: init,
    });
    expect(res.status).toBe(200);
    // The proxy's own id (43 characters), not an upstream UUID.
    expect(res.headers.get('mcp-session-id')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await res.text();
  });

  it("refuse the upstream's MCP path when the proxy serves MCP elsewhere", async () => {
    const other = await startProxy(env.upstream.mcpUrl, { MCP_PATH: '/v2/mcp' });
    for (const path of ['/mcp', '/MCP', '/mcp/', '//mcp', '/%6Dcp', '/./mcp', '/%2e/mcp', '/x/../mcp']) {
      const res = await fetch(`${other.origin}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
      });
      expect(res.status, path).toBe(404);
      expect(await res.json()).toMatchObject({ error: { data: { reason: 'NOT_MCP_ENDPOINT' } } });
    }
  });

  it('answer other methods on the MCP path with 405 and an Allow header', async () => {
    const res = await fetch(env.proxy.url, { method: 'PUT', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, POST, DELETE');
    expect(await res.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32000 } });
  });
});
