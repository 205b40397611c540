import type { IncomingHttpHeaders } from 'node:http';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toClientHeaders, toUpstreamHeaders } from '../../src/http/headers.js';
import type { ClientSessionId, UpstreamSessionId } from '../../src/session/ids.js';

const CLIENT_ID = 'c'.repeat(43) as ClientSessionId;
const UPSTREAM_ID = 'upstream-session-0001' as UpstreamSessionId;

const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];

describe('toUpstreamHeaders', () => {
  const clientHeaders: IncomingHttpHeaders = {
    host: 'proxy.example:8080',
    'content-length': '123',
    'accept-encoding': 'gzip, deflate, br',
    'mcp-session-id': CLIENT_ID,
    authorization: 'Bearer token-123',
    cookie: 'a=1; b=2',
    accept: 'application/json, text/event-stream',
    'content-type': 'application/json',
    'mcp-protocol-version': '2025-06-18',
    'last-event-id': 'evt-42',
    'user-agent': 'node',
    'x-request-id': 'r-1',
  };

  it('forwards the end-to-end headers a client sends', () => {
    const out = toUpstreamHeaders(clientHeaders, UPSTREAM_ID);
    expect(out).toMatchObject({
      authorization: 'Bearer token-123',
      cookie: 'a=1; b=2',
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
      'mcp-protocol-version': '2025-06-18',
      'last-event-id': 'evt-42',
      'user-agent': 'node',
      'x-request-id': 'r-1',
    });
  });

  it('does not forward host, content-length or accept-encoding', () => {
    const out = toUpstreamHeaders(clientHeaders, UPSTREAM_ID);
    expect(out).not.toHaveProperty('host');
    expect(out).not.toHaveProperty('content-length');
    expect(out).not.toHaveProperty('accept-encoding');
  });

  it('replaces the client session id with the upstream one', () => {
    const out = toUpstreamHeaders(clientHeaders, UPSTREAM_ID);
    expect(out['mcp-session-id']).toBe(UPSTREAM_ID);
    expect(Object.values(out).flat()).not.toContain(CLIENT_ID);
  });

  it('sends no session id when the upstream has none, even if the client sent one', () => {
    const out = toUpstreamHeaders(clientHeaders, undefined);
    expect(out).not.toHaveProperty('mcp-session-id');
    expect(Object.values(out).flat()).not.toContain(CLIENT_ID);
  });

  it('adds the upstream session id when the client sent none', () => {
    expect(toUpstreamHeaders({ accept: 'application/json' }, UPSTREAM_ID)).toEqual({
      accept: 'application/json',
      'mcp-session-id': UPSTREAM_ID,
    });
  });

  it('drops every hop-by-hop header', () => {
    const headers: IncomingHttpHeaders = { accept: '*/*' };
    for (const name of HOP_BY_HOP) headers[name] = 'x';
    headers.connection = 'keep-alive';
    expect(toUpstreamHeaders(headers, undefined)).toEqual({ accept: '*/*' });
  });

  it('drops headers named in Connection, in any case and spacing', () => {
    const out = toUpstreamHeaders(
      {
        connection: 'keep-alive, X-Hop ,x-other',
        'x-hop': '1',
        'x-other': '2',
        'x-kept': '3',
        authorization: 'Bearer t',
      },
      undefined,
    );
    expect(out).toEqual({ 'x-kept': '3', authorization: 'Bearer t' });
  });

  it('drops headers named in a repeated Connection header', () => {
    const headers = { connection: ['close', 'x-a'], 'x-a': '1', 'x-b': '2' } as unknown as IncomingHttpHeaders;
    expect(toUpstreamHeaders(headers, undefined)).toEqual({ 'x-b': '2' });
  });

  it('keeps a lone "Connection: close" from dropping anything else', () => {
    expect(toUpstreamHeaders({ connection: 'close', close: 'odd but end-to-end', accept: '*/*' }, undefined)).toEqual({
      close: 'odd but end-to-end',
      accept: '*/*',
    });
  });

  it('cannot be tricked into forwarding the client id by Connection naming other headers', () => {
    const out = toUpstreamHeaders({ connection: 'authorization', authorization: 'x', 'mcp-session-id': CLIENT_ID }, UPSTREAM_ID);
    expect(out).toEqual({ 'mcp-session-id': UPSTREAM_ID });
  });

  it('keeps array values (set-cookie style) as arrays', () => {
    const headers = { 'x-multi': ['a', 'b'] } as unknown as IncomingHttpHeaders;
    expect(toUpstreamHeaders(headers, undefined)).toEqual({ 'x-multi': ['a', 'b'] });
  });

  it('skips undefined values and does not modify its input', () => {
    const input: IncomingHttpHeaders = { accept: '*/*', authorization: undefined, 'mcp-session-id': CLIENT_ID };
    const copy = { ...input };
    const out = toUpstreamHeaders(input, UPSTREAM_ID);
    expect(out).toEqual({ accept: '*/*', 'mcp-session-id': UPSTREAM_ID });
    expect(input).toEqual(copy);
  });
});

