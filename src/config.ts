/**
 * Configuration: parsed and validated once, from (in increasing precedence) defaults, an optional
 * config file (JSON or YAML), environment variables and command-line flags. Every problem stops
 * startup with one line that names the setting; all problems are reported at once.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_LOSS_PATTERNS, DEFAULT_LOSS_STATUSES, DEFAULT_PATTERN_STATUSES, type LossPattern, type LossRules } from './mcp/loss.js';
import { telemetrySettingsOf, type TelemetrySettings } from './observability/otel-settings.js';
import { normalizePath } from './http/paths.js';
import { parseSecret, readSecretFile } from './session/secrets.js';

// Every container platform routes to the pod's interfaces, not its loopback.
export const DEFAULT_HOST = '0.0.0.0';
export const DEFAULT_PORT = 8080;
export const DEFAULT_MCP_PATH = '/mcp';
export const DEFAULT_LOG_LEVEL = 'info';
// About 1 KB each (bench/), so the bound caps session memory near 50 MB.
export const DEFAULT_MAX_SESSIONS = 50_000;
// Long, because an expired id gets 404 and today's SDK clients do not re-initialize on 404.
export const DEFAULT_SESSION_IDLE_TTL_MS = 24 * 60 * 60 * 1000;
// MCP messages are small; a few MiB leaves room for large tool arguments.
export const DEFAULT_BODY_LIMIT_BYTES = 4 * 1024 * 1024;
// The longest pause while reading a POST body (and before its first byte), as nginx's
// client_body_timeout (60 s there). MCP bodies are small and usually arrive with their headers;
// a healthy but lossy link stalls for TCP's retransmission backoff (1+2+4+8 s = 15 s for four
// lost segments in a row), so 30 s never cuts a live client, yet frees a slow-loris connection
// in half nginx's time, and well before an SDK client's own 60 s request timeout.
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;
// The whole body's allowance, as Apache's mod_reqtimeout `body=20,MinRate=500` (and HAProxy's
// `timeout http-request`): a pause timeout alone never stops a client that sends a byte every few
// seconds. The body must arrive within an initial allowance that grows with the bytes received at
// a minimum rate. 30 s, as the pause timeout, so that no body the pause rule admits is refused at
// its start; 500 B/s (4 kbit/s, slower than a GPRS link's usable rate) still passes a 4 MiB body
// (8400 s of allowance), while a byte every two seconds is refused within about 30 s.
export const DEFAULT_BODY_ALLOWANCE_MS = 30_000;
export const DEFAULT_BODY_MIN_RATE_BYTES_PER_S = 500;
// A tool answering with plain JSON sends headers only when it is done; SDK clients give up on a
// request after 60 s by default, so the upstream gets longer than any such client waits.
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 5 * 60 * 1000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
// Long enough to ride out an upstream restart (refused connections never reached it, so retrying
// is safe), short enough that a client still gets a clear 502 well within its own 60 s timeout.
export const DEFAULT_UPSTREAM_RETRY_MS = 10_000;
// Connection resets from a restarting upstream arrive within milliseconds of sending; a reset
// after a second means the upstream was working on the request (see upstream/client.ts).
export const DEFAULT_RESET_RETRY_WINDOW_MS = 1_000;
// Kubernetes waits 30 s between SIGTERM and SIGKILL by default; finish well inside that.
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
// The conventional Kubernetes probe paths; the proxy answers them itself, never the upstream.
export const DEFAULT_HEALTH_PATH = '/healthz';
export const DEFAULT_READY_PATH = '/readyz';
export const DEFAULT_METRICS_PATH = '/metrics';
// A sealed id works this long after its initialize, on any replica: a week covers long-running
// agents; shorter limits how long a leaked id is worth anything.
export const DEFAULT_SESSION_MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000;

// Each pooled upstream session is a session on the upstream server, which keeps memory for it; a
// pool is keyed per identity × client × capabilities, so a thousand covers large fleets while
// bounding what the proxy can make the upstream hold.
export const DEFAULT_POOL_MAX_SESSIONS = 1000;
// Bursts of stateless calls reuse a session; five idle minutes later the proxy ends it upstream
// rather than leave it to the server's own (often much longer) expiry.
export const DEFAULT_POOL_IDLE_TTL_MS = 5 * 60 * 1000;
// subscriptions/listen streams are quiet for long stretches: a comment this often keeps idle-
// timeout middleboxes (60 s is common: nginx, AWS ALB) from cutting them. The v2 SDK server's
// own interval, so a client sees the same rhythm as from a native 2026-07-28 server.
export const DEFAULT_LISTEN_KEEPALIVE_MS = 15_000;
// Each open listen stream holds a client connection and a few small objects; the bound keeps a
// flood of them from exhausting sockets and memory. Ten times the v2 SDK server's default (1024),
// since one proxy fronts many clients.
export const DEFAULT_LISTEN_MAX_STREAMS = 10_000;
// MRTR (flows/pooled/mrtr/mrtr.ts): a parked upstream exchange holds an open upstream request and its stream.
// A thousand bounds what clients that never come back can make the proxy and the upstream hold.
export const DEFAULT_MRTR_MAX_PARKED = 1000;
// The v1 TypeScript SDK gives up on a server→client request after 60 s by default: an exchange
// parked longer would only wait for an upstream that has stopped waiting.
export const DEFAULT_MRTR_PARK_TIMEOUT_MS = 60_000;
// A requestState is good this long (the v2 SDK's requestState codec default): a retry after the
// exchange expired still works, by re-running the request with the answers it carries.
export const DEFAULT_MRTR_STATE_TTL_MS = 10 * 60 * 1000;
// A hosted session's input_required question waits this long for the client's answer: a person may
// be filling in an elicitation form. The client's own request timeout (v1 SDK: 60 s by default) or
// its closing the stream usually ends the exchange first; this bounds clients that keep the stream
// open and never answer (each waiting exchange holds its client connection).
export const DEFAULT_HOSTED_INPUT_TIMEOUT_MS = 5 * 60 * 1000;
export const UPSTREAM_ERAS = ['auto', 'legacy', 'modern'] as const;
export type UpstreamEra = (typeof UPSTREAM_ERAS)[number];
export const SESSIONLESS_MODES = ['pool', 'reject'] as const;
export type SessionlessMode = (typeof SESSIONLESS_MODES)[number];

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Config {
  readonly upstreamUrl: URL;
  readonly host: string;
  readonly port: number;
  readonly mcpPath: string;
  readonly logLevel: LogLevel;
  readonly maxSessions: number;
  readonly sessionIdleTtlMs: number;
  readonly bodyLimitBytes: number;
  /** Longest pause between two chunks of a POST body (and before the first): 408 beyond. */
  readonly bodyTimeoutMs: number;
  /** The whole body must arrive within this, plus one second per `bodyMinRateBytesPerS` bytes received: 408 beyond. */
  readonly bodyAllowanceMs: number;
  readonly bodyMinRateBytesPerS: number;
  readonly upstreamTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly upstreamRetryMs: number;
  readonly resetRetryWindowMs: number;
  /** On SIGTERM/SIGINT, how long in-flight requests get before the process exits anyway. */
  readonly shutdownGraceMs: number;
  /** Header whose value, with Authorization, a session is bound to (lower case); none by default. */
  readonly identityHeader: string | undefined;
  /** Origins allowed on every route, besides the proxy's own (http/gate.ts); undefined = none listed. */
  readonly allowedOrigins: ReadonlySet<string> | undefined;
  /**
   * Hostnames a Host header may name (lower case, IPv6 in brackets, any port); undefined = the
   * default: loopback names on a loopback --host, any Host otherwise (http/gate.ts).
   */
  readonly allowedHosts: ReadonlySet<string> | undefined;
  readonly healthPath: string;
  readonly readyPath: string;
  readonly metricsPath: string;
  readonly metricsEnabled: boolean;
  readonly loss: LossRules;
  /** Seals client session ids (session/sealing.ts); undefined = random ids, sessions in this process only. */
  readonly sessionSecret: Buffer | undefined;
  /** The secret before a rotation: ids it sealed are still accepted. */
  readonly sessionSecretPrevious: Buffer | undefined;
  /** Age limit of a sealed id, from its initialize. */
  readonly sessionMaxAgeMs: number;
  /** Pooled upstream sessions (for 2026-07-28 clients and sessionless callers): count bound. */
  readonly poolMaxSessions: number;
  /** A pooled upstream session unused this long is ended. */
  readonly poolIdleTtlMs: number;
  /** Interval of `: keepalive` comments on subscriptions/listen streams. */
  readonly listenKeepAliveMs: number;
  /** Open subscriptions/listen streams at most. */
  readonly listenMaxStreams: number;
  /** What the upstream speaks: found out by probing (auto), or forced. */
  readonly upstreamEra: UpstreamEra;
  /** 2025-style requests without a session id: served on a pooled session, or 400 as before. */
  readonly sessionless: SessionlessMode;
  /** MRTR: upstream exchanges parked at a question at most (beyond: not parked, the retry re-runs). */
  readonly mrtrMaxParked: number;
  /** MRTR: a parked exchange no retry claims is ended after this long. */
  readonly mrtrParkTimeoutMs: number;
  /** MRTR: how long a requestState is accepted. */
  readonly mrtrStateTtlMs: number;
  /** Hosted sessions: how long an input_required question waits for the client's answer. */
  readonly hostedInputTimeoutMs: number;
  /**
   * The proxy's MCP URL as clients reach it (opt-in): the upstream's protected-resource metadata
   * and auth challenges name it instead of the upstream's own address (http/resource-metadata.ts).
   */
  readonly publicUrl: URL | undefined;
  /** Traces and OTLP metrics, from the standard OTEL_* variables only (observability/otel-settings.ts). */
  readonly telemetry: TelemetrySettings;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
  /** One line per problem. */
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(problems.join('\n'));
    this.problems = problems;
  }
}

