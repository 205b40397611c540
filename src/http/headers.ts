/**
 * Which headers cross the proxy, in each direction. Pure.
 *
 * The session header is always rewritten: the upstream sees only its own id, the client only the
 * one the proxy minted. Hop-by-hop headers stay on their own hop (RFC 9110 §7.6.1).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { MCP_METHOD_HEADER, MCP_NAME_HEADER } from '../mcp/era.js';
import { SESSION_HEADER } from '../mcp/protocol.js';
import type { ClientSessionId, UpstreamSessionId } from '../session/ids.js';

export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

// Never forwarded upstream: host and length belong to the new request, the upstream must answer
// uncompressed because the proxy reads initialize answers and loss errors itself, and the body
// has already been received (so `Expect: 100-continue` was answered by the proxy's own server).
const NOT_FORWARDED_UPSTREAM = new Set([...HOP_BY_HOP, 'host', 'content-length', 'accept-encoding', 'expect', SESSION_HEADER]);
const NOT_FORWARDED_DOWNSTREAM = new Set([...HOP_BY_HOP, SESSION_HEADER]);
// A 2026-07-28 request translated for a legacy upstream: its routing headers describe a request
// the upstream never sees (and would make a dual-era server take it for a 2026 one).
const NOT_FORWARDED_TRANSLATED = new Set([...NOT_FORWARDED_UPSTREAM, MCP_METHOD_HEADER, MCP_NAME_HEADER]);

export type OutgoingHeaders = Record<string, string | string[]>;

function copyHeaders(from: IncomingHttpHeaders, skip: ReadonlySet<string>): OutgoingHeaders {
  const extra = connectionTokens(from.connection);
  const out: OutgoingHeaders = {};
  for (const name in from) {
    const value = from[name];
    if (value === undefined || skip.has(name) || extra?.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** Headers named in `Connection` are hop-by-hop too. Rare, so the common case allocates nothing. */
function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value.join(',') : value;
  if (!text.includes(',') && /^\s*(keep-alive|close)\s*$/i.test(text)) return undefined;
  return new Set(text.split(',').map((token) => token.trim().toLowerCase()));
}

/** The client's headers, as the upstream must see them (with its own session id, if it has one). */
export function toUpstreamHeaders(clientHeaders: IncomingHttpHeaders, upstreamId: UpstreamSessionId | undefined): OutgoingHeaders {
  const headers = copyHeaders(clientHeaders, NOT_FORWARDED_UPSTREAM);
  if (upstreamId !== undefined) headers[SESSION_HEADER] = upstreamId;
  return headers;
}

/**
 * A 2026-07-28 request's headers for the legacy session it is translated onto: as toUpstreamHeaders,
 * without Mcp-Method and Mcp-Name (left out while copying: deleting them afterwards would turn the
 * object into a slow dictionary on the hot path).
 */
export function toTranslatedHeaders(clientHeaders: IncomingHttpHeaders): OutgoingHeaders {
  return copyHeaders(clientHeaders, NOT_FORWARDED_TRANSLATED);
}

/** The upstream's response headers, as the client must see them (with its proxy-minted id). */
export function toClientHeaders(upstreamHeaders: IncomingHttpHeaders, clientId: ClientSessionId | undefined): OutgoingHeaders {
  const headers = copyHeaders(upstreamHeaders, NOT_FORWARDED_DOWNSTREAM);
  if (clientId !== undefined) headers[SESSION_HEADER] = clientId;
  return headers;
}
