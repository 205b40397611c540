import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { callText, connect, connectSettled } from '../helpers/client.js';
import { killAll, startFixture, startProxy } from '../helpers/processes.js';

afterAll(killAll);

/** The value of one sample in Prometheus text, e.g. metric('..._total{signal="status_404"}'). */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

describe('operating the proxy: probes, metrics, access log', () => {
  it('answers /healthz and /readyz itself, and /readyz follows the upstream', async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl, { UPSTREAM_RETRY_MS: '0' });
    const health = await fetch(`${proxy.origin}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' }); // the fixture would have said "not found"
    const ready = await fetch(`${proxy.origin}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });

    await upstream.kill();
    await expect.poll(async () => (await fetch(`${proxy.origin}/readyz`)).status).toBe(503);
    expect((await fetch(`${proxy.origin}/healthz`)).status).toBe(200); // alive, just not ready
    // Started again on its port (killAll ends it).
    await startFixture('sdk', { port: upstream.port });
    await expect.poll(async () => (await fetch(`${proxy.origin}/readyz`)).status).toBe(200);
  });

  it('serves Prometheus metrics that move as sessions are created, replayed and ended', async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl);
    const metrics = async () => {
      const res = await fetch(`${proxy.origin}/metrics`);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      return res.text();
    };
    const before = await metrics();
    for (const name of [
      'mcp_session_proxy_active_sessions',
      'mcp_session_proxy_sessions_created_total',
      'mcp_session_proxy_replays_total',
      'mcp_session_proxy_replay_failures_total',
      'mcp_session_proxy_upstream_errors_total',
      'mcp_session_proxy_request_duration_seconds',
      'mcp_session_proxy_open_sse_streams',
      'mcp_session_proxy_process_resident_memory_bytes',
    ]) {
      expect(before).toContain(`# TYPE ${name}`);
    }
    expect(sample(before, 'mcp_session_proxy_sessions_created_total')).toBe(0);

    const c = await connectSettled(proxy.url, 'measured', upstream);
    expect(await callText(c, 'echo', { text: 'a' })).toBe('a');
    await upstream.drop();
    expect(await callText(c, 'echo', { text: 'b' })).toBe('b');
    await expect.poll(async () => sample(await metrics(), 'mcp_session_proxy_open_sse_streams')).toBe(1); // the client's GET stream

    const during = await metrics();
    expect(sample(during, 'mcp_session_proxy_sessions_created_total')).toBe(1);
    expect(sample(during, 'mcp_session_proxy_active_sessions')).toBe(1);
    expect(sample(during, 'mcp_session_proxy_replays_total{signal="status_404"}')).toBe(1);
    expect(sample(during, 'mcp_session_proxy_request_duration_seconds_count{method="POST",outcome="2xx"}')).toBe(4); // initialize, initialized, a, b

    await upstream.fault({ refuseInitialize: '500' });
    await upstream.drop();
    await expect(callText(c, 'echo', { text: 'c' })).rejects.toThrow(/REPLAY_FAILED/);
    await upstream.fault({ refuseInitialize: '0' });
    await c.transport.terminateSession();
    await c.close();

    const after = await metrics();
    expect(sample(after, 'mcp_session_proxy_replay_failures_total')).toBe(1);
    expect(sample(after, 'mcp_session_proxy_upstream_errors_total{kind="replay_failed"}')).toBe(1);
    expect(sample(after, 'mcp_session_proxy_sessions_ended_total{reason="deleted"}')).toBe(1);
    expect(sample(after, 'mcp_session_proxy_active_sessions')).toBe(0);
    // No session id, upstream id or other request data in any label.
    expect(after).not.toContain(c.sessionId() ?? 'unreachable');
    for (const id of (await upstream.stats()).issuedIds) expect(after).not.toContain(id);
  });

  it('writes one access line per request with method, status, duration, session fingerprint and replay flag', async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl);
    const c = await connectSettled(proxy.url, 'logged', upstream);
    await upstream.drop();
    expect(await callText(c, 'echo', { text: 'x' })).toBe('x');
    await c.close();
    // Log lines are written in batches (at most 200 ms late).
    const accessLines = () =>
      proxy
        .output()
        .split('\n')
        .filter((l) => l.includes('"msg":"request"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    await expect.poll(() => accessLines().find((l) => l.replayed === 'status_404')).toBeDefined();
    const replayed = accessLines().find((l) => l.replayed === 'status_404');
    expect(replayed).toMatchObject({ method: 'POST', path: '/mcp', status: 200, complete: true, error: null });
    expect(replayed!.sid).toMatch(/^fp:[0-9a-f]{12}$/);
    expect(typeof replayed!.ms).toBe('number');
    // Probes are not logged at info (they would drown the log): once the access line of a request
    // made after the probe is out, the probe's would be too.
    await fetch(`${proxy.origin}/healthz`);
    await fetch(`${proxy.url}?after-probe`, { method: 'DELETE' });
    await expect.poll(() => accessLines().some((l) => l.method === 'DELETE' && l.status === 400)).toBe(true);
    expect(proxy.output()).not.toMatch(/"path":"\/healthz"/);
  });

  it('METRICS=false serves no metrics', async () => {
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl, { METRICS: 'false' });
    const res = await fetch(`${proxy.origin}/metrics`);
    expect(await res.text()).not.toContain('mcp_session_proxy');
  });
});

