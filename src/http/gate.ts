/**
 * The gate: what happens to a request before any flow runs, decided once, as plain functions.
 *
 *   not the MCP path            → pass (Fastify: probes, metrics, pass-through)
 *   the proxy is closing        → 503 SHUTTING_DOWN
 *   Host not allowed            → 403 HOST_NOT_ALLOWED    (DNS rebinding, see below)
 *   Origin not allowed          → 403 ORIGIN_NOT_ALLOWED
 *   not POST/GET/DELETE/OPTIONS → 405 METHOD_NOT_ALLOWED
 *   otherwise                   → accept, with the flow to run
 *
 * DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 reaches a proxy
 * listening on loopback with `Host: evil.example`. The upstream cannot see that (the proxy sends
 * it its own Host), so the proxy checks it, as the MCP SDKs do on loopback binds: only
 * localhost, 127.0.0.1 and [::1] (any port), unless --allowed-hosts says otherwise. A proxy on
 * all interfaces accepts any Host unless --allowed-hosts is set.
 *
 * Path spellings: `//mcp`, `/mcp/`, `/x/../mcp`, `/%6Dcp` and `/MCP` all name the MCP path (an
 * upstream resolving the path its own way could otherwise be reached around the proxy); the
 * exact configured path is recognised before any of that work.
 */
import type { Config } from '../config.js';
import type { ProxyErrorReason } from '../errors.js';
import { normalizePath, pathOf } from './paths.js';

/** The flows the MCP endpoint runs. */
export type McpFlow = 'POST' | 'GET' | 'DELETE' | 'OPTIONS';

export type GateRefusal = Extract<ProxyErrorReason, 'SHUTTING_DOWN' | 'HOST_NOT_ALLOWED' | 'ORIGIN_NOT_ALLOWED' | 'METHOD_NOT_ALLOWED'>;

export type GateDecision =
  | { readonly kind: 'pass' }
  | { readonly kind: 'refuse'; readonly reason: GateRefusal }
  | { readonly kind: 'accept'; readonly flow: McpFlow };

/** What the gate needs from the configuration, compiled once. */
export interface GatePolicy {
  /** The configured MCP path, exactly as given (the fast path compares with it). */
  readonly mcpPath: string;
  /** `normalizePath(mcpPath)`. */
  readonly mcpPathKey: string;
  /** Hostnames (lower case, IPv6 in brackets, no port) a Host header may name; undefined = any. */
  readonly allowedHosts: ReadonlySet<string> | undefined;
  /** --allowed-origins; undefined = none listed. */
  readonly allowedOrigins: ReadonlySet<string> | undefined;
}

/** The hostnames a loopback listener answers to, as the MCP SDKs allow them. */
const LOOPBACK_HOSTNAMES: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Whether a listen address (--host) is reachable from this machine only. */
export function isLoopbackAddress(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || h === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h);
}

export function gatePolicyOf(config: Pick<Config, 'mcpPath' | 'host' | 'allowedHosts' | 'allowedOrigins'>): GatePolicy {
  return {
    mcpPath: config.mcpPath,
    mcpPathKey: normalizePath(config.mcpPath),
    allowedHosts: config.allowedHosts ?? (isLoopbackAddress(config.host) ? LOOPBACK_HOSTNAMES : undefined),
    allowedOrigins: config.allowedOrigins,
  };
}

// Decisions are constants: the gate allocates nothing on its fast path.
const PASS: GateDecision = { kind: 'pass' };
const ACCEPT: Record<McpFlow, GateDecision> = {
  POST: { kind: 'accept', flow: 'POST' },
  GET: { kind: 'accept', flow: 'GET' },
  DELETE: { kind: 'accept', flow: 'DELETE' },
  OPTIONS: { kind: 'accept', flow: 'OPTIONS' },
};
const REFUSE: Record<GateRefusal, GateDecision> = {
  SHUTTING_DOWN: { kind: 'refuse', reason: 'SHUTTING_DOWN' },
  HOST_NOT_ALLOWED: { kind: 'refuse', reason: 'HOST_NOT_ALLOWED' },
  ORIGIN_NOT_ALLOWED: { kind: 'refuse', reason: 'ORIGIN_NOT_ALLOWED' },
  METHOD_NOT_ALLOWED: { kind: 'refuse', reason: 'METHOD_NOT_ALLOWED' },
};

