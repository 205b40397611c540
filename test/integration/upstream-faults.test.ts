import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, describe, expect, it } from 'vitest';
import { callText, connect, connectSettled, sessionHeaders } from '../helpers/client.js';
import { envelope, modernHeaders, post } from '../helpers/modern-client.js';
import { killAll, startFixture, startProxy } from '../helpers/processes.js';

afterAll(killAll);

/** The JSON-RPC error body the SDK client reports inside a StreamableHTTPError. */
async function httpFailure(call: Promise<unknown>): Promise<{ status: number; body: any }> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StreamableHTTPError);
  const { code, message } = error as StreamableHTTPError;
  return { status: code!, body: JSON.parse(message.slice(message.indexOf('{'))) };
}

describe('upstream faults: a clear error, then recovery', () => {
  it('upstream down → 502 JSON-RPC error; when it is back the same session recovers', async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl, { UPSTREAM_RETRY_MS: '200' });
    const c = await connect(proxy.url, 'patient');
    const id = c.sessionId();
    await upstream.kill();
    const failure = await httpFailure(callText(c, 'echo', { text: 'x' }));
    expect(failure.status).toBe(502);
    expect(failure.body).toMatchObject({ jsonrpc: '2.0', error: { code: -32000, data: { reason: 'UPSTREAM_UNAVAILABLE' } } });
    // The error answers the request it is about (the SDK numbers its requests).
    expect(typeof failure.body.id).toBe('number');

    // Started again on its port (killAll ends it).
    await startFixture('sdk', { port: upstream.port });
    expect(await callText(c, 'echo', { text: 'back' })).toBe('back');
    expect(c.sessionId()).toBe(id);
    expect((await upstream.stats()).initializes['patient']).toBe(1);
    await c.close();
  });

  it('a restarting upstream is ridden out: refused connections are retried within the retry window', async () => {
    const upstream = await startFixture('sdk');
    // Longer than the fixture can take to start again on a busy machine (12 s has been seen).
    const proxy = await startProxy(upstream.mcpUrl, { UPSTREAM_RETRY_MS: '40000', LOG_LEVEL: 'trace' });
    const c = await connect(proxy.url, 'rider');
    await upstream.kill();
    // POSTs the proxy sent upstream (its trace line); the GET stream reconnecting is not one.
    const lines = () => proxy.output().split('\n');
    const posted = () => lines().filter((l) => l.includes('"msg":"to upstream"') && l.includes('"content-type":"application/json"')).length;
    // Count from once the connection's own POSTs (initialize, initialized) are logged: the access
    // line of each comes after its trace line, and the logger writes in batches.
    await expect
      .poll(() => lines().filter((l) => l.includes('"method":"POST","path":"/mcp"') && l.includes('"msg":"request"')).length)
      .toBe(2);
    const before = posted();
    const call = callText(c, 'echo', { text: 'waited' });
    // The call has been sent to the dead upstream: it is retrying meanwhile.
    await expect.poll(posted).toBe(before + 1);
    // Started again on its port (killAll ends it).
    await startFixture('sdk', { port: upstream.port });
    expect(await call).toBe('waited');
    await c.close();
  });

  it('upstream does not answer in time → 504, and the upstream request is aborted', async () => {
    const upstream = await startFixture('sdk');
    // The hang never ends; the timeout only has to be longer than a normal answer (the connect and
    // the last call here) can take on a busy machine, where 500 ms has been exceeded.
    const proxy = await startProxy(upstream.mcpUrl, { UPSTREAM_TIMEOUT_MS: '10000' });
    // Settled: the client's background GET stream must reach the upstream before the hang, or it hangs too.
    const c = await connectSettled(proxy.url, 'hurried', upstream);
    const abortedBefore = (await upstream.stats()).abortedResponses;
    await upstream.fault({ hang: '1' });
    const failure = await httpFailure(callText(c, 'echo', { text: 'x' }));
    expect(failure.status).toBe(504);
    expect(failure.body.error.data.reason).toBe('UPSTREAM_TIMEOUT');
    await upstream.fault({ hang: '0' });
    // The fixture counts the aborted answer when it sees its connection close.
    await expect.poll(async () => (await upstream.stats()).abortedResponses).toBe(abortedBefore + 1);
    expect(await callText(c, 'echo', { text: 'ok again' })).toBe('ok again');
    await c.close();
  });

  it('upstream dies in the middle of an SSE answer → the waiting request gets an error event, the stream ends, the proxy stays up', async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl);
    const c = await connect(proxy.url, 'cut-off');
    const res = await fetch(proxy.url, {
      method: 'POST',
      headers: sessionHeaders(c),
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 5,
        method: 'tools/call',
        params: { name: 'gated-progress', arguments: { steps: 3 }, _meta: { progressToken: 't' } },
      }),
    });
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain('notifications/progress');
    await upstream.kill();
    // The rest of the stream: a JSON-RPC error for request 5, then a clean end (no hang, no reset).
    let rest = '';
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += new TextDecoder().decode(chunk.value);
    const events = rest.split('\n\n').filter(Boolean);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatch(/^event: message\ndata: /);
    expect(JSON.parse(events[0]!.split('data: ')[1]!)).toMatchObject({
      jsonrpc: '2.0',
      id: 5,
      error: { code: -32000, data: { reason: 'UPSTREAM_CUT' } },
    });

    // Started again on its port (killAll ends it).
    await startFixture('sdk', { port: upstream.port });
    expect(await callText(c, 'echo', { text: 'survived' })).toBe('survived');
    await c.close();
  });

  it.each([
    ['not visible ASCII', 'bad id with spaces'],
    ['absurdly long', 'x'.repeat(2000)],
  ])('an upstream Mcp-Session-Id that is %s is never stored: clear 502, then normal service', async (_name, bad) => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl);
    await upstream.fault({ sessionIdOverride: bad });
    const failure = await httpFailure(connect(proxy.url, 'poisoned'));
    expect(failure.status).toBe(502);
    expect(failure.body.error.data.reason).toBe('UPSTREAM_BAD_SESSION_ID');

    // On a later answer of an established session, too.
    await upstream.fault({ sessionIdOverride: '' });
    const c = await connect(proxy.url, 'established');
    await upstream.fault({ sessionIdOverride: bad });
    expect((await httpFailure(callText(c, 'echo', { text: 'x' }))).body.error.data.reason).toBe('UPSTREAM_BAD_SESSION_ID');
    await upstream.fault({ sessionIdOverride: '' });
    expect(await callText(c, 'echo', { text: 'clean' })).toBe('clean');
    await c.close();
  });

  it('an auth challenge to a replayed initialize reaches the client as is, so its OAuth flow can start', async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl);
    const c = await connect(proxy.url, 'challenged');
    await upstream.fault({ refuseInitialize: '401' });
    await upstream.drop();
    const res = await fetch(proxy.url, {
      method: 'POST',
      headers: sessionHeaders(c),
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer resource_metadata=/);
    expect(res.headers.get('mcp-session-id')).toBeNull();
    await res.text();
    await upstream.fault({ refuseInitialize: '0' });
    expect(await callText(c, 'echo', { text: 'authorized again' })).toBe('authorized again');
    await c.close();
  });

  it('a replayed initialize that fails → 502 naming the upstream status; the session stays valid', async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl);
    const c = await connect(proxy.url, 'refused');
    const id = c.sessionId();
    // Fault first: the client's own GET stream may reach the proxy after the drop and replay too.
    await upstream.fault({ refuseInitialize: '503' });
    await upstream.drop();
    const failure = await httpFailure(callText(c, 'echo', { text: 'x' }));
    expect(failure.status).toBe(502);
    expect(failure.body.error.data).toEqual({ reason: 'REPLAY_FAILED', upstreamStatus: 503 });
    expect(failure.body.error.message).toMatch(/could not re-establish the session \(upstream status 503\)/);

    await upstream.fault({ refuseInitialize: '0' });
    expect(await callText(c, 'echo', { text: 'recovered' })).toBe('recovered');
    expect(c.sessionId()).toBe(id);
    await c.close();
  });
});

