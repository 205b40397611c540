/**
 * Configuration: parsed and validated once, from command-line flags over environment variables
 * over defaults. A bad setting stops startup with one line that names it.
 */
import { parseArgs } from 'node:util';
import {
  DEFAULT_LOSS_PATTERNS,
  DEFAULT_LOSS_STATUSES,
  DEFAULT_PATTERN_STATUSES,
  type LossPattern,
  type LossRules,
} from './mcp/loss.js';

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
  readonly upstreamTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly upstreamRetryMs: number;
  readonly resetRetryWindowMs: number;
  /** On SIGTERM/SIGINT, how long in-flight requests get before the process exits anyway. */
  readonly shutdownGraceMs: number;
  /** Header whose value, with Authorization, a session is bound to (lower case); none by default. */
  readonly identityHeader: string | undefined;
  /** Origins allowed on the MCP endpoint; undefined = no Origin check. */
  readonly allowedOrigins: ReadonlySet<string> | undefined;
  readonly loss: LossRules;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** One setting: its flag, its environment variable, and how its text becomes a value. */
interface Setting<T> {
  readonly flag: string;
  readonly env: string;
  readonly parse: (text: string) => T;
  readonly fallback?: T;
}

const SETTINGS = {
  upstreamUrl: { flag: 'upstream', env: 'UPSTREAM_URL', parse: parseUpstreamUrl },
  host: { flag: 'host', env: 'HOST', parse: parseHost, fallback: DEFAULT_HOST },
  port: { flag: 'port', env: 'PORT', parse: (t: string) => parseInteger(t, 0, 65_535), fallback: DEFAULT_PORT },
  mcpPath: { flag: 'mcp-path', env: 'MCP_PATH', parse: parsePath, fallback: DEFAULT_MCP_PATH },
  logLevel: { flag: 'log-level', env: 'LOG_LEVEL', parse: parseLogLevel, fallback: DEFAULT_LOG_LEVEL },
  maxSessions: {
    flag: 'max-sessions',
    env: 'MAX_SESSIONS',
    parse: (t: string) => parseInteger(t, 1, 10_000_000),
    fallback: DEFAULT_MAX_SESSIONS,
  },
  sessionIdleTtlMs: {
    flag: 'session-idle-ttl-ms',
    env: 'SESSION_IDLE_TTL_MS',
    parse: (t: string) => parseInteger(t, 1_000, 365 * 24 * 3600 * 1000),
    fallback: DEFAULT_SESSION_IDLE_TTL_MS,
  },
  bodyLimitBytes: {
    flag: 'body-limit-bytes',
    env: 'BODY_LIMIT_BYTES',
    parse: (t: string) => parseInteger(t, 1024, 1024 * 1024 * 1024),
    fallback: DEFAULT_BODY_LIMIT_BYTES,
  },
  upstreamTimeoutMs: {
    flag: 'upstream-timeout-ms',
    env: 'UPSTREAM_TIMEOUT_MS',
    parse: (t: string) => parseInteger(t, 100, 24 * 3600 * 1000),
    fallback: DEFAULT_UPSTREAM_TIMEOUT_MS,
  },
  connectTimeoutMs: {
    flag: 'connect-timeout-ms',
    env: 'CONNECT_TIMEOUT_MS',
    parse: (t: string) => parseInteger(t, 100, 600_000),
    fallback: DEFAULT_CONNECT_TIMEOUT_MS,
  },
  upstreamRetryMs: {
    flag: 'upstream-retry-ms',
    env: 'UPSTREAM_RETRY_MS',
    parse: (t: string) => parseInteger(t, 0, 600_000),
    fallback: DEFAULT_UPSTREAM_RETRY_MS,
  },
  resetRetryWindowMs: {
    flag: 'reset-retry-window-ms',
    env: 'RESET_RETRY_WINDOW_MS',
    parse: (t: string) => parseInteger(t, 0, 60_000),
    fallback: DEFAULT_RESET_RETRY_WINDOW_MS,
  },
  shutdownGraceMs: {
    flag: 'shutdown-grace-ms',
    env: 'SHUTDOWN_GRACE_MS',
    parse: (t: string) => parseInteger(t, 0, 600_000),
    fallback: DEFAULT_SHUTDOWN_GRACE_MS,
  },
  identityHeader: {
    flag: 'identity-header',
    env: 'IDENTITY_HEADER',
    parse: (t: string): string | undefined => parseHeaderName(t),
    fallback: undefined,
  },
  allowedOrigins: {
    flag: 'allowed-origins',
    env: 'ALLOWED_ORIGINS',
    parse: (t: string): ReadonlySet<string> | undefined => parseOrigins(t),
    fallback: undefined,
  },
  lossStatuses: {
    flag: 'loss-statuses',
    env: 'LOSS_STATUSES',
    parse: parseStatusList,
    fallback: DEFAULT_LOSS_STATUSES,
  },
  lossPatternStatuses: {
    flag: 'loss-pattern-statuses',
    env: 'LOSS_PATTERN_STATUSES',
    parse: parseStatusList,
    fallback: DEFAULT_PATTERN_STATUSES,
  },
  lossPatterns: {
    flag: 'loss-patterns',
    env: 'LOSS_PATTERNS',
    parse: parseExtraPatterns,
    fallback: [] as readonly LossPattern[],
  },
} satisfies Record<string, Setting<unknown>>;

