/**
 * A 2025-era client's session in front of a modern-only (2026-07-28) upstream: the session lives
 * in the proxy, and each of the client's requests is translated into a stateless 2026-07-28
 * request and its answer back. Pure: no I/O, never throws on any input (property-tested).
 *
 *   initialize            answered here, from the upstream's server/discover
 *   initialized, ping,    answered here (202, {}); logging/setLevel is kept and sent upstream as
 *   logging/setLevel      each request's `logLevel`
 *   any other request     the 2026 envelope (version, the client's capabilities and clientInfo,
 *                         logLevel) in `_meta`, Mcp-Method / Mcp-Name headers; the answer with its
 *                         2026-only members removed and -32602 "resource not found" back to -32002
 */
import type { JsonRpcId } from '../errors.js';
import { ENVELOPE, MCP_METHOD_HEADER, MCP_NAME_HEADER, MODERN_PROTOCOL_VERSION, type LoggingLevel } from './era.js';
import { encodeParamValue } from './param-headers.js';
import { isJsonRpcMessage, isObject, PROTOCOL_VERSION_HEADER } from './protocol.js';
import type { Translated } from './translate.js';

type Obj = Record<string, unknown>;

/** The legacy revisions the proxy speaks to clients, newest first (the v1 SDK's list). */
export const LEGACY_PROTOCOL_VERSIONS: readonly string[] = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05', '2024-10-07'];

/** The version a client asked for when the proxy speaks it, else the newest (as SDK servers answer). */
export function negotiatedVersion(requested: unknown): string {
  return typeof requested === 'string' && LEGACY_PROTOCOL_VERSIONS.includes(requested) ? requested : LEGACY_PROTOCOL_VERSIONS[0]!;
}

/** What a legacy session holds for the upstream: its client, as declared at initialize. */
export interface LegacyClient {
  readonly clientInfo: Obj;
  readonly capabilities: Obj;
}

/** The client's initialize params, as the envelope needs them (garbage becomes an anonymous client). */
export function legacyClientOf(initializeParams: unknown): LegacyClient {
  const params = isObject(initializeParams) ? initializeParams : {};
  return {
    clientInfo: isObject(params.clientInfo) ? params.clientInfo : { name: 'unknown', version: '0' },
    capabilities: isObject(params.capabilities) ? params.capabilities : {},
  };
}

/**
 * The InitializeResult for a legacy client, from the upstream's DiscoverResult: its capabilities
 * (as they are: 2025 clients read the same vocabulary), instructions and identity.
 */
export function initializeResultOf(discover: Obj, protocolVersion: string): Obj {
  const meta = isObject(discover._meta) ? discover._meta : {};
  const serverInfo = isObject(meta[ENVELOPE.serverInfo])
    ? meta[ENVELOPE.serverInfo]
    : { name: 'mcp-session-proxy', version: 'modern-upstream' };
  const result: Obj = {
    protocolVersion,
    capabilities: isObject(discover.capabilities) ? discover.capabilities : {},
    serverInfo,
  };
  if (typeof discover.instructions === 'string') result.instructions = discover.instructions;
  return result;
}

/** The 2026-07-28 request for a legacy one: the client's `_meta` kept, the envelope added. */
export function toModernRequest(
  id: JsonRpcId,
  method: string,
  params: unknown,
  client: LegacyClient,
  logLevel: LoggingLevel | undefined,
): string {
  const own = isObject(params) ? params : {};
  const meta: Obj = isObject(own._meta) ? { ...own._meta } : {};
  meta[ENVELOPE.protocolVersion] = MODERN_PROTOCOL_VERSION;
  meta[ENVELOPE.clientInfo] = client.clientInfo;
  meta[ENVELOPE.clientCapabilities] = client.capabilities;
  if (logLevel !== undefined) meta[ENVELOPE.logLevel] = logLevel;
  return JSON.stringify({ jsonrpc: '2.0', id, method, params: { ...own, _meta: meta } });
}

/** Methods whose target goes in Mcp-Name, and the param that names it. */
const NAMED_BY: Readonly<Record<string, string>> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

/**
 * The headers a 2026-07-28 server checks against the body (ERA.md §1): MCP-Protocol-Version,
 * Mcp-Method, and Mcp-Name for the methods that name a target.
 */
export function routingHeadersFor(method: string, params: unknown): Record<string, string> {
  const headers: Record<string, string> = { [PROTOCOL_VERSION_HEADER]: MODERN_PROTOCOL_VERSION, [MCP_METHOD_HEADER]: method };
  const param = Object.hasOwn(NAMED_BY, method) ? NAMED_BY[method] : undefined;
  const name = param !== undefined && isObject(params) ? params[param] : undefined;
  if (typeof name === 'string') headers[MCP_NAME_HEADER] = encodeParamValue(name);
  return headers;
}

const LEGACY_RESOURCE_NOT_FOUND = -32002;
const INVALID_PARAMS = -32602;
/** Members only 2026-07-28 results carry; a 2025 client has no use for them. */
const MODERN_ONLY_RESULT_MEMBERS = ['resultType', 'ttlMs', 'cacheScope'] as const;
const RESERVED_META_PREFIX = 'io.modelcontextprotocol/';

/**
 * One message of a modern upstream's answer, for the legacy client that asked (`id` is the
 * client's own: a modern upstream has no session to share, so ids need no rewriting).
 */