/**
 * The gate for one request: `url` is the raw request target (path and query), `host` and
 * `origin` the headers as received. Never throws.
 */
export function decide(
  policy: GatePolicy,
  method: string,
  url: string,
  host: string | undefined,
  origin: string | undefined,
  closing: boolean,
): GateDecision {
  if (url !== policy.mcpPath && !isMcpPath(policy, url)) return PASS;
  if (closing) return REFUSE.SHUTTING_DOWN;
  const refused = admission(policy, host, origin);
  if (refused !== undefined) return REFUSE[refused];
  switch (method) {
    case 'POST':
    case 'GET':
    case 'DELETE':
    case 'OPTIONS':
      return ACCEPT[method];
    default:
      return REFUSE.METHOD_NOT_ALLOWED;
  }
}

/** Whether a request target names the MCP path, however it is spelled. */
function isMcpPath(policy: GatePolicy, url: string): boolean {
  return normalizePath(pathOf(url)) === policy.mcpPathKey;
}

/**
 * The Host and Origin checks, for the MCP path and for Fastify's routes alike.
 *
 * Origin, the way the SDKs check it plus one rule for browsers on the proxy's own origin: with
 * no check on the Host (all interfaces, no --allowed-hosts), only --allowed-origins restricts
 * Origin, as before; with the Host checked, an Origin passes when it is listed or names the
 * same host:port as the (allowed) Host, so a page served from the proxy's own address works and
 * a rebound one does not. Requests without Origin come from no browser and always pass.
 */
export function admission(
  policy: GatePolicy,
  host: string | undefined,
  origin: string | undefined,
): 'HOST_NOT_ALLOWED' | 'ORIGIN_NOT_ALLOWED' | undefined {
  const { allowedHosts, allowedOrigins } = policy;
  if (allowedHosts !== undefined) {
    const name = host === undefined ? undefined : hostnameOf(host);
    if (name === undefined || !allowedHosts.has(name)) return 'HOST_NOT_ALLOWED';
  }
  if (origin === undefined || allowedOrigins?.has(origin)) return undefined;
  if (allowedHosts === undefined) return allowedOrigins === undefined ? undefined : 'ORIGIN_NOT_ALLOWED';
  return sameOrigin(origin, host!) ? undefined : 'ORIGIN_NOT_ALLOWED';
}

/**
 * The hostname of a Host header (lower case, IPv6 in brackets, port dropped), or undefined when
 * it is not `name[:port]`. Slices only: it runs on every request of a loopback proxy.
 */
export function hostnameOf(host: string): string | undefined {
  let end: number;
  if (host.charCodeAt(0) === 0x5b /* [ */) {
    end = host.indexOf(']') + 1;
    if (end === 0) return undefined;
  } else {
    end = host.indexOf(':');
    if (end === -1) end = host.length;
  }
  if (end === 0) return undefined;
  if (end < host.length) {
    // `:` and up to five digits.
    if (host.charCodeAt(end) !== 0x3a /* : */ || host.length - end > 6) return undefined;
    for (let i = end + 1; i < host.length; i++) {
      const c = host.charCodeAt(i);
      if (c < 0x30 || c > 0x39) return undefined;
    }
  }
  const name = host.slice(0, end);
  return /[A-Z]/.test(name) ? name.toLowerCase() : name;
}

/** Whether `origin` (scheme://host[:port]) names the same host and port as the Host header. */
function sameOrigin(origin: string, host: string): boolean {
  try {
    const parsed = new URL(origin);
    if (parsed.origin !== origin.toLowerCase() && parsed.origin !== origin) return false;
    // The same parser on both sides: default ports (`:80` for http) and case compare equal.
    return new URL(`${parsed.protocol}//${host}`).host === parsed.host;
  } catch {
    return false;
  }
}