describe('toClientHeaders', () => {
  const upstreamHeaders: IncomingHttpHeaders = {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    'mcp-session-id': UPSTREAM_ID,
    'set-cookie': ['a=1', 'b=2'],
    'content-length': '42',
    'transfer-encoding': 'chunked',
    connection: 'keep-alive',
    'keep-alive': 'timeout=5',
    'www-authenticate': 'Bearer realm="mcp"',
  };

  it('replaces the upstream session id with the client one', () => {
    const out = toClientHeaders(upstreamHeaders, CLIENT_ID);
    expect(out['mcp-session-id']).toBe(CLIENT_ID);
    expect(Object.values(out).flat()).not.toContain(UPSTREAM_ID);
  });

  it('never passes the upstream session id on when there is no client id', () => {
    const out = toClientHeaders(upstreamHeaders, undefined);
    expect(out).not.toHaveProperty('mcp-session-id');
    expect(Object.values(out).flat()).not.toContain(UPSTREAM_ID);
  });

  it('drops hop-by-hop headers and keeps end-to-end ones, including content-length', () => {
    expect(toClientHeaders(upstreamHeaders, CLIENT_ID)).toEqual({
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'set-cookie': ['a=1', 'b=2'],
      'content-length': '42',
      'www-authenticate': 'Bearer realm="mcp"',
      'mcp-session-id': CLIENT_ID,
    });
  });

  it('drops every hop-by-hop header and the ones named in Connection', () => {
    const headers: IncomingHttpHeaders = { 'content-type': 'application/json' };
    for (const name of HOP_BY_HOP) headers[name] = 'x';
    headers.connection = 'X-Upstream-Hop';
    headers['x-upstream-hop'] = 'secret';
    expect(toClientHeaders(headers, undefined)).toEqual({ 'content-type': 'application/json' });
  });
});

describe('header properties', () => {
  // Node and undici hand headers over with lower-case names.
  const name = fc.oneof(
    fc.string({ minLength: 1 }).map((s) => s.toLowerCase()),
    fc.constantFrom(
      'mcp-session-id',
      'connection',
      'host',
      'content-length',
      'accept-encoding',
      'authorization',
      'transfer-encoding',
      'x-custom',
    ),
  );
  const value = fc.oneof(fc.string(), fc.array(fc.string()), fc.constantFrom(CLIENT_ID, UPSTREAM_ID, 'keep-alive', 'close'));
  const headers = fc.dictionary(name, value, { noNullPrototype: true }).map((record) => record as unknown as IncomingHttpHeaders);
  const maybeUpstream = fc.option(fc.constant(UPSTREAM_ID), { nil: undefined });
  const maybeClient = fc.option(fc.constant(CLIENT_ID), { nil: undefined });

  const mentions = (out: Record<string, string | string[]>, id: string) =>
    Object.entries(out).some(([key, v]) => key === 'mcp-session-id' && (v === id || (Array.isArray(v) && v.includes(id))));

  it('toUpstreamHeaders never throws and never sends the client id as the session header', () => {
    fc.assert(
      fc.property(headers, maybeUpstream, (input, upstreamId) => {
        const withClientId = { ...input, 'mcp-session-id': CLIENT_ID };
        const out = toUpstreamHeaders(withClientId, upstreamId);
        expect(out['mcp-session-id']).toBe(upstreamId);
        expect(mentions(out, CLIENT_ID)).toBe(false);
        for (const skipped of ['host', 'content-length', 'accept-encoding', 'connection', 'transfer-encoding']) {
          expect(out).not.toHaveProperty(skipped);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('toClientHeaders never throws and never sends the upstream id as the session header', () => {
    fc.assert(
      fc.property(headers, maybeClient, (input, clientId) => {
        const withUpstreamId = { ...input, 'mcp-session-id': UPSTREAM_ID };
        const out = toClientHeaders(withUpstreamId, clientId);
        expect(out['mcp-session-id']).toBe(clientId);
        expect(mentions(out, UPSTREAM_ID)).toBe(false);
        expect(out).not.toHaveProperty('connection');
        expect(out).not.toHaveProperty('transfer-encoding');
      }),
      { numRuns: 1000 },
    );
  });

  it('both directions never throw on arbitrary records and only copy input values', () => {
    fc.assert(
      fc.property(headers, maybeUpstream, maybeClient, (input, upstreamId, clientId) => {
        const up = toUpstreamHeaders(input, upstreamId);
        const down = toClientHeaders(input, clientId);
        for (const [out, id] of [
          [up, upstreamId],
          [down, clientId],
        ] as const) {
          for (const [key, v] of Object.entries(out)) {
            if (key === 'mcp-session-id') expect(v).toBe(id);
            else expect(v).toBe(input[key]);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });
});
