/**
 * OAuth-protected legacy upstreams behind the proxy (issue 22): an upstream written like the v1
 * SDK's OAuth example (requireBearerAuth, introspection at its own authorization server), the
 * official clients (v1; v2 pinned to 2026-07-28; v2 in auto) doing the whole authorization-code
 * flow headlessly through the proxy. Access tokens expire when a test says so (never by time),
 * the upstream restarts mid-run, and no token, code or refresh token may reach the proxy's log
 * or its exported spans.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expectNoSecretsInLogs } from '../helpers/log-audit.js';
import { post } from '../helpers/modern-client.js';
import {
  startAuthorizationServer,
  startOAuthUpstream,
  type AuthorizationServer,
  type OAuthUpstream,
  type TokenKind,
} from '../helpers/oauth.js';
import { connectWithOAuth, HeadlessOAuthProvider, whoami, type ClientKind, type OAuthConnected } from '../helpers/oauth-client.js';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.js';
import { freePort, killAll, startProxy, type Proxy } from '../helpers/processes.js';

afterAll(killAll);

interface Stack {
  as: AuthorizationServer;
  upstream: OAuthUpstream;
  proxy: Proxy;
  /** Where the proxy exports its spans. */
  otlp: OtlpReceiver;
  /** What the upstream names as its resource: the proxy's URL, or (undefined) its own. */
  resource: string | undefined;
  /** Clients of the running test, closed after it (so none refreshes in the background later). */
  connected: OAuthConnected[];
  /** Every client's provider: the secrets they held are what the audit looks for. */
  providers: HeadlessOAuthProvider[];
}

/**
 * For a describe block: an authorization server, the protected upstream and the proxy (at trace
 * level and exporting spans, for the audit). The proxy's port is chosen first, so that the
 * upstream can name the proxy's URL as its resource; `internal` leaves the upstream naming its own
 * URL and gives the proxy the public-URL setting instead.
 */
function useStack(kind: TokenKind, options: { internal?: boolean } = {}): Stack {
  const stack = { connected: [], providers: [] } as unknown as Stack;
  beforeAll(async () => {
    const proxyPort = await freePort();
    let upstreamPort = await freePort();
    while (upstreamPort === proxyPort) upstreamPort = await freePort();
    const proxyUrl = `http://127.0.0.1:${proxyPort}/mcp`;
    stack.resource = options.internal ? undefined : proxyUrl;
    stack.as = await startAuthorizationServer(kind);
    stack.upstream = await startOAuthUpstream(stack.as, upstreamPort, stack.resource);
    stack.otlp = await startOtlpReceiver();
    const env: Record<string, string> = {
      LOG_LEVEL: 'trace',
      OTEL_EXPORTER_OTLP_ENDPOINT: stack.otlp.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '50',
      ...(options.internal ? { PUBLIC_URL: proxyUrl } : {}),
    };
    stack.proxy = await startProxy(stack.upstream.mcpUrl, env, String(proxyPort));
  });
  afterEach(() => Promise.allSettled(stack.connected.splice(0).map((c) => c.close())));
  afterAll(() => stack.otlp?.close());
  return stack;
}

async function connectAs(stack: Stack, user: string, client: ClientKind): Promise<OAuthConnected> {
  const provider = new HeadlessOAuthProvider(user);
  stack.providers.push(provider);
  const c = await connectWithOAuth(stack.proxy.url, client, provider);
  stack.connected.push(c);
  return c;
}

/** Kill the upstream and start it again on the same port: its sessions are gone, tokens stay valid. */
async function restartUpstream(stack: Stack) {
  await stack.upstream.kill();
  stack.upstream = await startOAuthUpstream(stack.as, stack.upstream.port, stack.resource);
}

/**
 * Expire every access token, then call: the client must meet a 401, refresh its token at the
 * authorization server, and retry; the call runs as `user` and the client keeps its session.
 */
