/**
 * Real processes on 127.0.0.1 for integration tests: the proxy (the built dist/main.js, exactly
 * what users run), fixture upstreams, and @modelcontextprotocol/server-everything. The benchmark
 * starts its processes with these helpers too, so this module must not import vitest (vitest hooks
 * live in fixture-and-proxy.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PROXY_MAIN = `${ROOT}dist/main.js`;
const FIXTURE = `${ROOT}test/fixtures/legacy-upstream.ts`;
const MODERN_FIXTURE = `${ROOT}test/fixtures/modern-upstream.ts`;
const EVERYTHING = `${ROOT}node_modules/@modelcontextprotocol/server-everything/dist/index.js`;
/**
 * How long a process may take to say it is ready. Starting a tsx fixture has taken over 12 s on
 * our 2-core machine while another suite ran; this only bounds a process that never starts.
 */
export const READY_TIMEOUT_MS = 60_000;

export interface Proc {
  readonly child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** SIGKILL, and wait for the exit (and the end of its output). */
  kill(): Promise<void>;
  /** SIGTERM (a graceful shutdown), and wait for the exit (and the end of its output). */
  stop(): Promise<void>;
}

const running = new Set<Proc>();

/** Kill whatever a test file left running (call from afterAll). */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.kill()));
}

function start(args: string[], env: Record<string, string>, ready: (line: string) => number | undefined, logFile?: string) {
  // With a log file, output goes straight there (as in production) instead of through this
  // process; readiness is then read back from the file.
  const out = logFile === undefined ? 'pipe' : openSync(logFile, 'w');
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', out, out],
  });
  if (typeof out === 'number') closeSync(out);
  let text = '';
  let buffered = '';
  // 'close', not 'exit': it comes once the output pipes are drained too, so output() is complete.
  const exited = once(child, 'close');
  const proc: Proc = {
    child,
    output: () => text,
    async kill() {
      running.delete(proc);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      running.delete(proc);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
  running.add(proc);
  const port = new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      text += chunk.toString();
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        const found = ready(line);
        if (found !== undefined) resolve(found);
      }
    };
    if (logFile === undefined) {
      child.stdout!.on('data', onData);
      child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
    } else {
      const poll = setInterval(() => {
        const firstLines = readFileSync(logFile, 'utf8').split('\n');
        for (const line of firstLines) {
          const found = ready(line);
          if (found !== undefined) {
            clearInterval(poll);
            resolve(found);
          }
        }
      }, 50);
      child.once('exit', () => clearInterval(poll));
    }
    child.once('exit', (code) => reject(new Error(`process exited with ${code} before it was ready:\n${text}`)));
    setTimeout(() => reject(new Error(`process not ready after ${READY_TIMEOUT_MS} ms:\n${text}`)), READY_TIMEOUT_MS).unref();
  });
  return { proc, port };
}

