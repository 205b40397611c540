import { connect as connectSocket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { callText, connect } from '../helpers/client.js';
import { connectModern, envelope, modernCallText, modernHeaders, post as modernPost } from '../helpers/modern-client.js';
import { expectNoSecretsInLogs } from '../helpers/log-audit.js';
import { killAll, startFixture, startProxy } from '../helpers/processes.js';

const TOKEN = 'Bearer tok-7f3a9c1e5b2d4f60aa';
const COOKIE = 'session=cookie-3e8d1f0b7c6a5e42';
const GARBAGE_ID = 'not-a-real-session-id-b51f0e2d9c';

afterAll(killAll);

describe('logs never carry a raw session id, credential or cookie, at any level', () => {
  it('a full story at trace level: create, call, lose and replay, rotate, stream, errors, delete; 2026-07-28 and sessionless callers on pooled sessions', async () => {
    const secrets: string[] = [TOKEN, 'tok-7f3a9c1e5b2d4f60aa', COOKIE, 'cookie-3e8d1f0b7c6a5e42', GARBAGE_ID];
    const outputs: string[] = [];

    for (const mode of ['sdk', 'rotating', 'strict'] as const) {
      const upstream = await startFixture(mode, { mrtr: true });
      const proxy = await startProxy(upstream.mcpUrl, { LOG_LEVEL: 'trace' });
      const c = await connect(proxy.url, `audited-${mode}`, { authorization: TOKEN, cookie: COOKIE });
      const id = c.sessionId()!;
      secrets.push(id);
      expect(await callText(c, 'echo', { text: 'x' })).toBe('x');
      await upstream.drop();
      expect(await callText(c, 'echo', { text: 'y' })).toBe('y');
      await c.client.listTools();

      // A 2026-07-28 client on a pooled upstream session, across a loss, and a sessionless caller.
      const modern = await connectModern(proxy.url, `audited-modern-${mode}`, { headers: { authorization: TOKEN, cookie: COOKIE } });
      expect(await modernCallText(modern, 'echo', { text: 'm1' })).toBe('m1');
      // Listening on the pooled session's GET stream, through the loss (the replay renews the stream).
      const regained = new Promise<void>((resolve) =>
        modern.client.setNotificationHandler('notifications/tools/list_changed', () => resolve()),
      );
      const subscription = await modern.client.listen({ toolsListChanged: true, resourceSubscriptions: ['test://readme'] });
      await upstream.drop();
      expect(await modernCallText(modern, 'echo', { text: 'm2' })).toBe('m2');
      await regained;
      await subscription.close();
      await modern.close();
      // MRTR: an input_required round, a tampered retry, and the retry that completes it.
      const ask = (id: number, extra: Record<string, unknown>) =>
        modernPost(
          proxy.url,
          { ...modernHeaders('tools/call', 'ask-name'), authorization: TOKEN, cookie: COOKIE },
          {
            jsonrpc: '2.0',
            id,
            method: 'tools/call',
            params: {
              name: 'ask-name',
              arguments: {},
              ...extra,
              _meta: envelope({ 'io.modelcontextprotocol/clientCapabilities': { elicitation: {} } }),
            },
          },
        );
      const asked = (await ask(1, {})).messages.at(-1)!.result as { requestState: string; inputRequests: Record<string, unknown> };
      secrets.push(asked.requestState);
      const inputResponses = { [Object.keys(asked.inputRequests)[0]!]: { action: 'accept', content: { name: 'Audited' } } };
      expect((await ask(2, { inputResponses, requestState: `${asked.requestState}x` })).messages[0]).toMatchObject({
        error: { code: -32602 },
      });
      expect((await ask(3, { inputResponses, requestState: asked.requestState })).messages.at(-1)).toMatchObject({
        result: { content: [{ text: 'Hello, Audited!' }] },
      });
      const sessionless = await fetch(proxy.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          authorization: TOKEN,
          cookie: COOKIE,
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      expect(sessionless.status).toBe(200);
      await sessionless.text();

      // A GET stream, an unknown id, a malformed id, bad JSON, a pass-through path.
      const get = await fetch(proxy.url, { headers: { accept: 'text/event-stream', 'mcp-session-id': id, authorization: TOKEN } });
      await get.body?.cancel();
      const post = (headers: Record<string, string>, body: string) =>
        fetch(proxy.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
          body,
        }).then((r) => r.text());
      await post({ 'mcp-session-id': GARBAGE_ID, cookie: COOKIE }, '{"jsonrpc":"2.0","id":1,"method":"ping"}');
      await post({ 'mcp-session-id': 'A'.repeat(43), authorization: TOKEN }, '{"jsonrpc":"2.0","id":1,"method":"ping"}');
      await post({ 'mcp-session-id': id }, '{not json');
      await fetch(`${proxy.origin}/.well-known/oauth-protected-resource?token=${GARBAGE_ID}`, {
        headers: { authorization: TOKEN, cookie: COOKIE },
      }).then((r) => r.text());
      // A request so malformed that Node's parser rejects it, carrying the secrets in its headers.
      await new Promise<void>((resolve) => {
        const socket = connectSocket(proxy.port, '127.0.0.1');
        socket.on('error', () => resolve());
        socket.on('close', () => resolve());
        socket.on('data', () => undefined);
        socket.end(
          `POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: ${TOKEN}\r\nCookie: ${COOKIE}\r\nMcp-Session-Id: ${id}\r\n` +
            `Content-Length: abc\r\n\r\n{}`,
        );
      });
      await c.transport.terminateSession();
      await c.close();

      const { issuedIds } = await upstream.stats();
      expect(issuedIds.length, 'the upstream ids before and after the loss').toBeGreaterThanOrEqual(2);
      secrets.push(...issuedIds);
      // Stopped (SIGTERM), the proxy flushes its logger before it exits: its output is complete.
      await proxy.stop();
      outputs.push(proxy.output());
    }

    const output = outputs.join('\n');
    // The audit is only meaningful if the proxy really logged the story, with fingerprints.
    expect(output).toMatch(/"level":10/); // trace lines were written
    expect(output).toContain('upstream session re-established');
    expect(output).toContain('the upstream session was re-established; reopening it');
    expect(output).toContain('session deleted by client');
    expect(output).toMatch(/"sid":"fp:[0-9a-f]{12}"/);
    expect(output).toContain('malformed HTTP request');
    // Raw request bytes (Node's rawPacket) would carry secrets as a byte array, not as text.
    expect(output).not.toContain('rawPacket');
    expectNoSecretsInLogs(outputs, secrets);
  });
});