async function expectRefreshedCall(stack: Stack, c: OAuthConnected, user: string) {
  const sessionId = c.sessionId();
  const oldToken = c.provider.accessToken();
  const refreshes = (await stack.as.stats()).refreshGrants;
  expect(await stack.as.expireAccessTokens()).toBeGreaterThan(0);
  expect((await whoami(c)).user).toBe(user);
  expect((await stack.as.stats()).refreshGrants).toBeGreaterThan(refreshes);
  expect(c.provider.accessToken()).not.toBe(oldToken);
  expect(c.sessionId()).toBe(sessionId);
}

/**
 * The proxy's log and the spans it exported (both flushed by a graceful stop) hold none of the
 * secrets the clients held: access and refresh tokens, authorization codes, client secrets.
 */
async function auditProxy(stack: Stack) {
  await stack.proxy.stop();
  const secrets = stack.providers.flatMap((p) => p.secrets);
  expectNoSecretsInLogs([stack.proxy.output()], secrets);
  const telemetry = stack.otlp.rawBodies().join('\n');
  expect(stack.otlp.spans().length, 'no span exported').toBeGreaterThan(0);
  for (const secret of new Set(secrets)) {
    expect(telemetry.includes(secret), `a secret (${secret.slice(0, 4)}…) reached the exported spans`).toBe(false);
  }
}

/** A raw whoami on alice's session with bob's token, as a stolen session id would be used. */
async function bobOnAliceSession(stack: Stack, alice: OAuthConnected, bob: OAuthConnected) {
  const headers = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-session-id': alice.sessionId()!,
    'mcp-protocol-version': alice.protocolVersion()!,
    authorization: `Bearer ${bob.provider.accessToken()}`,
  };
  return post(stack.proxy.url, headers, { jsonrpc: '2.0', id: 'bob-1', method: 'tools/call', params: { name: 'whoami', arguments: {} } });
}

const CLIENTS: ClientKind[] = ['v1', 'v2-pinned', 'v2-auto'];

