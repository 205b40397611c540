/**
 * `Mcp-Param-*` headers (2026-07-28, SEP-2243) for a hosted 2025 client's tools/call: a tool whose
 * `inputSchema` marks an argument `"x-mcp-header": "<Name>"` must be called with the header
 * `Mcp-Param-<Name>` mirroring that argument (the v2 SDK server refuses the call with 400 -32020
 * otherwise). 2025 clients know nothing of it, so the proxy learns the declarations from the
 * tools/list answers it relays and adds the headers. Pure; never throws on any input.
 *
 * Encoding as the v2 SDK's `buildMcpParamHeaders`: strings as is, integers and numbers in
 * decimal, booleans `true`/`false`; a value that is not plain visible ASCII (or is empty, or has
 * outer whitespace, or looks like the sentinel) as `=?base64?<base64 of UTF-8>?=`.
 */
import { isObject } from './protocol.js';

/** One declaration: where the argument is (a chain of `properties`), and the header's `<Name>`. */
export interface ParamHeader {
  readonly path: readonly string[];
  readonly name: string;
}

// RFC 9110 token: what a header name may be.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Deep schemas are someone's mistake; the v2 server has no such bound, but no header is that deep.
const MAX_DEPTH = 16;
const SENTINEL_PREFIX = '=?base64?';
const SENTINEL_SUFFIX = '?=';

/** The declarations of one inputSchema, reachable through `properties` only (as the spec allows). */
export function paramHeadersOf(inputSchema: unknown): ParamHeader[] {
  const found: ParamHeader[] = [];
  const visit = (node: unknown, path: string[]) => {
    if (!isObject(node) || path.length > MAX_DEPTH) return;
    const name = node['x-mcp-header'];
    if (path.length > 0 && typeof name === 'string' && TOKEN.test(name)) found.push({ path, name });
    if (isObject(node.properties)) for (const [key, child] of Object.entries(node.properties)) visit(child, [...path, key]);
  };
  visit(inputSchema, []);
  return found;
}

/**
 * The declarations of every tool in a tools/list result that has any (tool name → declarations).
 * Undefined when the message is not a tools/list result.
 */
export function toolParamHeadersOf(result: unknown): Map<string, ParamHeader[]> | undefined {
  if (!isObject(result) || !Array.isArray(result.tools)) return undefined;
  const tools = new Map<string, ParamHeader[]>();
  for (const tool of result.tools) {
    if (!isObject(tool) || typeof tool.name !== 'string') continue;
    const headers = paramHeadersOf(tool.inputSchema);
    if (headers.length > 0) tools.set(tool.name, headers);
  }
  return tools;
}

/** The `mcp-param-*` headers (lower-case names) for a call's arguments. */
export function paramHeaderValues(declarations: readonly ParamHeader[], args: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { path, name } of declarations) {
    let value: unknown = args;
    for (const key of path) value = isObject(value) && Object.hasOwn(value, key) ? value[key] : undefined;
    const text = primitiveText(value);
    if (text !== undefined) out[`mcp-param-${name.toLowerCase()}`] = encodeParamValue(text);
  }
  return out;
}

function primitiveText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number' && Number.isFinite(value) && (!Number.isInteger(value) || Number.isSafeInteger(value)))
    return String(value);
  return undefined;
}

/**
 * A header value as the v2 client encodes it (`encodeMcpParamValue`, which it uses for Mcp-Name and
 * Mcp-Param-* alike): as is when it is a safe plain-ASCII field value, else the base64 sentinel.
 */
export function encodeParamValue(value: string): string {
  const plain =
    value.length > 0 &&
    value === value.trim() &&
    !(value.startsWith(SENTINEL_PREFIX) && value.endsWith(SENTINEL_SUFFIX)) &&
    /^[\t\x20-\x7e]*$/.test(value);
  return plain ? value : `${SENTINEL_PREFIX}${Buffer.from(value, 'utf8').toString('base64')}${SENTINEL_SUFFIX}`;
}

/** Whether an upstream error is the v2 server's refusal of a call for its Mcp-Param-* headers. */
export function isParamHeaderRefusal(error: unknown): boolean {
  if (!isObject(error) || error.code !== -32020 || !isObject(error.data) || !isObject(error.data.mismatch)) return false;
  const header = error.data.mismatch.header;
  return typeof header === 'string' && header.toLowerCase().startsWith('mcp-param-');
}
