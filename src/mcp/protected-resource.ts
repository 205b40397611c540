/**
 * OAuth protected-resource metadata (RFC 9728, as the MCP authorization spec uses it), presented
 * under the proxy's public URL for an upstream that only knows its own address. Clients compare
 * the metadata's `resource` with the URL they connect to and refuse a mismatch, so a sidecar in
 * front of such a server needs both rewritten: the metadata document, and the `resource_metadata`
 * parameter of every `WWW-Authenticate` that points to it. Pure.
 */
import { parseJson } from './protocol.js';

/** RFC 9728 §3: the well-known path segment inserted between a resource's origin and its path. */
export const PROTECTED_RESOURCE_WELL_KNOWN = '/.well-known/oauth-protected-resource';

/** The metadata path for a resource URL: `/.well-known/oauth-protected-resource` + its path. */
export function metadataPathOf(resource: URL): string {
  const path = resource.pathname.replace(/\/+$/, '');
  return `${PROTECTED_RESOURCE_WELL_KNOWN}${path}`;
}

/** The metadata URL for a resource URL (where clients look first). */
export function metadataUrlOf(resource: URL): string {
  return `${resource.origin}${metadataPathOf(resource)}`;
}

// A `resource_metadata` auth-param (RFC 9110 §11.2): a quoted string (with escapes) or a token.
const RESOURCE_METADATA_PARAM = /(\bresource_metadata\s*=\s*)(?:"(?:[^"\\]|\\.)*"|[^\s,]+)/gi;

/** A `WWW-Authenticate` value whose `resource_metadata` parameters name `metadataUrl`. */
export function withResourceMetadata(challenge: string, metadataUrl: string): string {
  return challenge.replace(RESOURCE_METADATA_PARAM, (_match, name: string) => `${name}"${metadataUrl}"`);
}

/**
 * A protected-resource metadata document (JSON text) naming `resource`; every other member as the
 * upstream wrote it (its authorization servers above all: they are the issuer's, not ours).
 * Undefined when the text is not a JSON object.
 */
export function withResource(metadata: string, resource: string): string | undefined {
  const parsed = parseJson(metadata);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  return JSON.stringify({ ...parsed, resource });
}
