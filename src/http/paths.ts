/**
 * Request paths as the proxy compares them: the path of a request target, and the key two
 * spellings of one resource share. Pure; the gate (gate.ts), the pass-through routes (app.ts) and
 * the configuration's path checks (config.ts) use them.
 */

/** The path of a request target: the query dropped; an absolute-form target's path. */
export function pathOf(url: string): string {
  const end = url.indexOf('?');
  const path = end === -1 ? url : url.slice(0, end);
  if (path.startsWith('/')) return path;
  // Absolute form (`http://host/mcp`), which HTTP/1.1 servers must accept, or garbage.
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(path);
  return scheme === null ? path : path.slice(scheme[0].length) || '/';
}

// No escapes, dots, backslashes or anything a URL parser would drop or rewrite.
const PLAIN_PATH = /^\/[A-Za-z0-9_~/-]*$/;

/**
 * A path as an upstream might resolve it: percent-decoded, dot segments and duplicate slashes
 * resolved, lower case, without a trailing slash. Two paths with the same key may reach the same
 * resource on some server, so the key decides both what the MCP path is and what pass-through
 * refuses. Never throws: what cannot be decoded is kept as sent.
 */
export function normalizePath(path: string): string {
  // Nothing to decode or resolve (probes, most pass-through paths): slashes and case only.
  if (PLAIN_PATH.test(path)) return path.toLowerCase().replace(/\/+/g, '/').replace(/\/$/, '') || '/';
  let decoded = path;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    // Malformed escapes: keep it as sent.
  }
  let resolved: string;
  try {
    resolved = new URL(decoded.replace(/\/+/g, '/'), 'http://x').pathname;
  } catch {
    resolved = decoded;
  }
  return resolved.toLowerCase().replace(/\/+/g, '/').replace(/\/$/, '') || '/';
}