describe('the command line', () => {
  const run = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, ['dist/main.js', ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      encoding: 'utf8',
      timeout: 10_000,
    });

  it('--help lists every setting with its flag, variable and default; --version prints the version', () => {
    const help = run(['--help']);
    expect(help.status).toBe(0);
    for (const text of ['--upstream', 'UPSTREAM_URL', '--max-sessions', 'MAX_SESSIONS', '50000', '--config', 'CONFIG_FILE', '/readyz']) {
      expect(help.stdout).toContain(text);
    }
    const version = run(['--version']);
    expect(version.status).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('invalid configuration: one line per problem, exit 2, before any port is opened', () => {
    const result = run(['--port', 'eighty', '--max-sessions', '0'], { UPSTREAM_URL: 'ftp://nowhere', LOG_LEVEL: 'loud' });
    expect(result.status).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toEqual([
      'mcp-session-proxy: invalid configuration: UPSTREAM_URL: must be an http:// or https:// URL',
      'mcp-session-proxy: invalid configuration: --port: must be a whole number from 0 to 65535',
      'mcp-session-proxy: invalid configuration: LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent',
      'mcp-session-proxy: invalid configuration: --max-sessions: must be a whole number from 1 to 10000000',
    ]);
    expect(result.stdout).toBe(''); // nothing was started, so nothing listened
  });

  it('reads a YAML config file, under environment variables and flags', async () => {
    const upstream = await startFixture('sdk');
    const dir = mkdtempSync(join(tmpdir(), 'msp-config-'));
    const file = join(dir, 'proxy.yaml');
    writeFileSync(file, `upstreamUrl: ${upstream.mcpUrl}\nmcpPath: /from-file\nhealthPath: /alive\nmaxSessions: 10\n`);
    const proxy = await startProxy('', { CONFIG_FILE: file, HEALTH_PATH: '/from-env' }).catch(() => undefined);
    expect(proxy).toBeUndefined(); // an empty --upstream flag is a mistake, not "unset"
    const viaFile = await startProxy(upstream.mcpUrl.replace('/mcp', '/mcp'), { CONFIG_FILE: file, HEALTH_PATH: '/from-env' });
    expect((await fetch(`${viaFile.origin}/from-env`)).status).toBe(200); // env over file
    expect(await (await fetch(`${viaFile.origin}/alive`)).text()).not.toContain('"ok"'); // file value overridden
    const c = await connect(`${viaFile.origin}/from-file`, 'configured'); // file over default
    expect(await callText(c, 'echo', { text: 'file' })).toBe('file');
    await c.close();
  });
});
