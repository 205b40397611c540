/**
 * The OAuth fixtures as processes: an authorization server (test/fixtures/oauth-authorization-server.ts)
 * and an OAuth-protected legacy upstream (test/fixtures/oauth-upstream.ts). Both are killed by
 * processes.ts killAll, like every process a test starts.
 */
import { startScript, type Proc } from './processes.js';

export type TokenKind = 'jwt' | 'opaque';

export interface AuthorizationServerStats {
  registrations: number;
  authorizations: number;
  codeGrants: number;
  refreshGrants: number;
  introspections: number;
  expiredAccessTokens: number;
}

export interface AuthorizationServer extends Proc {
  readonly port: number;
  /** Its issuer URL, with the trailing slash the SDK gives it. */
  readonly issuer: string;
  /** Make every access token issued so far inactive (refresh tokens stay valid); how many. */
  expireAccessTokens(): Promise<number>;
  stats(): Promise<AuthorizationServerStats>;
}

export async function startAuthorizationServer(kind: TokenKind): Promise<AuthorizationServer> {
  const proc = await startScript('test/fixtures/oauth-authorization-server.ts', [], { OAUTH_TOKEN_KIND: kind });
  const control = async (path: string, method: string) => {
    const res = await fetch(`${proc.origin}/test/${path}`, { method });
    if (!res.ok) throw new Error(`authorization server ${path}: ${res.status}`);
    return res.json() as Promise<unknown>;
  };
  return {
    ...proc,
    issuer: `${proc.origin}/`,
    expireAccessTokens: async () => ((await control('expire-access-tokens', 'POST')) as { expired: number }).expired,
    stats: () => control('stats', 'GET') as Promise<AuthorizationServerStats>,
  };
}

export interface OAuthUpstream extends Proc {
  readonly port: number;
  readonly mcpUrl: string;
}

/**
 * The protected upstream on `port` (a restart passes the same one). `resourceUrl`: what it names
 * as its resource, normally the proxy's URL; left out, its own internal URL.
 */
export async function startOAuthUpstream(as: AuthorizationServer, port: number, resourceUrl?: string): Promise<OAuthUpstream> {
  const env: Record<string, string> = { OAUTH_AS_URL: as.issuer };
  if (resourceUrl !== undefined) env.OAUTH_RESOURCE_URL = resourceUrl;
  const proc = await startScript('test/fixtures/oauth-upstream.ts', ['--port', String(port)], env);
  return { ...proc, mcpUrl: `${proc.origin}/mcp` };
}
