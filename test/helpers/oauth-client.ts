/**
 * Headless OAuth clients: the official SDK clients, unmodified, driven through the
 * authorization-code flow by an in-memory OAuthClientProvider whose "browser" is a fetch. The
 * provider is the only custom code: it keeps the client registration, tokens, PKCE verifier and
 * discovery state in memory, and its redirectToAuthorization() fetches the authorization URL as
 * the user (the `x-test-user` header the test authorization server logs in), without following
 * the redirect, and takes the code from the Location.
 */
import { randomUUID } from 'node:crypto';
import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
  type OAuthClientProvider as ModernProvider,
} from '@modelcontextprotocol/client';
import type { OAuthClientProvider, OAuthDiscoveryState } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { MODERN } from './modern-client.js';

const REDIRECT_URL = 'http://127.0.0.1/oauth/callback';

export class HeadlessOAuthProvider implements OAuthClientProvider {
  /** Every access token, refresh token, authorization code and client secret this provider held. */
  readonly secrets: string[] = [];
  private client: OAuthClientInformationMixed | undefined;
  private saved: OAuthTokens | undefined;
  private verifier: string | undefined;
  private discovery: OAuthDiscoveryState | undefined;
  private expectedState: string | undefined;
  private code: string | undefined;

  constructor(readonly user: string) {}

  get redirectUrl() {
    return REDIRECT_URL;
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: `headless client of ${this.user}`,
      redirect_uris: [REDIRECT_URL],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
    };
  }
  state() {
    this.expectedState = randomUUID();
    return this.expectedState;
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    if (info.client_secret !== undefined) this.secrets.push(info.client_secret);
    this.client = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens) {
    this.secrets.push(tokens.access_token, ...(tokens.refresh_token === undefined ? [] : [tokens.refresh_token]));
    this.saved = tokens;
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    if (this.verifier === undefined) throw new Error('no PKCE code verifier saved');
    return this.verifier;
  }
  saveDiscoveryState(state: OAuthDiscoveryState) {
    this.discovery = state;
  }
  discoveryState() {
    return this.discovery;
  }
  invalidateCredentials(scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery') {
    if (scope === 'all' || scope === 'client') this.client = undefined;
    if (scope === 'all' || scope === 'tokens') this.saved = undefined;
    if (scope === 'all' || scope === 'verifier') this.verifier = undefined;
    if (scope === 'all' || scope === 'discovery') this.discovery = undefined;
  }

  /** The browser: log in as the user, approve, and keep the code the redirect carries. */
  async redirectToAuthorization(url: URL) {
    const res = await fetch(url, { redirect: 'manual', headers: { 'x-test-user': this.user } });
    await res.body?.cancel();
    const location = res.headers.get('location');
    if (res.status !== 302 || location === null) throw new Error(`authorization endpoint answered ${res.status}, not a redirect`);
    const callback = new URL(location);
    const code = callback.searchParams.get('code');
    if (code === null) throw new Error(`authorization refused: ${callback.searchParams.get('error_description')}`);
    if (callback.searchParams.get('state') !== this.expectedState) throw new Error('authorization redirect carries the wrong state');
    this.secrets.push(code);
    this.code = code;
  }

  /** The code of the last authorization, once (what the app's callback page would hand over). */
  takeCode(): string | undefined {
    const code = this.code;
    this.code = undefined;
    return code;
  }

  accessToken(): string {
    if (this.saved === undefined) throw new Error(`${this.user} holds no token`);
    return this.saved.access_token;
  }
}

export type ClientKind = 'v1' | 'v2-pinned' | 'v2-auto';

export interface OAuthConnected {
  readonly kind: ClientKind;
  readonly provider: HeadlessOAuthProvider;
  /** Text of the first content item of a tool result. */
  callText(name: string, args?: Record<string, unknown>): Promise<string>;
  /** The session id a 2025 client holds (undefined for 2026-07-28 clients: there is none). */
  sessionId(): string | undefined;
  /** The protocol version a 2025 client sends in MCP-Protocol-Version. */
  protocolVersion(): string | undefined;
  close(): Promise<void>;
}

/**
 * Connect as the docs show: the first attempt meets 401 and runs the flow up to the browser
 * step; then transport.finishAuth(code), and connect again on a new transport.
 */
async function withAuthorization<T extends { finishAuth(code: string): Promise<void> }>(
  provider: HeadlessOAuthProvider,
  transport: () => T,
  connect: (t: T) => Promise<void>,
): Promise<T> {
  const first = transport();
  try {
    await connect(first);
    return first;
  } catch (error) {
    const code = provider.takeCode();
    if (code === undefined) throw error; // not the authorization step: a real failure
    await first.finishAuth(code);
  }
  const second = transport();
  await connect(second);
  return second;
}

function firstText(answer: object): string {
  const result = answer as { content?: Array<{ type: string; text?: string }>; isError?: boolean };
  const first = result.content?.[0];
  if (result.isError) throw new Error(`tool failed: ${first?.text}`);
  return first?.text ?? '';
}

export async function connectWithOAuth(url: string, kind: ClientKind, provider: HeadlessOAuthProvider): Promise<OAuthConnected> {
  if (kind === 'v1') {
    const client = new Client({ name: `v1-${provider.user}`, version: '1.32.2' }, { capabilities: {} });
    const transport = await withAuthorization(
      provider,
      () => new StreamableHTTPClientTransport(new URL(url), { authProvider: provider }),
      (t) => client.connect(t),
    );
    return {
      kind,
      provider,
      callText: async (name, args = {}) => firstText(await client.callTool({ name, arguments: args })),
      sessionId: () => transport.sessionId,
      protocolVersion: () => transport.protocolVersion,
      close: () => client.close(),
    };
  }
  const versionNegotiation = { mode: kind === 'v2-auto' ? ('auto' as const) : { pin: MODERN } };
  const client = new ModernClient({ name: `${kind}-${provider.user}`, version: '2.4.0' }, { capabilities: {}, versionNegotiation });
  const modernProvider: ModernProvider = provider;
  await withAuthorization(
    provider,
    () => new ModernTransport(new URL(url), { authProvider: modernProvider }),
    (t) => client.connect(t),
  );
  return {
    kind,
    provider,
    callText: async (name, args = {}) => firstText(await client.callTool({ name, arguments: args })),
    sessionId: () => undefined,
    protocolVersion: () => undefined,
    close: () => client.close(),
  };
}

export interface WhoAmI {
  user: string | null;
  /** The upstream's own session id: which upstream session served the call. */
  session: string | null;
}

export async function whoami(c: OAuthConnected): Promise<WhoAmI> {
  return JSON.parse(await c.callText('whoami')) as WhoAmI;
}
