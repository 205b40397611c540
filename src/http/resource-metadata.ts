/**
 * --public-url: an OAuth-protected upstream presented under the proxy's public URL. Clients refuse
 * protected-resource metadata whose `resource` is not the URL they connect to, and a server behind
 * a sidecar usually names its own, internal, address. With the setting on:
 *
 *   - every upstream answer's `WWW-Authenticate` names the proxy's metadata URL as
 *     `resource_metadata` (the MCP endpoint's answers and the pass-through routes' alike);
 *   - the proxy serves that metadata, at the two paths clients derive from its public URL: the
 *     upstream's own document, with `resource` set to the public URL.
 *
 * The authorization servers the document names are the issuer's and are left as they are: clients
 * must be able to reach them (docs/security.md).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import { ProxyError } from '../errors.js';
import {
  metadataPathOf,
  metadataUrlOf,
  PROTECTED_RESOURCE_WELL_KNOWN,
  withResource,
  withResourceMetadata,
} from '../mcp/protected-resource.js';
import { readBody, type UpstreamClient } from '../upstream/client.js';

// A metadata document is a few hundred bytes; anything this big is not one.
const MAX_METADATA_BYTES = 64 * 1024;

/** Rewrites a response's `WWW-Authenticate` (in place) to name the proxy's metadata URL. */
export function challengeRewriter(publicUrl: URL): (headers: IncomingHttpHeaders) => void {
  const metadataUrl = metadataUrlOf(publicUrl);
  return (headers) => {
    // Node types it as one string; undici gives an array when the upstream sent several.
    const challenge = headers['www-authenticate'] as string | string[] | undefined;
    if (challenge === undefined) return;
    (headers as Record<string, string | string[]>)['www-authenticate'] = Array.isArray(challenge)
      ? challenge.map((value) => withResourceMetadata(value, metadataUrl))
      : withResourceMetadata(challenge, metadataUrl);
  };
}

export interface ResourceMetadataOptions {
  readonly publicUrl: URL;
  readonly upstreamUrl: URL;
  readonly upstream: UpstreamClient;
  readonly timeoutMs: number;
}

/** GET routes for the protected-resource metadata under the proxy's public URL. */
export const resourceMetadataRoutes: FastifyPluginAsync<ResourceMetadataOptions> = async (app, options) => {
  const { publicUrl, upstreamUrl, upstream, timeoutMs } = options;
  const resource = publicUrl.href;
  // Where the upstream serves it: path-aware first, then the root (RFC 9728 §3, the MCP spec's order).
  const upstreamPaths = [...new Set([metadataPathOf(upstreamUrl), PROTECTED_RESOURCE_WELL_KNOWN])];
  /** The upstream's document with our `resource`; any other answer as the upstream gave it. */
  const metadata = async () => {
    for (const path of upstreamPaths) {
      const signal = AbortSignal.timeout(timeoutMs);
      const response = await upstream.request({ method: 'GET', path, headers: { accept: 'application/json' }, signal });
      const body = await readBody(response.body, MAX_METADATA_BYTES, 'UPSTREAM_BAD_ANSWER', signal);
      if (response.statusCode === 404 && path !== upstreamPaths.at(-1)) continue;
      if (response.statusCode !== 200) return { status: response.statusCode, type: response.headers['content-type'], body };
      const rewritten = withResource(body.toString(), resource);
      if (rewritten === undefined) throw new ProxyError('UPSTREAM_BAD_ANSWER', { detail: { upstreamStatus: response.statusCode } });
      return { status: 200, type: 'application/json', body: rewritten };
    }
    throw new Error('unreachable: the last path always answers');
  };
  for (const url of new Set([metadataPathOf(publicUrl), PROTECTED_RESOURCE_WELL_KNOWN])) {
    app.get(url, async (_request, reply) => {
      const { status, type, body } = await metadata();
      if (type !== undefined) reply.header('content-type', type);
      // A cached copy would outlive a change of the setting, or of the upstream's document.
      return reply.code(status).header('cache-control', 'no-store').send(body);
    });
  }
};