export function toLegacyMessage(message: unknown, method: string): Translated {
  if (!isJsonRpcMessage(message)) return { kind: 'drop' };
  if (typeof message.method === 'string') {
    // 2026-07-28 servers send no requests; notifications (progress, log) are the same in both eras.
    if ('id' in message) return { kind: 'drop' };
    return { kind: 'forward', message: withoutReservedMeta(message, 'params') };
  }
  if ('error' in message) {
    const error = message.error as Obj;
    return {
      kind: 'forward',
      message: isResourceNotFound(error, method) ? { ...message, error: { ...error, code: LEGACY_RESOURCE_NOT_FOUND } } : message,
    };
  }
  const result = message.result;
  if (!isObject(result)) return { kind: 'forward', message };
  if (result.resultType === 'input_required') {
    // The upstream asks the client for input (MRTR) on a method 2026-07-28 does not allow it for:
    // tools/call, prompts/get and resources/read are relayed as server→client requests by
    // flows/hosted/input.ts before they get here. The client's request fails clearly instead of
    // reading a result it cannot use.
    return {
      kind: 'forward',
      message: {
        jsonrpc: '2.0',
        id: message.id,
        error: {
          code: -32603,
          message: 'The upstream (MCP 2026-07-28) asked for client input (input_required) on a method that cannot ask for it',
          data: { reason: 'INPUT_REQUIRED_NOT_RELAYED' },
        },
      },
    };
  }
  const legacy: Obj = { ...result };
  for (const member of MODERN_ONLY_RESULT_MEMBERS) delete legacy[member];
  return { kind: 'forward', message: withoutReservedMeta({ ...message, result: legacy }, 'result') };
}

/** -32602 with only `data.uri`: the v2 SDK's ResourceNotFoundError, which 2025 clients know as -32002. */
function isResourceNotFound(error: Obj, method: string): boolean {
  if (method !== 'resources/read' || error.code !== INVALID_PARAMS || !isObject(error.data)) return false;
  const keys = Object.keys(error.data);
  return keys.length === 1 && typeof error.data.uri === 'string';
}

/** `message[member]._meta` without the `io.modelcontextprotocol/*` keys (serverInfo, subscriptionId…). */
function withoutReservedMeta(message: Obj, member: 'params' | 'result'): Obj {
  const holder = message[member];
  if (!isObject(holder) || !isObject(holder._meta)) return message;
  const meta = holder._meta;
  if (!Object.keys(meta).some((key) => key.startsWith(RESERVED_META_PREFIX))) return message;
  const kept: Obj = {};
  for (const [key, value] of Object.entries(meta)) if (!key.startsWith(RESERVED_META_PREFIX)) kept[key] = value;
  const { _meta: _dropped, ...rest } = holder;
  if (Object.keys(kept).length > 0) return { ...message, [member]: { ...rest, _meta: kept } };
  // A notification whose params held only the 2026 keys (list_changed): none, as a 2025 server sends it.
  if (member === 'params' && Object.keys(rest).length === 0) {
    const { params: _none, ...bare } = message;
    return bare;
  }
  return { ...message, [member]: rest };
}

/**
 * The common answer of a v2 SDK server, rewritten on its text, unparsed: a complete result whose
 * last members are `resultType` and (optionally) `_meta` holding only serverInfo, framed
 * `{"result":{…},"jsonrpc":"2.0","id":<upstreamId>}` — the text toLegacyMessage's object path
 * would produce, with `clientId`. Undefined for anything else (the object path decides), in
 * particular whenever a word the rewrite must look at occurs anywhere else in the text. Held to
 * the object path by the property test in modern-upstream-translate.test.ts.
 */
export function hostedJsonAnswer(text: string, upstreamId: JsonRpcId, clientId: JsonRpcId): string | undefined {
  if (!text.startsWith(RESULT_FIRST)) return undefined;
  const at = text.lastIndexOf(RESULT_TYPE_COMPLETE);
  if (at === -1) return undefined;
  HELD_TAIL.lastIndex = at + RESULT_TYPE_COMPLETE.length;
  const tail = HELD_TAIL.exec(text);
  if (tail === null || tail[1] !== JSON.stringify(upstreamId)) return undefined;
  // One of each, or the members found may not be the top-level ones.
  if (!onlyOnce(text, '"resultType"') || !onlyOnce(text, '"jsonrpc"') || !onlyOnce(text, '"result"')) return undefined;
  const reserved = text.indexOf(RESERVED_META_PREFIX);
  if (reserved !== -1 && (!tail[0].startsWith(',"_meta"') || reserved < at || !onlyOnce(text, RESERVED_META_PREFIX))) return undefined;
  if (text.includes('"ttlMs"') || text.includes('"cacheScope"') || text.includes('"error"')) return undefined;
  return `${text.slice(0, at)}},"jsonrpc":"2.0","id":${JSON.stringify(clientId)}}`;
}

const RESULT_FIRST = '{"result":{';
const RESULT_TYPE_COMPLETE = ',"resultType":"complete"';
// After `,"resultType":"complete"`: the optional serverInfo `_meta`, the end of result, the frame.
const HELD_TAIL =
  /(?:,"_meta":\{"io\.modelcontextprotocol\/serverInfo":\{"name":"(?:[^"\\]|\\.)*","version":"(?:[^"\\]|\\.)*"\}\})?\},"jsonrpc":"2\.0","id":(-?\d+|"(?:[^"\\]|\\.)*")\}$/y;

function onlyOnce(text: string, word: string): boolean {
  const first = text.indexOf(word);
  return first !== -1 && text.indexOf(word, first + 1) === -1;
}
