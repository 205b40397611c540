import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { admission, decide, gatePolicyOf, hostnameOf, isLoopbackAddress, type GatePolicy } from '../../src/http/gate.js';
import { normalizePath } from '../../src/http/paths.js';

const ON_LOOPBACK = gatePolicyOf({ mcpPath: '/mcp', host: '127.0.0.1', allowedHosts: undefined, allowedOrigins: undefined });
const ON_ALL = gatePolicyOf({ mcpPath: '/mcp', host: '0.0.0.0', allowedHosts: undefined, allowedOrigins: undefined });
const HOST = '127.0.0.1:8080';

const post = (policy: GatePolicy, url: string, host: string | undefined = HOST, origin?: string, closing = false) =>
  decide(policy, 'POST', url, host, origin, closing);

describe('the gate recognises the MCP path however it is spelled', () => {
  it.each([
    '/mcp',
    '/mcp/',
    '//mcp',
    '///mcp//',
    '/mcp?x=1',
    '/MCP',
    '/Mcp/',
    '/%6Dcp',
    '/%6dcp',
    '/./mcp',
    '/x/../mcp',
    '/%2e/mcp',
    '/a/b/../../mcp',
    'http://127.0.0.1:8080/mcp',
    '/mcp%00',
    '/mcp%20',
  ])('%s → the MCP endpoint', (url) => {
    expect(post(ON_LOOPBACK, url)).toEqual({ kind: 'accept', flow: 'POST' });
  });

  it.each(['/', '/mcpx', '/mc', '/mcp/x', '/.well-known/oauth-protected-resource', '/healthz', '/%zz', '*', '/mcp%01x', ''])(
    '%s → not the MCP path (Fastify)',
    (url) => {
      expect(post(ON_LOOPBACK, url)).toEqual({ kind: 'pass' });
    },
  );

  it('a configured path other than /mcp', () => {
    const policy = gatePolicyOf({ mcpPath: '/v2/mcp', host: '0.0.0.0', allowedHosts: undefined, allowedOrigins: undefined });
    expect(post(policy, '/v2/mcp').kind).toBe('accept');
    expect(post(policy, '/v2//mcp/').kind).toBe('accept');
    expect(post(policy, '/mcp').kind).toBe('pass');
  });

  it('what some server may read as the MCP path is the MCP path (the safe side): /mcp%00, /mcp%20 above', () => {
    expect(normalizePath('/mcp%00')).toBe('/mcp');
  });

  it('normalizePath: decoded, dot segments and duplicate slashes resolved, lower case, no trailing slash', () => {
    expect(normalizePath('/A//b/./c/../D/')).toBe('/a/b/d');
    expect(normalizePath('/')).toBe('/');
    expect(normalizePath('//')).toBe('/');
    expect(normalizePath('/%41%2F%42')).toBe('/a/b');
    expect(normalizePath('/%E0%A4%A')).toBe('/%e0%a4%a'); // malformed escapes: kept as sent
  });

  it('never throws, and always returns a decision, on any method, target, Host or Origin', () => {
    const text = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.string({ unit: fc.constantFrom(...'/.%2eEmcpMCP?#:[]@\\'.split('')) }),
    );
    fc.assert(
      fc.property(
        text,
        text,
        fc.option(text, { nil: undefined }),
        fc.option(text, { nil: undefined }),
        fc.boolean(),
        (method, url, host, origin, closing) => {
          for (const policy of [ON_LOOPBACK, ON_ALL]) {
            const decision = decide(policy, method, url, host, origin, closing);
            expect(['pass', 'refuse', 'accept']).toContain(decision.kind);
          }
          expect(typeof normalizePath(url)).toBe('string');
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('the exact path takes the fast path: the same decision object every time, nothing allocated for it', () => {
    expect(post(ON_LOOPBACK, '/mcp')).toBe(post(ON_LOOPBACK, '/mcp'));
  });
});

describe('the gate refuses before any flow runs', () => {
  it('while closing: 503 SHUTTING_DOWN, for every method on the MCP path only', () => {
    expect(post(ON_LOOPBACK, '/mcp', HOST, undefined, true)).toEqual({ kind: 'refuse', reason: 'SHUTTING_DOWN' });
    expect(decide(ON_LOOPBACK, 'PUT', '/mcp', HOST, undefined, true)).toEqual({ kind: 'refuse', reason: 'SHUTTING_DOWN' });
    expect(post(ON_LOOPBACK, '/other', HOST, undefined, true)).toEqual({ kind: 'pass' });
  });

  it.each(['GET', 'POST', 'DELETE', 'OPTIONS'] as const)('%s → its flow', (method) => {
    expect(decide(ON_ALL, method, '/mcp', 'anything', undefined, false)).toEqual({ kind: 'accept', flow: method });
  });

  it.each(['PUT', 'PATCH', 'HEAD', 'TRACE', 'CONNECT', 'PROPFIND', 'post', ''])('%s → 405', (method) => {
    expect(decide(ON_ALL, method, '/mcp', 'anything', undefined, false)).toEqual({ kind: 'refuse', reason: 'METHOD_NOT_ALLOWED' });
  });

  it('a foreign Host is refused before the method is looked at', () => {
    expect(decide(ON_LOOPBACK, 'PUT', '/mcp', 'evil.example.com', undefined, false)).toEqual({
      kind: 'refuse',
      reason: 'HOST_NOT_ALLOWED',
    });
  });
});

describe('DNS rebinding: Host on a loopback listener', () => {
  it.each(['localhost', 'localhost:8080', 'LOCALHOST:1', '127.0.0.1', '127.0.0.1:65535', '[::1]', '[::1]:8080'])('%s → allowed', (host) => {
    expect(admission(ON_LOOPBACK, host, undefined)).toBeUndefined();
  });

  it.each([
    'evil.example.com',
    'evil.example.com:8080',
    'localhost.evil.example.com',
    '127.0.0.1.nip.io',
    'localhost:80:80',
    'localhost:port',
    '[::1',
    '::1',
    '',
    ':8080',
    '10.0.0.1',
    '0.0.0.0',
  ])('%s → 403 HOST_NOT_ALLOWED', (host) => {
    expect(admission(ON_LOOPBACK, host, undefined)).toBe('HOST_NOT_ALLOWED');
  });

  it('a missing Host → 403 (HTTP/1.0 requests carry none)', () => {
    expect(admission(ON_LOOPBACK, undefined, undefined)).toBe('HOST_NOT_ALLOWED');
  });

  it('on all interfaces any Host passes, unless --allowed-hosts is set', () => {
    expect(admission(ON_ALL, 'mcp-sidecar', undefined)).toBeUndefined();
    expect(admission(ON_ALL, undefined, undefined)).toBeUndefined();
    const listed = gatePolicyOf({
      mcpPath: '/mcp',
      host: '0.0.0.0',
      allowedHosts: new Set(['mcp.example.com']),
      allowedOrigins: undefined,
    });
    expect(admission(listed, 'mcp.example.com:443', undefined)).toBeUndefined();
    expect(admission(listed, 'MCP.example.com', undefined)).toBeUndefined();
    expect(admission(listed, 'localhost', undefined)).toBe('HOST_NOT_ALLOWED');
  });

  it('--allowed-hosts replaces the loopback names on a loopback listener', () => {
    const policy = gatePolicyOf({ mcpPath: '/mcp', host: '127.0.0.1', allowedHosts: new Set(['dev.local']), allowedOrigins: undefined });
    expect(admission(policy, 'dev.local:3000', undefined)).toBeUndefined();
    expect(admission(policy, 'localhost:3000', undefined)).toBe('HOST_NOT_ALLOWED');
  });

  it.each(['127.0.0.1', '127.1.2.3', 'localhost', 'LocalHost', '::1', '[::1]', '::ffff:127.0.0.1'])('%s is a loopback address', (host) => {
    expect(isLoopbackAddress(host)).toBe(true);
  });

  it.each(['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'localhost.example.com', '1270.0.0.1'])('%s is not', (host) => {
    expect(isLoopbackAddress(host)).toBe(false);
  });

  it('hostnameOf: lower case, brackets kept, port dropped; anything else is no hostname', () => {
    expect(hostnameOf('Example.COM:8080')).toBe('example.com');
    expect(hostnameOf('[::1]:1')).toBe('[::1]');
    expect(hostnameOf('a:')).toBe('a');
    expect(hostnameOf('a:123456')).toBeUndefined();
    expect(hostnameOf('[::1]x')).toBeUndefined();
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (host) => void hostnameOf(host)));
  });
});

describe('Origin', () => {
  it('absent (not a browser) → passes everywhere', () => {
    expect(admission(ON_LOOPBACK, HOST, undefined)).toBeUndefined();
  });

  it("on a loopback listener: the proxy's own origin passes, any other is 403", () => {
    expect(admission(ON_LOOPBACK, '127.0.0.1:8080', 'http://127.0.0.1:8080')).toBeUndefined();
    expect(admission(ON_LOOPBACK, 'localhost:8080', 'http://localhost:8080')).toBeUndefined();
    expect(admission(ON_LOOPBACK, 'localhost:80', 'http://localhost')).toBeUndefined(); // default port
    expect(admission(ON_LOOPBACK, 'localhost:8080', 'http://localhost:3000')).toBe('ORIGIN_NOT_ALLOWED');
    expect(admission(ON_LOOPBACK, 'localhost:8080', 'http://127.0.0.1:8080')).toBe('ORIGIN_NOT_ALLOWED');
    expect(admission(ON_LOOPBACK, HOST, 'https://app.example.com')).toBe('ORIGIN_NOT_ALLOWED');
    expect(admission(ON_LOOPBACK, HOST, 'null')).toBe('ORIGIN_NOT_ALLOWED');
    expect(admission(ON_LOOPBACK, HOST, 'http://127.0.0.1:8080/path')).toBe('ORIGIN_NOT_ALLOWED');
  });

  it('the rebinding attack (foreign Host and its own Origin) is refused for its Host first', () => {
    expect(admission(ON_LOOPBACK, 'evil.example.com:8080', 'http://evil.example.com:8080')).toBe('HOST_NOT_ALLOWED');
  });

  it('--allowed-origins adds origins; with the Host unchecked it is the only rule, as before', () => {
    const listed = new Set(['https://app.example.com']);
    const loopback = gatePolicyOf({ mcpPath: '/mcp', host: '127.0.0.1', allowedHosts: undefined, allowedOrigins: listed });
    expect(admission(loopback, HOST, 'https://app.example.com')).toBeUndefined();
    expect(admission(loopback, HOST, 'http://127.0.0.1:8080')).toBeUndefined();
    expect(admission(loopback, HOST, 'https://evil.example')).toBe('ORIGIN_NOT_ALLOWED');
    const all = gatePolicyOf({ mcpPath: '/mcp', host: '0.0.0.0', allowedHosts: undefined, allowedOrigins: listed });
    expect(admission(all, 'mcp.example.com', 'https://app.example.com')).toBeUndefined();
    // An unchecked Host proves nothing: its "own" origin is not enough here.
    expect(admission(all, 'evil.example', 'http://evil.example')).toBe('ORIGIN_NOT_ALLOWED');
  });

  it('on all interfaces with nothing configured, any Origin passes (sidecars behind ingresses, as before)', () => {
    expect(admission(ON_ALL, 'mcp.example.com', 'https://app.example.com')).toBeUndefined();
  });
});
