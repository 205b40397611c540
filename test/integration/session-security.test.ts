import { afterAll, describe, expect, it } from 'vitest';
import { callText, connect } from '../helpers/client.js';
import { killAll, startFixture, startModernFixture, startProxy, type Proxy } from '../helpers/processes.js';

afterAll(killAll);

const ACCEPT = 'application/json, text/event-stream';
const LIST = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}';

async function metricValue(proxy: Proxy, name: string): Promise<number> {
  const text = await (await fetch(`${proxy.origin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

function post(url: string, headers: Record<string, string>, body = LIST) {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: ACCEPT, ...headers }, body });
}

describe('session security', () => {
  it('binds a session to the Authorization it was created with: no credentials, or a DELETE with others, get 404, as for an unknown id', async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl);
    const c = await connect(proxy.url, 'alice', { authorization: 'Bearer alice-token' });
    const sid = c.sessionId()!;
    const base = { 'mcp-session-id': sid, 'mcp-protocol-version': c.transport.protocolVersion! };

    for (const other of [{ authorization: 'Bearer mallory-token' }, {}, { authorization: 'Bearer Alice-token' }]) {
      const del = await fetch(proxy.url, { method: 'DELETE', headers: { ...base, ...other } });
      expect(del.status).toBe(404);
      expect(await del.json()).toMatchObject({ error: { code: -32001, data: { reason: 'SESSION_NOT_FOUND' } } });
    }
    const anonymous = await post(proxy.url, base);
    expect(anonymous.status).toBe(404);
    expect(await anonymous.json()).toMatchObject({ error: { code: -32001, data: { reason: 'SESSION_NOT_FOUND' } } });
    // The rightful owner is unaffected (and the DELETEs above did not end the session).
    expect(await callText(c, 'echo', { text: 'mine' })).toBe('mine');
    const ok = await post(proxy.url, { ...base, authorization: 'Bearer alice-token' });
    expect(ok.status).toBe(200);
    await ok.text();
    expect((await upstream.stats()).authorizationSeen).not.toContain('Bearer mallory-token');
    await c.close();
  });

  it('another opaque token on a session never reaches its upstream session: it re-authenticates on a fresh one, and so does the owner after it', async () => {
    const upstream = await startFixture('sdk');
    // No GET stream: the client's reconnecting it when its upstream session ends would race the counts.
    await upstream.fault({ getStatus: '405' });
    const proxy = await startProxy(upstream.mcpUrl);
    const c = await connect(proxy.url, 'alice', { authorization: 'Bearer alice-token' });
    const base = { 'mcp-session-id': c.sessionId()!, 'mcp-protocol-version': c.transport.protocolVersion! };
    expect(await callText(c, 'echo', { text: 'alice 1' })).toBe('alice 1');
    const before = await upstream.stats();
    expect(before.initializes.alice).toBe(1);

    // The proxy cannot tell a refreshed opaque token from another user's: either way the caller
    // gets an upstream session of its own, opened by replaying the client's initialize.
    const other = await post(proxy.url, { ...base, authorization: 'Bearer mallory-token' });
    expect(other.status).toBe(200);
    await other.text();
    const afterOther = await upstream.stats();
    expect(afterOther.initializes.alice).toBe(2);
    expect(afterOther.issuedIds.length).toBe(before.issuedIds.length + 1);
    // The owner's next call re-authenticates again: a third upstream session, never the intruder's.
    expect(await callText(c, 'echo', { text: 'alice 2' })).toBe('alice 2');
    const afterOwner = await upstream.stats();
    expect(afterOwner.initializes.alice).toBe(3);
    expect(afterOwner.issuedIds.length).toBe(before.issuedIds.length + 2);
    await c.close();
  });

  it('concurrent requests with a refreshed opaque token re-authenticate the session once', async () => {
    const upstream = await startFixture('sdk');
    await upstream.fault({ getStatus: '405' });
    const proxy = await startProxy(upstream.mcpUrl);
    const c = await connect(proxy.url, 'refreshing', { authorization: 'Bearer token-1' });
    const base = { 'mcp-session-id': c.sessionId()!, 'mcp-protocol-version': c.transport.protocolVersion! };
    const answers = await Promise.all(Array.from({ length: 8 }, () => post(proxy.url, { ...base, authorization: 'Bearer token-2' })));
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
    await Promise.all(answers.map((a) => a.text()));
    const stats = await upstream.stats();
    expect(stats.initializes.refreshing).toBe(2); // the client's own, and one re-authentication
    expect(await metricValue(proxy, 'mcp_session_proxy_reauthentications_total{outcome="renewed"}')).toBe(1);
    await c.close();
  });

  it('a session held in front of a 2026-07-28-only upstream re-authenticates too: its server/discover asked anew under the new token', async () => {
    const upstream = await startModernFixture({ legacy: 'reject' });
    const proxy = await startProxy(upstream.mcpUrl);
    const c = await connect(proxy.url, 'held-refreshing', { authorization: 'Bearer token-1' });
    expect(await callText(c, 'echo', { text: 'before' })).toBe('before');
    const base = { 'mcp-session-id': c.sessionId()!, 'mcp-protocol-version': c.transport.protocolVersion! };
    const discoversBefore = (await upstream.stats()).discovers;
    const refreshed = await post(proxy.url, { ...base, authorization: 'Bearer token-2' });
    expect(refreshed.status).toBe(200);
    expect(JSON.stringify(await refreshed.json())).toContain('"tools"');
    expect((await upstream.stats()).discovers).toBe(discoversBefore + 1);
    expect(await metricValue(proxy, 'mcp_session_proxy_reauthentications_total{outcome="renewed"}')).toBe(1);
    await c.close();
  });

  it('a refreshed bearer JWT for the same subject keeps the session; another subject gets 404', async () => {
    const jwt = (claims: object) =>
      `Bearer ${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`;
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl);
    const c = await connect(proxy.url, 'oauth-user', { authorization: jwt({ iss: 'https://idp', sub: 'alice', exp: 1 }) });
    const base = { 'mcp-session-id': c.sessionId()!, 'mcp-protocol-version': c.transport.protocolVersion! };
    const refreshed = await post(proxy.url, { ...base, authorization: jwt({ iss: 'https://idp', sub: 'alice', exp: 2 }) });
    expect(refreshed.status).toBe(200);
    await refreshed.text();
    for (const claims of [
      { iss: 'https://idp', sub: 'mallory' },
      { iss: 'https://other-idp', sub: 'alice' },
    ]) {
      const res = await post(proxy.url, { ...base, authorization: jwt(claims) });
      expect(res.status).toBe(404);
      await res.text();
    }
    await c.close();
  });

  it('a session created without credentials cannot be used with some', async () => {
    const upstream = await startFixture('stateless');
    const proxy = await startProxy(upstream.mcpUrl);
    const c = await connect(proxy.url, 'anonymous');
    const res = await post(proxy.url, { 'mcp-session-id': c.sessionId()!, authorization: 'Bearer someone' });
    expect(res.status).toBe(404);
    await res.text();
    expect(await callText(c, 'echo', { text: 'anon' })).toBe('anon');
    await c.close();
  });

  it('binds to a configurable identity header too', async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl, { IDENTITY_HEADER: 'X-User-Id' });
    const c = await connect(proxy.url, 'gateway-user', { 'x-user-id': 'alice' });
    const res = await post(proxy.url, { 'mcp-session-id': c.sessionId()!, 'x-user-id': 'bob' });
    expect(res.status).toBe(404);
    await res.text();
    expect(await callText(c, 'echo', { text: 'alice here' })).toBe('alice here');
    await c.close();
  });

  it('with an Origin allow-list, a request from another Origin gets 403; allowed or absent Origins pass', async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl, { ALLOWED_ORIGINS: 'https://app.example.com,http://localhost:3000' });
    const c = await connect(proxy.url, 'browser', { origin: 'https://app.example.com' });
    expect(await callText(c, 'echo', { text: 'allowed' })).toBe('allowed');

    const evil = await post(proxy.url, { 'mcp-session-id': c.sessionId()!, origin: 'https://evil.example' });
    expect(evil.status).toBe(403);
    expect(await evil.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32000, data: { reason: 'ORIGIN_NOT_ALLOWED' } } });
    const evilInit = await post(
      proxy.url,
      { origin: 'https://evil.example' },
      '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}',
    );
    expect(evilInit.status).toBe(403);
    await evilInit.text();

    const native = await connect(proxy.url, 'native-client'); // no Origin: not a browser
    expect(await callText(native, 'echo', { text: 'native' })).toBe('native');
    await Promise.all([c.close(), native.close()]);
  });

  it('a session flood evicts the least recently used sessions and the proxy keeps serving', async () => {
    const upstream = await startFixture('stateless');
    const proxy = await startProxy(upstream.mcpUrl, { MAX_SESSIONS: '50' });
    const first = await connect(proxy.url, 'early-bird');
    const init = (i: number) =>
      post(
        proxy.url,
        {},
        `{"jsonrpc":"2.0","id":${i},"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"flood-${i}","version":"1"}}}`,
      ).then(async (r) => {
        await r.text();
        return r.status;
      });
    for (let batch = 0; batch < 10; batch++) {
      const statuses = await Promise.all(Array.from({ length: 50 }, (_, i) => init(batch * 50 + i)));
      expect(statuses.every((s) => s === 200)).toBe(true);
    }
    // The earliest session was evicted: 404, so a spec-following client re-initializes.
    const evicted = await post(proxy.url, { 'mcp-session-id': first.sessionId()! });
    expect(evicted.status).toBe(404);
    await evicted.text();
    const fresh = await connect(proxy.url, 'after-flood');
    expect(await callText(fresh, 'echo', { text: 'serving' })).toBe('serving');
    await fresh.close();
  });
});
