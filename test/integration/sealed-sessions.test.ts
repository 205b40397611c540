/**
 * Sealed session ids (SESSION_SECRET): the client's Mcp-Session-Id is an encrypted, authenticated
 * token any replica holding the secret can open, so a session survives a proxy restart and works
 * on every replica behind a load balancer. Real processes only: the fixture upstream, the built
 * proxy, the official SDK client, and a per-request round-robin balancer (test/helpers/balancer.ts).
 *
 * Every proxy in this file logs at trace level to a file of its own. After each test, the proxies it
 * started are stopped and their logs searched for every session id, token part and secret that
 * test handled: each test audits its own logs, and so does a test run alone.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startBalancer, type Balancer } from '../helpers/balancer.js';
import { callText, connect, type Connected } from '../helpers/client.js';
import { expectNoSecretsInLogs } from '../helpers/log-audit.js';
import { FIXTURE_TOOLS, freePort, killAll, startFixture, startProxy, type Fixture, type Proxy } from '../helpers/processes.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ACCEPT = 'application/json, text/event-stream';
const LIST = '{"jsonrpc":"2.0","id":7,"method":"tools/list"}';
const JWE_COMPACT = /^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

// ---------------------------------------------------------------------------------------------
// The log audit, after each test: what the test's proxies logged, searched for what it handled.
const logDir = mkdtempSync(join(tmpdir(), 'sealed-sessions-'));
let logFileCount = 0;
const balancers: Balancer[] = [];

interface TestAudit {
  /** The proxies the test started, each with its log file. */
  readonly proxies: (Proxy & { logFile: string })[];
  /** The upstreams they forwarded to: every upstream session id those issued is a secret too. */
  readonly upstreams: Set<Fixture>;
  /** Session ids and tokens clients held or sent, tampered ones included. */
  readonly ids: Set<string>;
  readonly secrets: Set<string>;
}
let audit: TestAudit;

beforeEach(() => {
  audit = { proxies: [], upstreams: new Set(), ids: new Set(), secrets: new Set() };
});

afterEach(async () => {
  // A test that starts no proxy (bad secrets at startup) checks its processes' output itself.
  if (audit.proxies.length === 0) return;
  // Stopped (SIGTERM), a proxy flushes its logger before it exits: its log file is complete. (Those
  // a test killed with SIGKILL lost what they had not flushed: that never reaches any log.)
  await Promise.all(audit.proxies.map((p) => p.stop()));
  const logs = audit.proxies.map((p) => readFileSync(p.logFile, 'utf8'));

  const needles = new Set<string>();
  for (const id of audit.ids) {
    needles.add(id);
    const parts = id.split('.');
    if (parts.length < 4) continue;
    // iv, ciphertext and tag on their own, and a prefix of the ciphertext (a truncated token).
    for (const part of parts.slice(2)) if (part.length >= 16) needles.add(part);
    if (parts[3]!.length > 24) needles.add(parts[3]!.slice(0, 24));
  }
  for (const secret of audit.secrets) {
    needles.add(secret);
    needles.add(Buffer.from(secret).toString('hex'));
    needles.add(Buffer.from(secret).toString('base64url'));
  }
  for (const upstream of audit.upstreams) for (const upstreamId of (await upstream.stats()).issuedIds) needles.add(upstreamId);
  expectNoSecretsInLogs(logs, needles);

  // A session reopened from its id is logged at info level, by its fingerprint.
  const reopenLines = logs.flatMap((log) => log.split('\n')).filter((l) => l.includes('"msg":"session reopened from its sealed id"'));
  for (const line of reopenLines) expect(JSON.parse(line)).toMatchObject({ level: 30, sid: expect.stringMatching(/^fp:[0-9a-f]{12}$/) });
});

afterAll(async () => {
  await Promise.all(balancers.map((b) => b.close()));
  await killAll();
});

function newSecret(): string {
  const secret = randomBytes(32).toString('base64');
  audit.secrets.add(secret);
  return secret;
}