/** One setting: its flag, its environment variable, how its text becomes a value, and its help. */
interface Setting<T> {
  readonly flag: string;
  readonly env: string;
  readonly parse: (text: string) => T;
  /** Absent: the setting is required. */
  readonly fallback?: T;
  readonly help: string;
  /** The setting's old names, still read (after the new ones) and documented as deprecated. */
  readonly deprecated?: { readonly flag: string; readonly env: string; readonly key: string };
}

const ms = (min: number, max: number) => (t: string) => parseInteger(t, min, max);

export const SETTINGS = {
  upstreamUrl: {
    flag: 'upstream',
    env: 'UPSTREAM_URL',
    parse: parseUpstreamUrl,
    help: 'the legacy MCP endpoint, e.g. http://127.0.0.1:8000/mcp (required)',
  },
  host: { flag: 'host', env: 'HOST', parse: parseHost, fallback: DEFAULT_HOST, help: 'listen address' },
  port: { flag: 'port', env: 'PORT', parse: ms(0, 65_535), fallback: DEFAULT_PORT, help: 'listen port (0 = any free port)' },
  mcpPath: { flag: 'mcp-path', env: 'MCP_PATH', parse: parsePath, fallback: DEFAULT_MCP_PATH, help: 'client-facing MCP endpoint' },
  logLevel: { flag: 'log-level', env: 'LOG_LEVEL', parse: parseLogLevel, fallback: DEFAULT_LOG_LEVEL, help: LOG_LEVELS.join(', ') },
  maxSessions: {
    flag: 'max-sessions',
    env: 'MAX_SESSIONS',
    parse: ms(1, 10_000_000),
    fallback: DEFAULT_MAX_SESSIONS,
    help: 'sessions kept; the least recently used is evicted beyond it',
  },
  sessionIdleTtlMs: {
    flag: 'session-idle-ttl-ms',
    env: 'SESSION_IDLE_TTL_MS',
    parse: ms(1_000, 365 * 24 * 3600 * 1000),
    fallback: DEFAULT_SESSION_IDLE_TTL_MS,
    help: 'a session unused this long is forgotten',
  },
  bodyLimitBytes: {
    flag: 'body-limit-bytes',
    env: 'BODY_LIMIT_BYTES',
    parse: ms(1024, 1024 * 1024 * 1024),
    fallback: DEFAULT_BODY_LIMIT_BYTES,
    help: 'largest POST body (413 beyond)',
  },
  bodyTimeoutMs: {
    flag: 'body-timeout-ms',
    env: 'BODY_TIMEOUT_MS',
    parse: ms(100, 600_000),
    fallback: DEFAULT_BODY_TIMEOUT_MS,
    help: 'longest pause while reading a POST body, before its first byte too (408 and the connection closed beyond); answers, SSE included, are exempt',
  },
  bodyAllowanceMs: {
    flag: 'body-allowance-ms',
    env: 'BODY_ALLOWANCE_MS',
    parse: ms(100, 3_600_000),
    fallback: DEFAULT_BODY_ALLOWANCE_MS,
    help: 'a POST body must arrive whole within this, plus one second per --body-min-rate-bytes-per-s bytes received (408 and the connection closed beyond), however short its pauses',
  },
  bodyMinRateBytesPerS: {
    flag: 'body-min-rate-bytes-per-s',
    env: 'BODY_MIN_RATE_BYTES_PER_S',
    parse: ms(1, 1024 * 1024 * 1024),
    fallback: DEFAULT_BODY_MIN_RATE_BYTES_PER_S,
    help: 'the slowest rate a POST body may arrive at, beyond its allowance (see --body-allowance-ms)',
  },
  upstreamTimeoutMs: {
    flag: 'upstream-timeout-ms',
    env: 'UPSTREAM_TIMEOUT_MS',
    parse: ms(100, 24 * 3600 * 1000),
    fallback: DEFAULT_UPSTREAM_TIMEOUT_MS,
    help: 'wait for upstream response headers (504 beyond); SSE bodies are exempt',
  },
  connectTimeoutMs: {
    flag: 'connect-timeout-ms',
    env: 'CONNECT_TIMEOUT_MS',
    parse: ms(100, 600_000),
    fallback: DEFAULT_CONNECT_TIMEOUT_MS,
    help: 'TCP connect timeout to the upstream',
  },
  upstreamRetryMs: {
    flag: 'upstream-retry-ms',
    env: 'UPSTREAM_RETRY_MS',
    parse: ms(0, 600_000),
    fallback: DEFAULT_UPSTREAM_RETRY_MS,
    help: 'keep retrying refused connections this long (0 = never)',
  },
  resetRetryWindowMs: {
    flag: 'reset-retry-window-ms',
    env: 'RESET_RETRY_WINDOW_MS',
    parse: ms(0, 60_000),
    fallback: DEFAULT_RESET_RETRY_WINDOW_MS,
    help: 'resend a POST whose connection reset this soon after sending (0 = never)',
  },
  shutdownGraceMs: {
    flag: 'shutdown-grace-ms',
    env: 'SHUTDOWN_GRACE_MS',
    parse: ms(0, 600_000),
    fallback: DEFAULT_SHUTDOWN_GRACE_MS,
    help: 'on SIGTERM, time for in-flight requests before exit',
  },
  identityHeader: {
    flag: 'identity-header',
    env: 'IDENTITY_HEADER',
    parse: (t: string): string | undefined => parseHeaderName(t),
    fallback: undefined,
    help: 'also bind sessions to this header (e.g. x-user-id)',
  },
  allowedOrigins: {
    flag: 'allowed-origins',
    env: 'ALLOWED_ORIGINS',
    parse: (t: string): ReadonlySet<string> | undefined => parseOrigins(t),
    fallback: undefined,
    help: "comma-separated origins allowed besides the proxy's own; others get 403 (default: none, and any Origin passes when the Host is not checked)",
  },
  allowedHosts: {
    flag: 'allowed-hosts',
    env: 'ALLOWED_HOSTS',
    parse: (t: string): ReadonlySet<string> | undefined => parseHostnames(t),
    fallback: undefined,
    help: "comma-separated hostnames (any port) a request's Host may name; others get 403 (default: localhost,127.0.0.1,[::1] when --host is a loopback address, else any)",
  },
  healthPath: {
    flag: 'health-path',
    env: 'HEALTH_PATH',
    parse: parsePath,
    fallback: DEFAULT_HEALTH_PATH,
    help: 'liveness: 200 while the process runs',
  },
  readyPath: {
    flag: 'ready-path',
    env: 'READY_PATH',
    parse: parsePath,
    fallback: DEFAULT_READY_PATH,
    help: 'readiness: 200 when the upstream answers, else 503',
  },
  metricsPath: { flag: 'metrics-path', env: 'METRICS_PATH', parse: parsePath, fallback: DEFAULT_METRICS_PATH, help: 'Prometheus metrics' },
  metricsEnabled: { flag: 'metrics', env: 'METRICS', parse: parseBoolean, fallback: true, help: 'serve and collect metrics (true/false)' },
  lossStatuses: {
    flag: 'loss-statuses',
    env: 'LOSS_STATUSES',
    parse: parseStatusList,
    fallback: DEFAULT_LOSS_STATUSES,
    help: 'statuses that always mean a lost session',
  },
  lossPatternStatuses: {
    flag: 'loss-pattern-statuses',
    env: 'LOSS_PATTERN_STATUSES',
    parse: parseStatusList,
    fallback: DEFAULT_PATTERN_STATUSES,
    help: 'statuses that mean a lost session with a loss message',
  },
  sessionSecret: {
    flag: 'session-secret',
    env: 'SESSION_SECRET',
    parse: (t: string): Buffer | undefined => parseSecret(t),
    fallback: undefined,
    help: 'seal session ids with this secret (32+ random bytes), so sessions survive restarts and work on every replica',
  },
  sessionSecretFile: {
    flag: 'session-secret-file',
    env: 'SESSION_SECRET_FILE',
    parse: (t: string): Buffer | undefined => readSecretFile(t),
    fallback: undefined,
    help: 'read the session secret from this file instead (preferred: flags and variables leak more easily)',
  },
  sessionSecretPrevious: {
    flag: 'session-secret-previous',
    env: 'SESSION_SECRET_PREVIOUS',
    parse: (t: string): Buffer | undefined => parseSecret(t),
    fallback: undefined,
    help: 'another secret whose ids are accepted (never used to seal): the old one after a rotation, or the next one while a rotation rolls out',
  },
  sessionSecretPreviousFile: {
    flag: 'session-secret-previous-file',
    env: 'SESSION_SECRET_PREVIOUS_FILE',
    parse: (t: string): Buffer | undefined => readSecretFile(t),
    fallback: undefined,
    help: 'read the previous secret from this file instead',
  },
  sessionMaxAgeMs: {
    flag: 'session-max-age-ms',
    env: 'SESSION_MAX_AGE_MS',
    parse: ms(1_000, 365 * 24 * 3600 * 1000),
    fallback: DEFAULT_SESSION_MAX_AGE_MS,
    help: 'a sealed id is refused (404) this long after its initialize',
  },
  poolMaxSessions: {
    flag: 'pool-max-sessions',
    env: 'POOL_MAX_SESSIONS',
    parse: ms(1, 1_000_000),
    fallback: DEFAULT_POOL_MAX_SESSIONS,
    help: 'pooled upstream sessions (2026-07-28 clients, sessionless callers); the least recently used is ended beyond it',
  },
  poolIdleTtlMs: {
    flag: 'pool-idle-ttl-ms',
    env: 'POOL_IDLE_TTL_MS',
    parse: ms(1_000, 24 * 3600 * 1000),
    fallback: DEFAULT_POOL_IDLE_TTL_MS,
    help: 'a pooled upstream session unused this long is ended upstream',
  },
  listenKeepAliveMs: {
    flag: 'listen-keepalive-ms',
    env: 'LISTEN_KEEPALIVE_MS',
    parse: ms(1_000, 3_600_000),
    fallback: DEFAULT_LISTEN_KEEPALIVE_MS,
    help: 'keep-alive comment interval on subscriptions/listen streams of 2026-07-28 clients (also keeps their pooled upstream session from expiring as idle)',
  },
  listenMaxStreams: {
    flag: 'listen-max-streams',
    env: 'LISTEN_MAX_STREAMS',
    parse: ms(1, 1_000_000),
    fallback: DEFAULT_LISTEN_MAX_STREAMS,
    help: 'open subscriptions/listen streams at most; beyond, a new one is refused (-32603)',
  },
  upstreamEra: {
    flag: 'upstream-era',
    env: 'UPSTREAM_ERA',
    parse: (t: string): UpstreamEra => parseChoice(t, UPSTREAM_ERAS),
    fallback: 'auto',
    help: 'auto: probe the upstream with server/discover; legacy: translate 2026-07-28 requests onto pooled sessions; modern: pass them through',
  },
  sessionless: {
    flag: 'sessionless',
    env: 'SESSIONLESS',
    parse: (t: string): SessionlessMode => parseChoice(t, SESSIONLESS_MODES),
    fallback: 'pool',
    help: 'a 2025-style request without Mcp-Session-Id (not initialize): pool (serve it on a pooled session) or reject (400)',
  },
  mrtrMaxParked: {
    flag: 'mrtr-max-parked',
    env: 'MRTR_MAX_PARKED',
    parse: ms(0, 1_000_000),
    fallback: DEFAULT_MRTR_MAX_PARKED,
    help: 'upstream exchanges of 2026-07-28 requests parked at a question (input_required) at most; beyond it (and with 0) the retry re-runs the request',
  },
  mrtrParkTimeoutMs: {
    flag: 'mrtr-park-timeout-ms',
    env: 'MRTR_PARK_TIMEOUT_MS',
    parse: ms(100, 24 * 3600 * 1000),
    fallback: DEFAULT_MRTR_PARK_TIMEOUT_MS,
    help: 'a parked exchange whose retry does not come this soon is ended (the upstream gets an error answer and a cancellation)',
  },
  mrtrStateTtlMs: {
    flag: 'mrtr-state-ttl-ms',
    env: 'MRTR_STATE_TTL_MS',
    parse: ms(1_000, 24 * 3600 * 1000),
    fallback: DEFAULT_MRTR_STATE_TTL_MS,
    help: 'an input_required requestState is refused (-32602) this long after it was issued',
  },
  publicUrl: {
    flag: 'public-url',
    env: 'PUBLIC_URL',
    parse: (t: string): URL | undefined => parsePublicUrl(t),
    fallback: undefined,
    help: "the proxy's MCP URL as clients reach it, e.g. https://mcp.example.com/mcp (OAuth-protected upstreams that name their own address: the protected-resource metadata and WWW-Authenticate name this URL instead, and the proxy serves the metadata at the paths clients derive from it; default: off, passed through as the upstream sent them)",
  },
  hostedInputTimeoutMs: {
    flag: 'hosted-input-timeout-ms',
    env: 'HOSTED_INPUT_TIMEOUT_MS',
    deprecated: { flag: 'held-input-timeout-ms', env: 'HELD_INPUT_TIMEOUT_MS', key: 'heldInputTimeoutMs' },
    parse: ms(100, 24 * 3600 * 1000),
    fallback: DEFAULT_HOSTED_INPUT_TIMEOUT_MS,
    help: 'in front of a 2026-07-28-only upstream: how long a question of an input_required answer (sent to the 2025 client as an elicitation/sampling/roots request) waits for its response before the request fails',
  },
  lossPatterns: {
    flag: 'loss-patterns',
    env: 'LOSS_PATTERNS',
    parse: parseExtraPatterns,
    fallback: [] as readonly LossPattern[],
    help: 'extra loss messages: regular expressions separated by ||',
  },
} satisfies Record<string, Setting<unknown>>;

