import { describe, expect, it } from 'vitest';
import { callText, connect } from '../helpers/client.js';
import { useFixtureAndProxy } from '../helpers/fixture-and-proxy.js';
import { FIXTURE_TOOLS } from '../helpers/processes.js';

describe('stateless upstream (never returns Mcp-Session-Id)', () => {
  const env = useFixtureAndProxy('stateless');

  it('gives the client a stable proxy-minted id and every call works', async () => {
    const c = await connect(env.proxy.url, 'stateless-client');
    const id = c.sessionId();
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await callText(c, 'echo', { text: 'one' })).toBe('one');
    const tools = await c.client.listTools();
    expect(tools.tools.map((t) => t.name)).toEqual(FIXTURE_TOOLS);
    expect(await callText(c, 'echo', { text: 'two' })).toBe('two');
    expect(c.sessionId()).toBe(id);
    // The upstream never saw a session header: not the client's id, not anything else.
    const stats = await env.upstream.stats();
    expect(stats.sessionHeadersSeen).toBe(0);
    expect(stats.initializes['stateless-client']).toBe(1);
    await c.close();
  });

  it('DELETE ends the session and a later use of the id gets 404 with a JSON-RPC error', async () => {
    const c = await connect(env.proxy.url, 'stateless-deleter');
    const id = c.sessionId()!;
    await c.transport.terminateSession();
    const res = await fetch(env.proxy.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': id,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }),
    });
    expect(res.status).toBe(404);
    expect(res.headers.get('mcp-session-id')).toBeNull();
    expect(await res.json()).toMatchObject({ jsonrpc: '2.0', id: 7, error: { code: -32001, message: 'Session not found' } });
    await c.close();
  });
});