/** The built proxy, at trace level, logging to a file of its own (read by the log audit). */
async function proxy(
  upstream: Fixture,
  env: Record<string, string> = {},
  port: number | string = '0',
): Promise<Proxy & { logFile: string }> {
  const logFile = join(logDir, `proxy-${logFileCount++}.log`);
  audit.upstreams.add(upstream);
  try {
    const p = Object.assign(await startProxy(upstream.mcpUrl, { LOG_LEVEL: 'trace', ...env }, String(port), logFile), { logFile });
    audit.proxies.push(p);
    return p;
  } catch (error) {
    // With a log file, the helper's error cannot show what the proxy said: add it.
    throw new Error(`${(error as Error).message}\n${logFile}:\n${readFileSync(logFile, 'utf8').slice(-4000)}`, { cause: error });
  }
}

async function client(url: string, name: string, headers?: Record<string, string>): Promise<Connected> {
  const c = await connect(url, name, headers);
  audit.ids.add(c.sessionId()!);
  return c;
}

function startupLine(p: { logFile: string }): Record<string, unknown> {
  const line = readFileSync(p.logFile, 'utf8')
    .split('\n')
    .find((l) => l.includes('"msg":"mcp-session-proxy listening"'));
  expect(line, 'no startup line').toBeDefined();
  return JSON.parse(line!) as Record<string, unknown>;
}

interface Raw {
  status: number;
  body: string;
}

/** A raw request on a session, as the SDK would send it, with whatever id we choose. */
async function raw(url: string, id: string, protocolVersion: string, headers: Record<string, string> = {}, method = 'POST'): Promise<Raw> {
  audit.ids.add(id);
  const res = await fetch(url, {
    method,
    headers: {
      ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
      accept: method === 'GET' ? 'text/event-stream' : ACCEPT,
      'mcp-session-id': id,
      'mcp-protocol-version': protocolVersion,
      ...headers,
    },
    body: method === 'POST' ? LIST : null,
  });
  // A GET that opened an event stream never ends by itself: its status is all we need.
  if (method === 'GET' && res.ok) {
    await res.body?.cancel();
    return { status: res.status, body: '' };
  }
  return { status: res.status, body: await res.text() };
}

/** What the proxy answers for an id it has never seen (random, 43 characters). */
async function unknownIdAnswer(url: string, protocolVersion: string): Promise<unknown> {
  const answer = await raw(url, randomBytes(32).toString('base64url'), protocolVersion);
  expect(answer.status).toBe(404);
  return JSON.parse(answer.body);
}

/** 404 with the SESSION_NOT_FOUND body, the very same answer as for an unknown id. */
/** A DELETE answered as for an unknown id (a DELETE carries no JSON-RPC id to answer). */
function expectDeleteRefused(answer: Raw) {
  expect(answer.status).toBe(404);
  expect(JSON.parse(answer.body)).toEqual({
    jsonrpc: '2.0',
    id: null,
    error: { code: -32001, message: 'Session not found', data: { reason: 'SESSION_NOT_FOUND' } },
  });
}

function expectNotFound(answer: Raw, unknown: unknown) {
  expect(answer.status).toBe(404);
  const body = JSON.parse(answer.body) as unknown;
  expect(body).toMatchObject({ error: { code: -32001, data: { reason: 'SESSION_NOT_FOUND' } } });
  expect(body).toEqual(unknown);
}

/** A tools/list answer that went through (JSON, or one SSE event) and listed the fixture's tools. */
function expectListed(answer: Raw) {
  expect(answer.status).toBe(200);
  const json = answer.body.startsWith('{')
    ? answer.body
    : answer.body
        .split('\n')
        .find((l) => l.startsWith('data: '))!
        .slice('data: '.length);
  const listed = JSON.parse(json) as { id: number; result: { tools: { name: string }[] } };
  expect(listed.id).toBe(7); // LIST's id
  expect(listed.result.tools.map((t) => t.name)).toEqual(FIXTURE_TOOLS);
}

