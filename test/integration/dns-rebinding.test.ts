import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFORMANCE } from '../helpers/conformance.js';
import { useFixtureAndProxy } from '../helpers/fixture-and-proxy.js';
import { startProxy } from '../helpers/processes.js';

const INIT =
  '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"rebind","version":"1"}}}';

interface Answer {
  readonly status: number;
  readonly body: string;
}

/** node:http, since fetch will not send a Host header of our choosing. */
function send(port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers:
          body === undefined ? headers : { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function runScenario(url: string): Promise<{ code: number; output: string; checks: { id: string; status: string }[] }> {
  const outDir = mkdtempSync(join(tmpdir(), 'conformance-'));
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CONFORMANCE, 'server', '--url', url, '--scenario', 'dns-rebinding-protection', '-o', outDir],
      (error, stdout, stderr) => {
        const [run] = readdirSync(outDir);
        const checks =
          run === undefined ? [] : (JSON.parse(readFileSync(join(outDir, run, 'checks.json'), 'utf8')) as { id: string; status: string }[]);
        resolve({ code: error === null ? 0 : Number(error.code), output: stdout + stderr, checks });
      },
    );
  });
}

describe('DNS rebinding protection on a proxy listening on loopback', () => {
  const env = useFixtureAndProxy('sdk');

  it('passes the MCP conformance scenario dns-rebinding-protection (2025-11-25) through the proxy', async () => {
    const result = await runScenario(env.proxy.url);
    expect(result.checks.map((c) => [c.id, c.status])).toEqual([
      ['localhost-host-rebinding-rejected', 'SUCCESS'],
      ['localhost-host-valid-accepted', 'SUCCESS'],
    ]);
    expect(result.code, result.output).toBe(0);
  });

  it('a foreign Host (the rebound name) gets 403 with a JSON-RPC error, before any flow or method check', async () => {
    const evil = `evil.example.com:${env.proxy.port}`;
    for (const [method, body] of [
      ['POST', INIT],
      ['GET', undefined],
      ['DELETE', undefined],
      ['OPTIONS', undefined],
      ['PUT', undefined],
    ] as const) {
      const res = await send(env.proxy.port, method, '/mcp', { host: evil, origin: `http://${evil}` }, body);
      expect(res.status, method).toBe(403);
      expect(JSON.parse(res.body)).toMatchObject({
        jsonrpc: '2.0',
        id: null,
        error: { code: -32000, data: { reason: 'HOST_NOT_ALLOWED' } },
      });
    }
    // Nothing reached the upstream.
    expect((await env.upstream.stats()).initializes['rebind']).toBeUndefined();
  });

  it('a loopback Host with a foreign Origin gets 403 ORIGIN_NOT_ALLOWED', async () => {
    const res = await send(
      env.proxy.port,
      'POST',
      '/mcp',
      { host: `127.0.0.1:${env.proxy.port}`, origin: 'http://evil.example.com' },
      INIT,
    );
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toMatchObject({ jsonrpc: '2.0', error: { code: -32000, data: { reason: 'ORIGIN_NOT_ALLOWED' } } });
  });

  it.each([
    ["localhost, with a page from the proxy's own origin", (p: number) => ({ host: `localhost:${p}`, origin: `http://localhost:${p}` })],
    ['127.0.0.1, no Origin (not a browser)', (p: number) => ({ host: `127.0.0.1:${p}` })],
    ['[::1], any port', () => ({ host: '[::1]:1' })],
  ])('a loopback Host is served: %s', async (_name, headers) => {
    const res = await send(env.proxy.port, 'POST', '/mcp', headers(env.proxy.port), INIT);
    expect(res.status).toBe(200);
    expect(res.body).toContain('"protocolVersion"');
  });

  it("pass-through paths check Host too (the upstream only ever sees the proxy's); probes do not", async () => {
    const evil = { host: `evil.example.com:${env.proxy.port}` };
    const discovery = await send(env.proxy.port, 'GET', '/.well-known/oauth-protected-resource', evil);
    expect(discovery.status).toBe(403);
    expect(JSON.parse(discovery.body)).toMatchObject({ error: { data: { reason: 'HOST_NOT_ALLOWED' } } });
    expect((await send(env.proxy.port, 'GET', '/healthz', evil)).status).toBe(200);
  });

  it('--allowed-hosts replaces the loopback names', async () => {
    const proxy = await startProxy(env.upstream.mcpUrl, { ALLOWED_HOSTS: 'mcp.internal' });
    expect((await send(proxy.port, 'POST', '/mcp', { host: `mcp.internal:${proxy.port}` }, INIT)).status).toBe(200);
    expect((await send(proxy.port, 'POST', '/mcp', { host: `localhost:${proxy.port}` }, INIT)).status).toBe(403);
  });
});
