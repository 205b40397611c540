import { describe, expect, it } from 'vitest';
import { callText, connect } from '../helpers/client.js';
import { useFixtureAndProxy } from '../helpers/fixture-and-proxy.js';
import { startProxy } from '../helpers/processes.js';

const IDLE_MS = 60_000;

interface WhoAmI {
  clientInfo: { name: string; version: string };
  capabilities: Record<string, unknown>;
}

describe('TypeScript-SDK-style upstream that forgets sessions (404 "Session not found")', () => {
  // Sessions expire after a minute idle, which no test waits for: the idle test moves the
  // fixture's clock instead. (A 400 ms limit also expired sessions between two calls of the other
  // tests when the machine was busy: one replay too many.)
  const env = useFixtureAndProxy('sdk', { idleMs: IDLE_MS });

  it("replays the client's own initialize after the upstream drops every session; the client never notices", async () => {
    const c = await connect(env.proxy.url, 'dropper');
    const id = c.sessionId();
    const before = JSON.parse(await callText(c, 'whoami')) as WhoAmI;
    expect(before.clientInfo).toEqual({ name: 'dropper', version: '3.1.4' });

    await env.upstream.drop();
    expect(await callText(c, 'echo', { text: 'after drop' })).toBe('after drop');
    const after = JSON.parse(await callText(c, 'whoami')) as WhoAmI;
    // The upstream knows the same client as before: name, version and capabilities.
    expect(after).toEqual(before);
    expect(after.capabilities).toMatchObject({ sampling: {}, roots: { listChanged: true } });
    expect(c.sessionId()).toBe(id);

    const stats = await env.upstream.stats();
    expect(stats.initializes['dropper']).toBe(2);
    // The replay completed the handshake with the negotiated protocol version header.
    expect(stats.initializedProtocolHeaders.length).toBeGreaterThanOrEqual(2);
    expect(stats.initializedProtocolHeaders.at(-1)).toBe(c.transport.protocolVersion);
    expect(stats.requestsBeforeInitialized).toBe(0);
    // The upstream never saw the client-facing id, and the client never saw an upstream one.
    expect(stats.foreignIds).toEqual([]);
    expect(stats.issuedIds).not.toContain(id);
    await c.close();
  });

  it('recovers a session that expired upstream while idle', async () => {
    const c = await connect(env.proxy.url, 'idler');
    expect(await callText(c, 'echo', { text: 'a' })).toBe('a');
    await env.upstream.advance(IDLE_MS + 1); // idle past the fixture's limit
    expect(await callText(c, 'echo', { text: 'b' })).toBe('b');
    expect((await env.upstream.stats()).initializes['idler']).toBe(2);
    await c.close();
  });

  it('never replays on a tool error or a JSON-RPC error inside a 200', async () => {
    const c = await connect(env.proxy.url, 'erring');
    const failed = await c.client.callTool({ name: 'fail', arguments: {} });
    expect(failed.isError).toBe(true);
    const unknown = await c.client.callTool({ name: 'no-such-tool', arguments: {} });
    expect(unknown.isError).toBe(true);
    await expect(c.client.request({ method: 'no/such/method', params: {} }, {} as never)).rejects.toThrow();
    expect((await env.upstream.stats()).initializes['erring']).toBe(1);
    await c.close();
  });

  it('answers 404 for an unknown id, so spec-following clients re-initialize', async () => {
    const res = await fetch(env.proxy.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': 'x'.repeat(43) },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: -32001 } });
  });

  it('answers 400 with a JSON-RPC error when a request carries no session id (SESSIONLESS=reject; the default pools it)', async () => {
    const strict = await startProxy(env.upstream.mcpUrl, { SESSIONLESS: 'reject' });
    const res = await fetch(strict.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'n', method: 'tools/list' }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ jsonrpc: '2.0', id: 'n', error: { code: -32000 } });
  });
});