describe.each<TokenKind>(['jwt', 'opaque'])('%s access tokens, upstream naming the proxy as its resource', (kind) => {
  const stack = useStack(kind);

  describe.each(CLIENTS)('%s client', (client) => {
    it('connects through the authorization-code flow and calls as alice', async () => {
      const before = await stack.as.stats();
      const c = await connectAs(stack, 'alice', client);
      const after = await stack.as.stats();
      // One registration, one authorization (the 401 started it), one code exchanged.
      expect([after.registrations, after.authorizations, after.codeGrants]).toEqual([
        before.registrations + 1,
        before.authorizations + 1,
        before.codeGrants + 1,
      ]);
      expect((await whoami(c)).user).toBe('alice');
      expect(await c.callText('echo', { text: 'hello' })).toBe('hello');
      if (client === 'v1') expect(c.sessionId()).toBeDefined();
    });

    it('after the access tokens expire: 401, refresh, and the retried call runs as alice on the same session', async () => {
      const c = await connectAs(stack, 'alice', client);
      expect((await whoami(c)).user).toBe('alice');
      await expectRefreshedCall(stack, c, 'alice');
      expect(await c.callText('echo', { text: 'still here' })).toBe('still here');
    });

    it('after an upstream restart the next call runs as alice', async () => {
      const c = await connectAs(stack, 'alice', client);
      const before = await whoami(c);
      await restartUpstream(stack);
      const after = await whoami(c);
      expect(after.user).toBe('alice');
      expect(after.session).not.toBe(before.session); // served by the new process
      if (client === 'v1') expect(c.sessionId()).toBeDefined();
    });

    it('the whole story on one connection: call, refresh, call, restart, call, refresh, call', async () => {
      const c = await connectAs(stack, 'alice', client);
      const sessionId = c.sessionId();
      expect((await whoami(c)).user).toBe('alice');
      await expectRefreshedCall(stack, c, 'alice');
      await restartUpstream(stack);
      expect((await whoami(c)).user).toBe('alice');
      await expectRefreshedCall(stack, c, 'alice');
      expect(c.sessionId()).toBe(sessionId);
    });

    if (client !== 'v1') {
      it("another user's calls run as that user, on an upstream session other than alice's", async () => {
        const alice = await connectAs(stack, 'alice', client);
        const bob = await connectAs(stack, 'bob', client);
        const [a, b] = [await whoami(alice), await whoami(bob)];
        expect(a.user).toBe('alice');
        expect(b.user).toBe('bob');
        expect(b.session).not.toBe(a.session);
        expect((await whoami(alice)).user).toBe('alice');
      });
    } else if (kind === 'jwt') {
      it("another user's token on alice's session gets 404; alice still runs as alice", async () => {
        const alice = await connectAs(stack, 'alice', client);
        const bob = await connectAs(stack, 'bob', client);
        expect((await whoami(bob)).user).toBe('bob');
        const res = await bobOnAliceSession(stack, alice, bob);
        expect(res.status).toBe(404);
        expect(res.messages[0]).toMatchObject({ error: { code: -32001, data: { reason: 'SESSION_NOT_FOUND' } } });
        expect((await whoami(alice)).user).toBe('alice');
      });
    } else {
      // The proxy cannot read a user out of an opaque token: what it must never do is run bob's
      // request on alice's upstream session.
      it("another user's opaque token never runs on alice's upstream session: it runs as bob on another; alice still runs as alice", async () => {
        const alice = await connectAs(stack, 'alice', client);
        const bob = await connectAs(stack, 'bob', client);
        const aliceSession = alice.sessionId();
        const aliceBefore = await whoami(alice);
        expect((await whoami(bob)).user).toBe('bob');
        // Taken for a refresh (the proxy cannot tell): the session is re-authenticated on an
        // upstream session of bob's own, and alice's next call on one of hers again.
        const res = await bobOnAliceSession(stack, alice, bob);
        expect(res.status).toBe(200);
        const answer = res.messages.at(-1) as { result: { content: Array<{ text: string }> } };
        const ran = JSON.parse(answer.result.content[0]!.text) as { user: string; session: string };
        expect(ran.user).toBe('bob');
        expect(ran.session).not.toBe(aliceBefore.session);
        const aliceAfter = await whoami(alice);
        expect(aliceAfter.user).toBe('alice');
        expect(aliceAfter.session).not.toBe(ran.session);
        expect(alice.sessionId()).toBe(aliceSession);
      });
    }
  });

  it('no access token, refresh token, authorization code or client secret appears in the proxy log or spans', async () => {
    await auditProxy(stack);
  });
});

describe('jwt access tokens, upstream naming its internal URL, proxy with the public-URL setting', () => {
  const stack = useStack('jwt', { internal: true });

  it('the proxy serves the protected-resource metadata naming its public URL, and its 401 challenge points there', async () => {
    const publicUrl = stack.proxy.url;
    for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
      const res = await fetch(`${stack.proxy.origin}${path}`);
      expect(res.status, path).toBe(200);
      expect(await res.json(), path).toMatchObject({ resource: publicUrl, authorization_servers: [stack.as.issuer] });
    }
    const challenge = await fetch(publicUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
      }),
    });
    await challenge.text();
    expect(challenge.status).toBe(401);
    expect(challenge.headers.get('www-authenticate')).toContain(
      `resource_metadata="${stack.proxy.origin}/.well-known/oauth-protected-resource/mcp"`,
    );
  });

  describe.each<ClientKind>(['v1', 'v2-pinned'])('%s client', (client) => {
    it('connects, calls, and refreshes after expiry as alice', async () => {
      const c = await connectAs(stack, 'alice', client);
      expect((await whoami(c)).user).toBe('alice');
      await expectRefreshedCall(stack, c, 'alice');
    });
  });

  it('no access token, refresh token, authorization code or client secret appears in the proxy log or spans', async () => {
    await auditProxy(stack);
  });
});