// The fixture's deep event: JSON nested 20,000 deep. On Node 22 it parses, but JSON.stringify
// (which translating it takes) overflows the stack; from Node 26 on, JSON has no depth limit.
const DEEP = '['.repeat(20_000) + ']'.repeat(20_000);
const deepSerialises = (() => {
  try {
    JSON.stringify(JSON.parse(DEEP));
    return true;
  } catch {
    return false;
  }
})();

describe("an upstream event nested 20,000 deep (the proxy runs on the tests' Node)", () => {
  it.runIf(deepSerialises)(
    'where JSON takes any depth, is relayed as any other event, for 2026-07-28 and sessionless callers',
    async () => {
      const upstream = await startFixture('sdk');
      const proxy = await startProxy(upstream.mcpUrl);
      await upstream.fault({ deepEvent: '1' });
      const modern = await post(proxy.url, modernHeaders('tools/call', 'echo'), {
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'echo', arguments: { text: 'fine' }, _meta: envelope({ 'io.modelcontextprotocol/logLevel': 'debug' }) },
      });
      // Compared as text: matchers recurse.
      const relayed = modern.messages.at(-2) as { method?: unknown; params?: { data?: unknown } };
      expect(relayed.method).toBe('notifications/message');
      expect(JSON.stringify(relayed.params?.data)).toBe(DEEP);
      expect(modern.messages.at(-1)).toMatchObject({ id: 1, result: { content: [{ text: 'after the deep event' }] } });
      const sessionless = await post(
        proxy.url,
        { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'fine' } } },
      );
      expect(sessionless.messages.at(-1)).toMatchObject({ id: 2, result: { content: [{ text: 'after the deep event' }] } });
    },
  );

  it.skipIf(deepSerialises)(
    'where it cannot be translated, fails the one request with a JSON-RPC error, for 2026-07-28 and sessionless callers alike, and the proxy carries on',
    async () => {
      const upstream = await startFixture('sdk');
      const proxy = await startProxy(upstream.mcpUrl);
      const modernCall = (id: number) =>
        post(proxy.url, modernHeaders('tools/call', 'echo'), {
          jsonrpc: '2.0',
          id,
          method: 'tools/call',
          // With a logLevel, so that the log notification is relayed (and must be serialised).
          params: { name: 'echo', arguments: { text: 'fine' }, _meta: envelope({ 'io.modelcontextprotocol/logLevel': 'debug' }) },
        });
      const sessionlessCall = (id: number) =>
        post(
          proxy.url,
          { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
          {
            jsonrpc: '2.0',
            id,
            method: 'tools/call',
            params: { name: 'echo', arguments: { text: 'fine' } },
          },
        );
      expect((await modernCall(1)).messages.at(-1)).toMatchObject({ id: 1, result: { content: [{ text: 'fine' }] } });

      await upstream.fault({ deepEvent: '1' });
      // The 2026-07-28 caller (MRTR relay) and the sessionless one (event-by-event translation).
      const modern = await modernCall(2);
      expect(modern.messages.at(-1)).toMatchObject({ jsonrpc: '2.0', id: 2, error: { code: -32000 } });
      const sessionless = await sessionlessCall(3);
      expect(sessionless.messages.at(-1)).toMatchObject({ jsonrpc: '2.0', id: 3, error: { code: -32000 } });

      await upstream.fault({ deepEvent: '0' });
      // Still up, and still serving both.
      expect((await modernCall(4)).messages.at(-1)).toMatchObject({ id: 4, result: { content: [{ text: 'fine' }] } });
      expect((await sessionlessCall(5)).messages.at(-1)).toMatchObject({ id: 5, result: { content: [{ text: 'fine' }] } });
      expect(proxy.child.exitCode).toBeNull();
    },
  );
});
