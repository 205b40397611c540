import { describe, expect, it } from 'vitest';
import { connect, connectSettled, sessionHeaders } from '../helpers/client.js';
import { useFixtureAndProxy } from '../helpers/fixture-and-proxy.js';
import { startFixture, startProxy } from '../helpers/processes.js';

function getStream(url: string, sessionId: string, extra: Record<string, string> = {}) {
  return fetch(url, { method: 'GET', headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId, ...extra } });
}

describe('GET (server-to-client stream) and DELETE', () => {
  const env = useFixtureAndProxy('sdk');

  it('replays a lost upstream session before the stream opens, and forwards Last-Event-ID and the protocol version', async () => {
    const c = await connectSettled(env.proxy.url, 'streamer', env.upstream);
    await env.upstream.drop();
    const res = await getStream(env.proxy.url, c.sessionId()!, {
      'last-event-id': 'evt-41',
      'mcp-protocol-version': c.transport.protocolVersion!,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    expect(res.headers.get('mcp-session-id')).toBe(c.sessionId());
    await res.body!.cancel();
    const stats = await env.upstream.stats();
    expect(stats.initializes['streamer']).toBe(2);
    // Forwarded on the first attempt; dropped on the retry, since the new upstream session never
    // issued that event id.
    expect(stats.lastEventIds.filter((id) => id === 'evt-41')).toHaveLength(1);
    expect(stats.protocolVersionsOnGet).toContain(c.transport.protocolVersion);
    expect(stats.protocolVersionsOnGet).not.toContain(null);
    await c.close();
  });

  it('passes a 405 from an upstream without GET streams through', async () => {
    const stateless = await startFixture('stateless');
    const statelessProxy = await startProxy(stateless.mcpUrl);
    const c = await connect(statelessProxy.url, 'no-stream');
    const res = await getStream(statelessProxy.url, c.sessionId()!);
    expect(res.status).toBe(405);
    await res.body?.cancel();
    await c.close();
  });

  it('DELETE tells the upstream with its own id, then the client id is gone (404)', async () => {
    const c = await connect(env.proxy.url, 'leaver');
    const id = c.sessionId()!;
    const deletesBefore = (await env.upstream.stats()).deletes;
    await c.transport.terminateSession();
    const stats = await env.upstream.stats();
    expect(stats.deletes).toBe(deletesBefore + 1);
    expect(stats.foreignIds).toEqual([]);
    const again = await getStream(env.proxy.url, id);
    expect(again.status).toBe(404);
    expect(await again.json()).toMatchObject({ error: { code: -32001 } });
    const del = await fetch(env.proxy.url, { method: 'DELETE', headers: { 'mcp-session-id': id } });
    expect(del.status).toBe(404);
    await c.close();
  });

  it('a DELETE racing a call that meets a lost session wins: the call gets 404, nothing is replayed', async () => {
    const c = await connectSettled(env.proxy.url, 'racer', env.upstream);
    const headers = sessionHeaders(c);
    await env.upstream.drop();
    // Long enough for the DELETE to reach the proxy while the call waits, even on a busy machine.
    await env.upstream.fault({ delayMs: '3000' });
    const received = (await env.upstream.stats()).postsReceived;
    // The call reaches the upstream late and will meet the lost session; the DELETE lands first.
    const call = fetch(env.proxy.url, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } }),
    });
    await expect.poll(async () => (await env.upstream.stats()).postsReceived).toBe(received + 1); // the call is at the upstream
    const del = await fetch(env.proxy.url, { method: 'DELETE', headers: { 'mcp-session-id': c.sessionId()! } });
    expect(del.status).toBe(200);
    const res = await call;
    await env.upstream.fault({ delayMs: '0' });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { data: { reason: 'SESSION_NOT_FOUND' } } });
    expect((await env.upstream.stats()).initializes['racer']).toBe(1);
    await c.close();
  });

  it('a bare 404 to GET (no GET stream, wrong status) is passed through, not replayed', async () => {
    const c = await connectSettled(env.proxy.url, 'no-get', env.upstream);
    await env.upstream.fault({ getStatus: '404' });
    const res = await getStream(env.proxy.url, c.sessionId()!);
    await env.upstream.fault({ getStatus: '0' });
    expect(res.status).toBe(404);
    expect((await env.upstream.stats()).initializes['no-get']).toBe(1);
    await c.close();
  });

  it('DELETE succeeds when the upstream already lost the session', async () => {
    const c = await connect(env.proxy.url, 'late-leaver');
    await env.upstream.drop();
    const res = await fetch(env.proxy.url, { method: 'DELETE', headers: { 'mcp-session-id': c.sessionId()! } });
    expect(res.status).toBe(200);
    await c.close();
  });
});