type Settings = typeof SETTINGS;
type Key = keyof Settings;
type ValueOf<K extends Key> = ReturnType<Settings[K]['parse']>;

/** What the command line asked for besides settings. */
export type Invocation = { readonly kind: 'run'; readonly config: Config } | { readonly kind: 'help' } | { readonly kind: 'version' };

export function parseInvocation(argv: readonly string[], env: NodeJS.ProcessEnv): Invocation {
  let flags: Record<string, string | boolean | undefined>;
  try {
    const flagNames = Object.values(SETTINGS as Record<string, Setting<unknown>>).flatMap((s) =>
      s.deprecated === undefined ? [s.flag] : [s.flag, s.deprecated.flag],
    );
    const options = Object.fromEntries(flagNames.map((flag) => [flag, { type: 'string' as const }]));
    flags = parseArgs({
      args: [...argv],
      options: { ...options, config: { type: 'string' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    throw new ConfigError([(error as Error).message]);
  }
  if (flags.help) return { kind: 'help' };
  if (flags.version) return { kind: 'version' };
  return { kind: 'run', config: buildConfig(flags, env) };
}

/** The configuration for these flags and environment (no --help / --version handling). */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Config {
  const invocation = parseInvocation(argv, env);
  if (invocation.kind !== 'run') throw new ConfigError([`--${invocation.kind} is not a setting`]);
  return invocation.config;
}

function buildConfig(flags: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv): Config {
  const problems: string[] = [];
  const file = readConfigFile(flags.config, env.CONFIG_FILE, problems);

  const read = <K extends Key>(key: K): ValueOf<K> => {
    const setting = SETTINGS[key] as Setting<ValueOf<K>>;
    const { deprecated } = setting;
    const flag = flags[setting.flag] === undefined && deprecated !== undefined ? deprecated.flag : setting.flag;
    const fromFlag = flags[flag];
    if (fromFlag === '') {
      problems.push(`--${flag}: needs a value`);
      return undefined as ValueOf<K>;
    }
    // Highest precedence first. An empty variable counts as unset: container tools often pass
    // VAR= for "not configured".
    const variable = (env[setting.env] ?? '') === '' && deprecated !== undefined ? deprecated.env : setting.env;
    const envText = env[variable] === '' ? undefined : env[variable];
    const [text, source] =
      typeof fromFlag === 'string'
        ? [fromFlag, `--${flag}`]
        : envText !== undefined
          ? [envText, variable]
          : [file.values[key], `${file.name}: ${key}`];
    if (text === undefined) {
      if ('fallback' in setting) return setting.fallback;
      problems.push(`--${setting.flag} / ${setting.env} is required`);
      return undefined as ValueOf<K>;
    }
    try {
      return setting.parse(text);
    } catch (error) {
      problems.push(`${source}: ${(error as Error).message}`);
      return undefined as ValueOf<K>;
    }
  };

  // Whether a setting was given at all (valid or not).
  const given = (key: Key) =>
    typeof flags[SETTINGS[key].flag] === 'string' || (env[SETTINGS[key].env] ?? '') !== '' || file.values[key] !== undefined;
  // A secret given both inline and as a file: which one wins would be a guess.
  const oneOf = (inline: 'sessionSecret' | 'sessionSecretPrevious', file: 'sessionSecretFile' | 'sessionSecretPreviousFile') => {
    const [fromText, fromFile] = [read(inline), read(file)];
    if (fromText !== undefined && fromFile !== undefined) {
      problems.push(`${SETTINGS[inline].env} and ${SETTINGS[file].env}: set one, not both`);
    }
    return fromText ?? fromFile;
  };

  const config: Config = {
    upstreamUrl: read('upstreamUrl'),
    host: read('host'),
    port: read('port'),
    mcpPath: read('mcpPath'),
    logLevel: read('logLevel'),
    maxSessions: read('maxSessions'),
    sessionIdleTtlMs: read('sessionIdleTtlMs'),
    bodyLimitBytes: read('bodyLimitBytes'),
    bodyTimeoutMs: read('bodyTimeoutMs'),
    bodyAllowanceMs: read('bodyAllowanceMs'),
    bodyMinRateBytesPerS: read('bodyMinRateBytesPerS'),
    upstreamTimeoutMs: read('upstreamTimeoutMs'),
    connectTimeoutMs: read('connectTimeoutMs'),
    upstreamRetryMs: read('upstreamRetryMs'),
    resetRetryWindowMs: read('resetRetryWindowMs'),
    shutdownGraceMs: read('shutdownGraceMs'),
    identityHeader: read('identityHeader'),
    allowedOrigins: read('allowedOrigins'),
    allowedHosts: read('allowedHosts'),
    healthPath: read('healthPath'),
    readyPath: read('readyPath'),
    metricsPath: read('metricsPath'),
    metricsEnabled: read('metricsEnabled'),
    loss: {
      lossStatuses: new Set(read('lossStatuses')),
      patternStatuses: new Set(read('lossPatternStatuses')),
      patterns: [...DEFAULT_LOSS_PATTERNS, ...(read('lossPatterns') ?? [])],
    },
    sessionSecret: oneOf('sessionSecret', 'sessionSecretFile'),
    sessionSecretPrevious: oneOf('sessionSecretPrevious', 'sessionSecretPreviousFile'),
    sessionMaxAgeMs: read('sessionMaxAgeMs'),
    poolMaxSessions: read('poolMaxSessions'),
    poolIdleTtlMs: read('poolIdleTtlMs'),
    listenKeepAliveMs: read('listenKeepAliveMs'),
    listenMaxStreams: read('listenMaxStreams'),
    upstreamEra: read('upstreamEra'),
    sessionless: read('sessionless'),
    mrtrMaxParked: read('mrtrMaxParked'),
    mrtrParkTimeoutMs: read('mrtrParkTimeoutMs'),
    mrtrStateTtlMs: read('mrtrStateTtlMs'),
    hostedInputTimeoutMs: read('hostedInputTimeoutMs'),
    publicUrl: read('publicUrl'),
    telemetry: telemetrySettingsOf(env, problems),
  };
  if (config.sessionSecretPrevious !== undefined && !given('sessionSecret') && !given('sessionSecretFile')) {
    problems.push('SESSION_SECRET_PREVIOUS needs a current SESSION_SECRET (or SESSION_SECRET_FILE)');
  }
  const paths: [string, string][] = [
    ['mcp-path', config.mcpPath],
    ['health-path', config.healthPath],
    ['ready-path', config.readyPath],
    ...(config.metricsEnabled ? ([['metrics-path', config.metricsPath]] as [string, string][]) : []),
  ];
  for (const [i, [name, path]] of paths.entries()) {
    // Compared as the gate resolves paths: `/MCP` as the MCP path would shadow a `/mcp` probe.
    const clash = paths
      .slice(0, i)
      .find(([, other]) => other !== undefined && path !== undefined && normalizePath(other) === normalizePath(path));
    if (path !== undefined && clash) problems.push(`--${name}: ${path} is already the --${clash[0]}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** Deprecated config-file keys → the setting each names now. */
const DEPRECATED_KEYS: ReadonlyMap<string, string> = new Map(
  Object.entries(SETTINGS as Record<string, Setting<unknown>>).flatMap(([key, s]) =>
    s.deprecated === undefined ? [] : [[s.deprecated.key, key] as const],
  ),
);

/** Settings from the config file as text (the same parsers then apply), keyed by setting name. */
function readConfigFile(
  flag: string | boolean | undefined,
  fromEnv: string | undefined,
  problems: string[],
): { name: string; values: Partial<Record<Key, string>> } {
  const path = typeof flag === 'string' ? flag : fromEnv;
  if (path === undefined || path === '') return { name: 'config file', values: {} };
  let parsed: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    parsed = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message.split('\n')[0];
    problems.push(`--config ${path}: ${reason}`);
    return { name: path, values: {} };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    problems.push(`--config ${path}: must hold an object of settings`);
    return { name: path, values: {} };
  }
  const values: Partial<Record<Key, string>> = {};
  for (const [name, value] of Object.entries(parsed)) {
    // A deprecated key is read as the setting it names now (the new key wins when both are set).
    const key = DEPRECATED_KEYS.get(name) ?? name;
    if (!(key in SETTINGS)) {
      problems.push(`${path}: ${key}: not a setting (settings: ${Object.keys(SETTINGS).join(', ')})`);
      continue;
    }
    const text =
      typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
        ? String(value)
        : Array.isArray(value) && value.every((v) => typeof v === 'string' || typeof v === 'number')
          ? value.join(key === 'lossPatterns' ? '||' : ',')
          : undefined;
    if (text === undefined) problems.push(`${path}: ${name}: must be a string, number, boolean or list`);
    else if (key === name || values[key as Key] === undefined) values[key as Key] = text;
  }
  return { name: path, values };
}

/** The --help text, from the same table the configuration is read with. */
export function helpText(): string {
  const lines = [
    'mcp-session-proxy: stable, recoverable MCP sessions in front of a legacy Streamable HTTP server',
    '',
    'Usage: mcp-session-proxy --upstream URL [--port N] [--host H] [options]',
    '',
    'Settings (flag, environment variable, default). Precedence: flags > environment > config file > defaults.',
  ];
  for (const [key, s] of Object.entries(SETTINGS) as [Key, Setting<unknown>][]) {
    const fallback = 'fallback' in s ? describeDefault(s.fallback) : 'required';
    lines.push(`  --${s.flag.padEnd(24)} ${s.env.padEnd(22)} ${fallback}`, `      ${s.help} [config file key: ${key}]`);
    if (s.deprecated !== undefined)
      lines.push(`      (deprecated spelling, still read: --${s.deprecated.flag}, ${s.deprecated.env}, ${s.deprecated.key})`);
  }
  lines.push(
    '',
    '  --config FILE              CONFIG_FILE            a JSON or YAML file of settings (keys as above)',
    '  --help, -h                 this text',
    '  --version                  print the version',
    '',
    'Tracing (OpenTelemetry, off unless an exporter endpoint is set): the standard environment variables only,',
    '  OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf, http/json), OTEL_EXPORTER_OTLP_HEADERS,',
    '  OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG, ... (docs/observability.md).',
  );
  return lines.join('\n');
}

function describeDefault(value: unknown): string {
  if (value === undefined) return '(none)';
  if (Array.isArray(value)) return value.length === 0 ? '(none)' : value.join(',');
  if (value instanceof URL) return value.href;
  // The other defaults are strings, numbers and booleans.
  const scalar = value as string | number | boolean;
  return String(scalar);
}

function parseUpstreamUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`not a URL: expected something like http://127.0.0.1:8000/mcp`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('must be an http:// or https:// URL');
  if (url.username || url.password) throw new Error('must not carry credentials; clients send their own');
  if (url.hash) throw new Error('must not have a #fragment');
  return url;
}

function parsePublicUrl(text: string): URL {
  const url = parseUpstreamUrl(text);
  // The resource identifier clients compare with the URL they connect to (RFC 9728 §3.3, RFC 8707).
  if (url.search) throw new Error('must not have a ?query: it is the resource identifier clients compare with');
  return url;
}

function parseHost(text: string): string {
  if (/\s/.test(text)) throw new Error('must be a host name or IP address');
  return text;
}

function parsePath(text: string): string {
  if (!/^\/[\x21-\x7e]*$/.test(text) || text.includes('?') || text.includes('#')) {
    throw new Error('must be a path starting with / (no query or fragment)');
  }
  return text;
}

function parseBoolean(text: string): boolean {
  const value = text.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(value)) return true;
  if (['false', '0', 'no', 'off'].includes(value)) return false;
  throw new Error('must be true or false');
}

function parseHeaderName(text: string): string {
  const name = text.trim().toLowerCase();
  if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) throw new Error('must be an HTTP header name');
  if (name === 'authorization' || name === 'mcp-session-id') throw new Error(`"${name}" cannot be the identity header`);
  return name;
}

/** Comma-separated origins (scheme://host[:port]); `*` is refused: leave the setting out instead. */
function parseOrigins(text: string): ReadonlySet<string> {
  const origins = text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  if (origins.length === 0) throw new Error('must list at least one origin');
  for (const origin of origins) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (parsed?.origin !== origin) throw new Error(`"${origin}" is not an origin like https://app.example.com`);
  }
  return new Set(origins);
}

/**
 * Comma-separated hostnames as a Host header names them without its port: `mcp.example.com`,
 * `10.0.0.7`, `[::1]` (lower-cased). `*` is refused: leave the setting out instead.
 */
function parseHostnames(text: string): ReadonlySet<string> {
  const names = text
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
  if (names.length === 0) throw new Error('must list at least one hostname');
  for (const name of names) {
    let parsed: string | undefined;
    try {
      parsed = new URL(`http://${name}`).hostname;
    } catch {
      parsed = undefined;
    }
    if (parsed !== name || name.includes('*')) {
      throw new Error(`"${name}" is not a hostname like mcp.example.com, 127.0.0.1 or [::1] (no port, no scheme)`);
    }
  }
  return new Set(names);
}

function parseChoice<T extends string>(text: string, choices: readonly T[]): T {
  const value = text.trim().toLowerCase();
  if (!(choices as readonly string[]).includes(value)) throw new Error(`must be one of ${choices.join(', ')}`);
  return value as T;
}

function parseLogLevel(text: string): LogLevel {
  const level = text.toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new Error(`must be one of ${LOG_LEVELS.join(', ')}`);
  return level as LogLevel;
}

function parseInteger(text: string, min: number, max: number): number {
  if (!/^\d+$/.test(text.trim())) throw new Error(`must be a whole number from ${min} to ${max}`);
  const value = Number(text);
  if (value < min || value > max) throw new Error(`must be a whole number from ${min} to ${max}`);
  return value;
}

/** Error statuses only: a 2xx is an answer the upstream produced, never a lost session. */
function parseStatusList(text: string): number[] {
  const items = text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  return items.map((item) => {
    if (!/^[45]\d\d$/.test(item)) throw new Error(`"${item}" is not a 4xx or 5xx HTTP status (comma-separated list)`);
    return Number(item);
  });
}

/** Extra loss patterns: `||`-separated, case-insensitive regular expressions, added to the defaults. */
function parseExtraPatterns(text: string): LossPattern[] {
  return text
    .split('||')
    .map((t) => t.trim())
    .filter(Boolean)
    .map((source, index) => {
      try {
        return { name: `custom_${index + 1}`, pattern: new RegExp(source, 'i') };
      } catch {
        throw new Error(`pattern ${index + 1} is not a valid regular expression`);
      }
    });
}