/** The value of one sample in Prometheus text (0 when the series does not exist yet). */
async function metric(p: Proxy, series: string): Promise<number> {
  const text = await (await fetch(`${p.origin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}
/** The sum of every sample whose series starts with `prefix` (all label values of a counter). */
async function metricSum(p: Proxy, prefix: string): Promise<number> {
  const text = await (await fetch(`${p.origin}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}
const REOPENED = 'mcp_session_proxy_sessions_reopened_total';
const REOPEN_REPLAYS = 'mcp_session_proxy_replays_total{signal="reopened"}';
const rejected = (reason: string) => `mcp_session_proxy_sealed_ids_rejected_total{reason="${reason}"}`;

/** Replace the character at `index` of `text` with another base64url character. */
function flip(text: string, index: number): string {
  const c = text[index]!;
  return text.slice(0, index) + (c === 'A' ? 'B' : 'A') + text.slice(index + 1);
}

/** Replace the character in the middle of part `part` (0–4) of a compact JWE. */
function flipPart(token: string, part: number): string {
  const parts = token.split('.');
  parts[part] = flip(parts[part]!, Math.floor(parts[part]!.length / 2));
  return parts.join('.');
}

/** Run the proxy until it exits (it should, at once): exit code, stdout, stderr. */
function runToExit(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SESSION_')));
  const child = spawn(
    process.execPath,
    [`${ROOT}dist/main.js`, '--upstream', 'http://127.0.0.1:9/mcp', '--port', '0', '--host', '127.0.0.1'],
    {
      cwd: ROOT,
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    // A proxy that accepted the configuration would listen for ever: once it says it listens, kill
    // it (its exit code, null, then fails the test). Not a timer: a busy machine starts slowly.
    if (stdout.includes('"msg":"mcp-session-proxy listening"')) child.kill('SIGKILL');
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

// ---------------------------------------------------------------------------------------------

describe('sealed session ids (SESSION_SECRET)', () => {
  let upstream: Fixture;
  beforeAll(async () => {
    upstream = await startFixture('sdk');
  });

  it('with a secret, the id is a compact JWE under 1 KB that reveals nothing of the session; the startup line says "sealed"', async () => {
    const p = await proxy(upstream, { SESSION_SECRET: newSecret() });
    expect(startupLine(p)).toMatchObject({ sessions: 'sealed' });

    const a = await client(p.url, 'jwe-shape-client-7c1d');
    const b = await client(p.url, 'jwe-shape-client-7c1d');
    const id = a.sessionId()!;
    expect(id).toMatch(JWE_COMPACT);
    expect(id.length).toBeLessThanOrEqual(1024);
    expect(b.sessionId()).not.toBe(id);
    // Encrypted, not merely signed: no part decodes to anything of the initialize params.
    for (const part of id.split('.')) {
      const decoded = Buffer.from(part, 'base64url').toString('latin1');
      expect(decoded).not.toContain('jwe-shape-client-7c1d');
      expect(decoded).not.toContain('listChanged');
      expect(decoded).not.toContain(a.transport.protocolVersion!);
    }
    expect(await callText(a, 'echo', { text: 'sealed works' })).toBe('sealed works');
    expect(await callText(b, 'echo', { text: 'so does the second' })).toBe('so does the second');
    // In memory on the proxy that made them: nothing was reopened or replayed.
    expect(await metric(p, REOPENED)).toBe(0);
    expect(await metric(p, REOPEN_REPLAYS)).toBe(0);
    // The upstream never sees a client's id.
    expect((await upstream.stats()).foreignIds).toEqual([]);
    await Promise.all([a.close(), b.close()]);
  });

  it('without a secret: 43-character random ids, "in-process" sessions, lost on a restart (404)', async () => {
    const port = await freePort();
    const p1 = await proxy(upstream, {}, port);
    expect(startupLine(p1)).toMatchObject({ sessions: 'in-process' });
    const c = await client(p1.url, 'in-process-client');
    const id = c.sessionId()!;
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await callText(c, 'echo', { text: 'plain' })).toBe('plain');
    const version = c.transport.protocolVersion!;
    await c.close();
    // SIGKILL loses the log lines not flushed yet: let the session's reach the file first, so that
    // the log audit after this test has them to search (the restarted proxy only answers 404).
    await expect.poll(() => readFileSync(p1.logFile, 'utf8').includes('"msg":"session created"')).toBe(true);

    await p1.kill();
    const p2 = await proxy(upstream, {}, port);
    expectNotFound(await raw(p2.url, id, version), await unknownIdAnswer(p2.url, version));
  });

  describe.each(['sdk', 'strict'] as const)('two replicas with one secret behind a round-robin balancer (%s upstream)', (mode) => {
    it('one client session alternates between replicas: every call works, the id never changes, each replica replays once at most', async () => {
      const up = mode === 'sdk' ? upstream : await startFixture('strict');
      const secret = newSecret();
      const replicas = [await proxy(up, { SESSION_SECRET: secret }), await proxy(up, { SESSION_SECRET: secret })];
      const balancer = await startBalancer(replicas.map((r) => r.port));
      balancers.push(balancer);
      const name = `balanced-${mode}`;
      const requestsBeforeInitializedBefore = (await up.stats()).requestsBeforeInitialized;

      const c = await client(balancer.url, name);
      const id = c.sessionId();
      for (let i = 0; i < 10; i++) {
        expect(await callText(c, 'echo', { text: `call ${i}` })).toBe(`call ${i}`);
        expect(c.sessionId()).toBe(id);
      }
      // Two calls in a row land on both replicas: each upstream session got the client's own params.
      const [who0, who1] = [await callText(c, 'whoami'), await callText(c, 'whoami')];
      expect(who1).toBe(who0);
      const who = JSON.parse(who0) as { clientInfo: { name: string }; capabilities: object };
      expect(who.clientInfo.name).toBe(name);
      expect(who.capabilities).toMatchObject({ sampling: {}, roots: { listChanged: true } });
      expect(c.sessionId()).toBe(id);

      // Both replicas served the session, request by request.
      const [r0, r1] = balancer.counts;
      expect(r0).toBeGreaterThanOrEqual(5);
      expect(r1).toBeGreaterThanOrEqual(5);
      expect(Math.abs(r0! - r1!)).toBeLessThanOrEqual(1);

      // One replica made the session, the other reopened it from the id and replayed initialize.
      const reopened = await Promise.all(replicas.map((r) => metric(r, REOPENED)));
      const reopenReplays = await Promise.all(replicas.map((r) => metric(r, REOPEN_REPLAYS)));
      expect(reopened.sort()).toEqual([0, 1]);
      expect(reopenReplays.sort()).toEqual([0, 1]);
      // No replica replayed more than once, for any reason, and every upstream initialize but the
      // client's own was one of those replays.
      const allReplays = await Promise.all(replicas.map((r) => metricSum(r, 'mcp_session_proxy_replays_total{')));
      expect(Math.max(...allReplays)).toBe(1);
      const stats = await up.stats();
      const initializes = stats.initializes[name];
      expect(initializes).toBe(1 + allReplays[0]! + allReplays[1]!);
      // The client's own initialize and one replay, nothing else: the balancer sent the client's
      // notifications/initialized to the other replica, and the replica that forwarded the
      // initialize sent one itself before its next request, so the upstream (strict or not) never
      // saw a request on an upstream session that was not initialized.
      expect(initializes).toBe(2);
      expect(stats.requestsBeforeInitialized - requestsBeforeInitializedBefore).toBe(0);
      expect((await up.stats()).foreignIds).toEqual([]);
      await c.close();
    });
  });

  it("a proxy killed (SIGKILL) and restarted on its port: the client's next call works with the same id, one replay", async () => {
    const secret = newSecret();
    const port = await freePort();
    const p1 = await proxy(upstream, { SESSION_SECRET: secret }, port);
    const name = 'restart-survivor-sealed';
    const c = await client(p1.url, name);
    const id = c.sessionId();
    expect(await callText(c, 'echo', { text: 'before' })).toBe('before');

    await p1.kill();
    const p2 = await proxy(upstream, { SESSION_SECRET: secret }, port);
    expect(await callText(c, 'echo', { text: 'after' })).toBe('after');
    expect(c.sessionId()).toBe(id);
    // The new process rebuilt the session from the id alone: the client's own initialize params.
    const who = JSON.parse(await callText(c, 'whoami')) as { clientInfo: { name: string; version: string } };
    expect(who.clientInfo).toMatchObject({ name, version: '3.1.4' });
    expect((await upstream.stats()).initializes[name]).toBe(2);
    expect(await metric(p2, REOPENED)).toBe(1);
    expect(await metric(p2, REOPEN_REPLAYS)).toBe(1);
    await c.close();
  });

  it('SESSION_SECRET_FILE (one trailing newline ignored) seals exactly as SESSION_SECRET with the same value', async () => {
    const secret = newSecret();
    const file = join(logDir, 'session-secret');
    writeFileSync(file, `${secret}\n`);
    const port = await freePort();
    const p1 = await proxy(upstream, { SESSION_SECRET_FILE: file }, port);
    expect(startupLine(p1)).toMatchObject({ sessions: 'sealed' });
    const c = await client(p1.url, 'secret-from-file');
    expect(await callText(c, 'echo', { text: 'from file' })).toBe('from file');

    await p1.kill();
    const p2 = await proxy(upstream, { SESSION_SECRET: secret }, port);
    expect(await callText(c, 'echo', { text: 'from env' })).toBe('from env');
    expect(await metric(p2, REOPENED)).toBe(1);
    await c.close();
  });

  it('key rotation: ids sealed with SESSION_SECRET_PREVIOUS keep working, new ones use the current secret; once the old secret is gone, its ids get 404', async () => {
    const [secretA, secretB] = [newSecret(), newSecret()];
    const port = await freePort();
    const p1 = await proxy(upstream, { SESSION_SECRET: secretA }, port);
    const old = await client(p1.url, 'rotation-old');
    const oldId = old.sessionId()!;
    const version = old.transport.protocolVersion!;
    expect(await callText(old, 'echo', { text: 'A' })).toBe('A');

    // Rotation in progress: current B, previous A.
    await p1.kill();
    const p2 = await proxy(upstream, { SESSION_SECRET: secretB, SESSION_SECRET_PREVIOUS: secretA }, port);
    expect(startupLine(p2)).toMatchObject({ sessions: 'sealed' });
    expect(await callText(old, 'echo', { text: 'A under B+A' })).toBe('A under B+A');
    expect(old.sessionId()).toBe(oldId);
    expect(await metric(p2, REOPENED)).toBe(1);
    const fresh = await client(p2.url, 'rotation-new');
    expect(await callText(fresh, 'echo', { text: 'B' })).toBe('B');
    await old.close();

    // Rotation done: B only. The new session was sealed with B (it reopens); the old id does not.
    await p2.kill();
    const p3 = await proxy(upstream, { SESSION_SECRET: secretB }, port);
    const unknown = await unknownIdAnswer(p3.url, version);
    const invalidBefore = await metric(p3, rejected('invalid'));
    expectNotFound(await raw(p3.url, oldId, version), unknown);
    expect(await metric(p3, rejected('invalid'))).toBe(invalidBefore + 1);
    expect(await callText(fresh, 'echo', { text: 'B after rotation' })).toBe('B after rotation');
    const later = await client(p3.url, 'rotation-later');
    expect(await callText(later, 'echo', { text: 'fresh client' })).toBe('fresh client');
    await Promise.all([fresh.close(), later.close()]);
  });

  it('tampered or truncated ids get the 404 of an unknown id, and the rightful client keeps working', async () => {
    const p = await proxy(upstream, { SESSION_SECRET: newSecret() });
    const c = await client(p.url, 'tamper-victim');
    const id = c.sessionId()!;
    const version = c.transport.protocolVersion!;
    const unknown = await unknownIdAnswer(p.url, version);
    const parts = id.split('.');
    expect(parts).toHaveLength(5);

    const flipped = [flipPart(id, 0), flipPart(id, 2), flipPart(id, 3), flipPart(id, 4)]; // header, iv, ciphertext, tag
    const truncated = [
      parts.slice(0, 4).join('.'), // no tag part
      id.slice(0, -2), // tag cut short
      `${parts.slice(0, 3).join('.')}.${parts[3]!.slice(0, -8)}.${parts[4]}`, // ciphertext cut short
      `${parts[0]}..${parts[2]}`, // header and iv only
      `${id}.${parts[4]}`, // one part too many
    ];
    const invalidBefore = await metric(p, rejected('invalid'));
    for (const bad of flipped) {
      expect(bad).not.toBe(id);
      expectNotFound(await raw(p.url, bad, version), unknown);
    }
    // Well-formed tokens that failed their integrity check were counted as such, each one.
    expect(await metric(p, rejected('invalid'))).toBe(invalidBefore + flipped.length);
    for (const bad of truncated) {
      expect(bad).not.toBe(id);
      expectNotFound(await raw(p.url, bad, version), unknown);
    }
    expect(await metric(p, REOPENED)).toBe(0);

    expect(await callText(c, 'echo', { text: 'unharmed' })).toBe('unharmed');
    expectListed(await raw(p.url, id, version));
    await c.close();
  });

  it('an id older than SESSION_MAX_AGE_MS gets 404; a proxy with a longer limit still accepts it', async () => {
    const secret = newSecret();
    const p1 = await proxy(upstream, { SESSION_SECRET: secret });
    const c = await client(p1.url, 'ageing-client');
    const madeAt = Date.now(); // the id was issued no later than now
    const id = c.sessionId()!;
    const version = c.transport.protocolVersion!;
    await c.close();
    await p1.kill();

    const short = await proxy(upstream, { SESSION_SECRET: secret, SESSION_MAX_AGE_MS: '1000' });
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, madeAt + 2500 - Date.now())));
    expectNotFound(await raw(short.url, id, version), await unknownIdAnswer(short.url, version));
    expect(await metric(short, rejected('expired'))).toBe(1);
    expect(await metric(short, REOPENED)).toBe(0);

    // The same token, on a replica with the default age limit: the 404 above was its age alone.
    const long = await proxy(upstream, { SESSION_SECRET: secret });
    expectListed(await raw(long.url, id, version));
    expect(await metric(long, REOPENED)).toBe(1);
  });

  it('a reopened id presented without credentials, or DELETEd with others, gets 404; another opaque token reopens it only on an upstream session of its own; its owner keeps working', async () => {
    // Its own upstream without GET streams: the client's stream reconnecting after the restart
    // would otherwise race the intruder to take the session into memory.
    const up = await startFixture('sdk');
    await up.fault({ getStatus: '405' });
    const secret = newSecret();
    const port = await freePort();
    const p1 = await proxy(up, { SESSION_SECRET: secret }, port);
    const alice = await client(p1.url, 'alice-client', { authorization: 'Bearer alice' });
    const id = alice.sessionId()!;
    const version = alice.transport.protocolVersion!;
    expect(await callText(alice, 'echo', { text: 'alice 1' })).toBe('alice 1');

    await p1.kill();
    const p2 = await proxy(up, { SESSION_SECRET: secret }, port);
    const unknown = await unknownIdAnswer(p2.url, version);
    // Not in memory on p2: these go through the sealed-id path.
    expectNotFound(await raw(p2.url, id, version), unknown); // no credentials at all
    expectDeleteRefused(await raw(p2.url, id, version, { authorization: 'Bearer mallory' }, 'DELETE'));
    expect(await metric(p2, rejected('credentials'))).toBe(2);
    expect(await metric(p2, REOPENED)).toBe(0);
    // The proxy cannot tell another opaque token from a refreshed one: it reopens the session,
    // on an upstream session of its own (the client's initialize replayed under that token).
    expect((await raw(p2.url, id, version, { authorization: 'Bearer mallory' })).status).toBe(200);
    expect(await metric(p2, REOPENED)).toBe(1);

    // The owner's call re-authenticates in turn: yet another upstream session.
    expect(await callText(alice, 'echo', { text: 'alice 2' })).toBe('alice 2');
    expect(alice.sessionId()).toBe(id);
    // Now in memory on p2, running under alice's token: ending it takes exactly that token.
    expectDeleteRefused(await raw(p2.url, id, version, { authorization: 'Bearer mallory' }, 'DELETE'));
    expectNotFound(await raw(p2.url, id, version), unknown);

    const stats = await up.stats();
    expect(stats.initializes['alice-client']).toBe(3); // the original, mallory's reopen, alice's re-authentication
    // No upstream session served both tokens (a replaced one is ended with the token that replaced it).
    const sessionsSeen = Object.values(stats.authorizationBySession);
    expect(sessionsSeen.some((seen) => seen.includes('Bearer mallory'))).toBe(true);
    expect(sessionsSeen.filter((seen) => seen.includes('Bearer mallory') && seen.includes('Bearer alice'))).toEqual([]);
    await alice.close();
  });

  it('after DELETE the id gets 404 on that proxy, although the token is intact', async () => {
    const p = await proxy(upstream, { SESSION_SECRET: newSecret() });
    const c = await client(p.url, 'deleting-client');
    const id = c.sessionId()!;
    const version = c.transport.protocolVersion!;
    expect(await callText(c, 'echo', { text: 'last words' })).toBe('last words');
    const deletesBefore = (await upstream.stats()).deletes;

    await c.transport.terminateSession();
    expect(c.sessionId()).toBeUndefined();
    await expect.poll(async () => (await upstream.stats()).deletes).toBe(deletesBefore + 1);

    const unknown = await unknownIdAnswer(p.url, version);
    const terminatedBefore = await metric(p, rejected('terminated'));
    expectNotFound(await raw(p.url, id, version), unknown);
    expect((await raw(p.url, id, version, {}, 'GET')).status).toBe(404);
    expect((await raw(p.url, id, version, {}, 'DELETE')).status).toBe(404);
    expect(await metric(p, rejected('terminated'))).toBe(terminatedBefore + 3); // POST, GET and DELETE
    expect(await metric(p, REOPENED)).toBe(0);
    await c.close();
  });

  it('documented limitation: a replica that never saw the DELETE still accepts the terminated id (and revives it)', async () => {
    const secret = newSecret();
    const [r1, r2] = [await proxy(upstream, { SESSION_SECRET: secret }), await proxy(upstream, { SESSION_SECRET: secret })];
    const c = await client(r1.url, 'deleted-elsewhere');
    const id = c.sessionId()!;
    const version = c.transport.protocolVersion!;
    await c.transport.terminateSession();
    await c.close();

    expect((await raw(r1.url, id, version)).status).toBe(404);
    // r2 has no record of the DELETE: the token opens, and the session comes back.
    expectListed(await raw(r2.url, id, version));
    expect(await metric(r2, REOPENED)).toBe(1);
  });

  it('bad secrets stop startup with exit code 2 and one line naming the setting, never the value', async () => {
    const good = newSecret();
    const shortSecret = 'Zq8xK3vT'; // 8 bytes
    const repetitive = 'a'.repeat(64);
    const shortFile = join(logDir, 'short-secret');
    writeFileSync(shortFile, `${shortSecret}\n`);
    const cases: { env: Record<string, string>; names: string; values: string[] }[] = [
      { env: { SESSION_SECRET: shortSecret }, names: 'SESSION_SECRET', values: [shortSecret] },
      { env: { SESSION_SECRET: repetitive }, names: 'SESSION_SECRET', values: [repetitive] },
      { env: { SESSION_SECRET: 'ab'.repeat(32) }, names: 'SESSION_SECRET', values: ['ab'.repeat(32)] },
      { env: { SESSION_SECRET_FILE: shortFile }, names: 'SESSION_SECRET', values: [shortSecret] },
      { env: { SESSION_SECRET_FILE: join(logDir, 'no-such-file') }, names: 'SESSION_SECRET', values: [] },
      { env: { SESSION_SECRET: good, SESSION_SECRET_PREVIOUS: repetitive }, names: 'SESSION_SECRET_PREVIOUS', values: [good, repetitive] },
      { env: { SESSION_SECRET_PREVIOUS: good }, names: 'SESSION_SECRET', values: [good] },
      { env: { SESSION_SECRET: good, SESSION_MAX_AGE_MS: '999' }, names: 'SESSION_MAX_AGE_MS', values: [good] },
    ];
    const results = await Promise.all(cases.map((c) => runToExit(c.env)));
    results.forEach((result, i) => {
      const { names, values } = cases[i]!;
      const context = `case ${i} (${Object.keys(cases[i]!.env).join(', ')}): ${result.stderr}`;
      expect(result.code, context).toBe(2);
      const lines = result.stderr.split('\n').filter((l) => l.trim() !== '');
      expect(lines, context).toHaveLength(1);
      expect(lines[0], context).toContain(names);
      expect(result.stdout, context).toBe('');
      for (const value of values) expect(result.stderr.includes(value), `case ${i}: the secret is in the output`).toBe(false);
    });
  });

  it('requests racing to the replica that forwarded the initialize wait for the notifications/initialized it sends for the client', async () => {
    const up = await startFixture('strict');
    const a = await proxy(up, { SESSION_SECRET: newSecret() });
    // The client's initialize reached this replica; its notifications/initialized went to another.
    const init = await fetch(a.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: ACCEPT },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'ack-race', version: '1' } },
      }),
    });
    await init.text();
    const id = init.headers.get('mcp-session-id')!;
    audit.ids.add(id);
    // The proxy's own notifications/initialized is slow to arrive (a slow or retried socket).
    await up.fault({ delayInitializedMs: '200' });
    const before = (await up.stats()).requestsBeforeInitialized;
    const answers = await Promise.all([1, 2, 3, 4].map(() => raw(a.url, id, '2025-06-18')));
    await up.fault({ delayInitializedMs: '0' });
    expect(answers.map((x) => x.status)).toEqual([200, 200, 200, 200]);
    const stats = await up.stats();
    // None of the four reached the strict upstream before the notification, so none met "before
    // initialization was complete" and nothing was replayed.
    expect(stats.requestsBeforeInitialized - before).toBe(0);
    expect(stats.initializes['ack-race']).toBe(1);
  });

  it('a GET resuming with Last-Event-ID on a replica that reopens the id does not hand that event id to its new upstream session', async () => {
    const up = await startFixture('sdk');
    const secret = newSecret();
    const [a, b] = [await proxy(up, { SESSION_SECRET: secret }), await proxy(up, { SESSION_SECRET: secret })];
    const c = await client(a.url, 'resume-elsewhere');
    const id = c.sessionId()!;
    const version = c.transport.protocolVersion!;
    const onB = await raw(b.url, id, version, { 'last-event-id': 'event-issued-on-a' }, 'GET');
    expect(onB.status).toBe(200);
    // On the replica that issued it, the event id does reach the upstream: the check is not vacuous.
    await raw(a.url, id, version, { 'last-event-id': 'event-for-a' }, 'GET');
    const { lastEventIds } = await up.stats();
    expect(lastEventIds).toContain('event-for-a');
    expect(lastEventIds).not.toContain('event-issued-on-a');
    await c.close();
  });
});