type Settings = typeof SETTINGS;
type ValueOf<K extends keyof Settings> = ReturnType<Settings[K]['parse']>;

export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Config {
  let flags: Record<string, string | boolean | undefined>;
  try {
    const options = Object.fromEntries(
      Object.values(SETTINGS).map((s) => [s.flag, { type: 'string' as const }]),
    );
    flags = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }

  const read = <K extends keyof Settings>(key: K): ValueOf<K> => {
    const setting: Setting<ValueOf<K>> = SETTINGS[key] as Setting<ValueOf<K>>;
    const fromFlag = flags[setting.flag];
    if (fromFlag === '') throw new ConfigError(`--${setting.flag}: needs a value`);
    const [text, source] =
      typeof fromFlag === 'string' ? [fromFlag, `--${setting.flag}`] : [env[setting.env], setting.env];
    // An empty variable counts as unset: container tools often pass VAR= for "not configured".
    if (text === undefined || text === '') {
      if ('fallback' in setting) return setting.fallback as ValueOf<K>;
      throw new ConfigError(`--${setting.flag} / ${setting.env} is required`);
    }
    try {
      return setting.parse(text);
    } catch (error) {
      throw new ConfigError(`${source}: ${(error as Error).message}`);
    }
  };

  return {
    upstreamUrl: read('upstreamUrl'),
    host: read('host'),
    port: read('port'),
    mcpPath: read('mcpPath'),
    logLevel: read('logLevel'),
    maxSessions: read('maxSessions'),
    sessionIdleTtlMs: read('sessionIdleTtlMs'),
    bodyLimitBytes: read('bodyLimitBytes'),
    upstreamTimeoutMs: read('upstreamTimeoutMs'),
    connectTimeoutMs: read('connectTimeoutMs'),
    upstreamRetryMs: read('upstreamRetryMs'),
    resetRetryWindowMs: read('resetRetryWindowMs'),
    shutdownGraceMs: read('shutdownGraceMs'),
    identityHeader: read('identityHeader'),
    allowedOrigins: read('allowedOrigins'),
    loss: {
      lossStatuses: new Set(read('lossStatuses')),
      patternStatuses: new Set(read('lossPatternStatuses')),
      patterns: [...DEFAULT_LOSS_PATTERNS, ...read('lossPatterns')],
    },
  };
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

function parseHeaderName(text: string): string {
  const name = text.trim().toLowerCase();
  if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) throw new Error('must be an HTTP header name');
  if (name === 'authorization' || name === 'mcp-session-id') throw new Error(`"${name}" cannot be the identity header`);
  return name;
}

/** Comma-separated origins (scheme://host[:port]); `*` is refused: leave the setting out instead. */
function parseOrigins(text: string): ReadonlySet<string> {
  const origins = text.split(',').map((t) => t.trim()).filter(Boolean);
  if (origins.length === 0) throw new Error('must list at least one origin');
  for (const origin of origins) {
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      throw new Error(`"${origin}" is not an origin like https://app.example.com`);
    }
    if (parsed.origin !== origin) throw new Error(`"${origin}" is not an origin like https://app.example.com`);
  }
  return new Set(origins);
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
  const items = text.split(',').map((t) => t.trim()).filter(Boolean);
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