function jsonLine(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export type FixtureMode = 'sdk' | 'strict' | 'stateless' | 'rotating';

/** The tools every fixture mode lists, in order (test/fixtures/legacy-upstream.ts). */
export const FIXTURE_TOOLS = ['echo', 'whoami', 'fail', 'log', 'wait', 'gated-progress'];

export interface Fixture extends Proc {
  readonly port: number;
  readonly mcpUrl: string;
  readonly origin: string;
  stats(): Promise<FixtureStats>;
  drop(): Promise<void>;
  release(): Promise<void>;
  /** Move the fixture's idle-expiry clock forward (sessions idle longer than --idle-ms expire). */
  advance(ms: number): Promise<void>;
  /** Switch fixture faults: hang, refuseInitialize, sessionIdOverride, delayMs, getStatus. */
  fault(settings: Record<string, string>): Promise<void>;
  /**
   * Change the server's tool, prompt or resource list, or a resource (`updated`, with its URI):
   * every live session hears of it on its GET stream. How many sessions it was sent to.
   */
  notify(kind: 'tools' | 'prompts' | 'resources' | 'updated', uri?: string): Promise<number>;
}

export interface FixtureStats {
  initializes: Record<string, number>;
  issuedIds: string[];
  foreignIds: string[];
  staleIdUses: number;
  requestsBeforeInitialized: number;
  initializedProtocolHeaders: (string | null)[];
  deletes: number;
  drops: number;
  activeSessions: number;
  authorizationSeen: string[];
  lastEventIds: string[];
  abortedResponses: number;
  sessionHeadersSeen: number;
  protocolVersionsOnGet: (string | null)[];
  authorizationBySession: Record<string, string[]>;
  clientBySession: Record<string, string>;
  duplicateRequestIds: number;
  cancelled: unknown[];
  waits: number;
  waitsCancelled: number;
  postsReceived: number;
  gateWaiters: number;
  gets: number;
  getsOpen: number;
  subscribes: string[];
  unsubscribes: string[];
  notified: number;
  toolRuns: Record<string, number>;
  answersReceived: number;
  answerErrors: number;
  questionFailures: { cancelled: number; running: number };
  /** MCP requests (with an id) whose answer is still open, on any session. */
  openRequests: number;
  traceparents: { method: string | null; header: string | null; meta: string | null; metaKeys: string[] }[];
}

export async function startFixture(
  mode: FixtureMode,
  options: {
    port?: number;
    idleMs?: number;
    conformance?: boolean;
    mrtr?: boolean;
    askOnStandingStream?: boolean;
    undeclared?: boolean;
  } = {},
): Promise<Fixture> {
  const { proc, port } = start(
    [
      '--import',
      'tsx',
      FIXTURE,
      '--mode',
      mode,
      '--port',
      String(options.port ?? 0),
      '--idle-ms',
      String(options.idleMs ?? 0),
      ...(options.conformance ? ['--conformance'] : []),
      ...(options.mrtr ? ['--mrtr'] : []),
      ...(options.askOnStandingStream ? ['--ask-on-standing-stream'] : []),
      ...(options.undeclared ? ['--undeclared'] : []),
    ],
    {},
    (line) => {
      const json = jsonLine(line);
      return json?.event === 'listening' ? Number(json.port) : undefined;
    },
  );
  const p = await port;
  const origin = `http://127.0.0.1:${p}`;
  const admin = async (path: string, method = 'POST') => {
    const res = await fetch(`${origin}/admin/${path}`, { method });
    if (!res.ok) throw new Error(`fixture admin ${path}: ${res.status}`);
    return res.json() as Promise<unknown>;
  };
  return {
    ...proc,
    port: p,
    origin,
    mcpUrl: `${origin}/mcp`,
    stats: () => admin('stats', 'GET') as Promise<FixtureStats>,
    drop: async () => void (await admin('drop')),
    release: async () => void (await admin('release')),
    advance: async (ms) => void (await admin(`advance?ms=${ms}`)),
    fault: async (settings) => void (await admin(`fault?${new URLSearchParams(settings)}`)),
    notify: async (kind, uri) =>
      ((await admin(`notify?${new URLSearchParams({ kind, ...(uri === undefined ? {} : { uri }) })}`)) as { sent: number }).sent,
  };
}

/** Wait until the fixture's stats satisfy `done` (each check is one admin request; bounded). */
export async function statsUntil(upstream: Fixture, done: (s: FixtureStats) => boolean): Promise<FixtureStats> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const stats = await upstream.stats();
    if (done(stats) || Date.now() > deadline) return stats;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** How the modern fixture serves 2025-era requests (createMcpHandler's `legacy` option). */
export type ModernLegacyMode = 'stateless' | 'reject';

export interface ModernFixture extends Proc {
  readonly port: number;
  readonly mcpUrl: string;
  readonly origin: string;
  stats(): Promise<ModernFixtureStats>;
}

export interface ModernFixtureStats {
  posts: number;
  withEnvelope: number;
  withoutEnvelope: number;
  methods: string[];
  mcpMethodHeaders: (string | null)[];
  mcpNameHeaders: string[];
  protocolVersionHeaders: (string | null)[];
  sessionIds: string[];
  discovers: number;
  initializes: string[];
  logLevels: (string | null)[];
  toolCallIds: unknown[];
  requestStates: (string | null)[];
  listens: unknown[];
  paramHeaders: Record<string, string>[];
  hangsStarted: string[];
  hangsAborted: string[];
  closedEarly: string[];
}

/** The 2026-07-28 upstream (TypeScript SDK v2 createMcpHandler), test/fixtures/modern-upstream.ts. */
export async function startModernFixture(
  options: { legacy?: ModernLegacyMode; port?: number; conformance?: boolean } = {},
): Promise<ModernFixture> {
  const { proc, port } = start(
    [
      '--import',
      'tsx',
      MODERN_FIXTURE,
      '--legacy',
      options.legacy ?? 'stateless',
      '--port',
      String(options.port ?? 0),
      ...(options.conformance ? ['--conformance'] : []),
    ],
    {},
    (line) => {
      const json = jsonLine(line);
      return json?.event === 'listening' ? Number(json.port) : undefined;
    },
  );
  const p = await port;
  const origin = `http://127.0.0.1:${p}`;
  return {
    ...proc,
    port: p,
    origin,
    mcpUrl: `${origin}/mcp`,
    async stats() {
      const res = await fetch(`${origin}/admin/stats`);
      if (!res.ok) throw new Error(`modern fixture stats: ${res.status}`);
      return (await res.json()) as ModernFixtureStats;
    },
  };
}

export interface Proxy extends Proc {
  readonly port: number;
  readonly url: string;
  readonly origin: string;
}

export async function startProxy(
  upstreamUrl: string,
  env: Record<string, string> = {},
  listenPort = '0',
  logFile?: string,
): Promise<Proxy> {
  const args = [PROXY_MAIN, '--upstream', upstreamUrl, '--port', listenPort, '--host', '127.0.0.1'];
  const ready = (line: string) => {
    const json = jsonLine(line);
    return json?.msg === 'mcp-session-proxy listening' ? Number(json.port) : undefined;
  };
  const { proc, port } = start(args, env, ready, logFile);
  const p = await port;
  return { ...proc, port: p, origin: `http://127.0.0.1:${p}`, url: `http://127.0.0.1:${p}/mcp` };
}

/** A port that was free a moment ago, for servers (server-everything) that cannot listen on 0. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** Any Node script (TypeScript through tsx) that prints {"event":"listening","port":N} when ready. */
export async function startScript(script: string, args: string[] = [], env: Record<string, string> = {}) {
  const { proc, port } = start(['--import', 'tsx', `${ROOT}${script}`, ...args], env, (line) => {
    const json = jsonLine(line);
    return json?.event === 'listening' ? Number(json.port) : undefined;
  });
  const p = await port;
  return { ...proc, port: p, origin: `http://127.0.0.1:${p}` };
}

export async function startEverything(port?: number): Promise<Proc & { port: number; mcpUrl: string }> {
  const p = port ?? (await freePort());
  const { proc, port: ready } = start([EVERYTHING, 'streamableHttp'], { PORT: String(p) }, () => undefined);
  void ready.catch(() => undefined);
  // It announces itself on stderr; poll until it answers instead.
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    try {
      await fetch(`http://127.0.0.1:${p}/mcp`, { method: 'GET' });
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`server-everything not up:\n${proc.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { ...proc, port: p, mcpUrl: `http://127.0.0.1:${p}/mcp` };
}
