import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  helpText,
  DEFAULT_BODY_LIMIT_BYTES,
  DEFAULT_BODY_TIMEOUT_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HOST,
  DEFAULT_LOG_LEVEL,
  DEFAULT_MAX_SESSIONS,
  DEFAULT_MCP_PATH,
  DEFAULT_PORT,
  DEFAULT_SESSION_IDLE_TTL_MS,
  DEFAULT_UPSTREAM_TIMEOUT_MS,
  loadConfig,
} from '../../src/config.js';
import { classifyLoss, DEFAULT_LOSS_PATTERNS } from '../../src/mcp/loss.js';

const UPSTREAM = 'http://127.0.0.1:8000/mcp';
const baseEnv = { UPSTREAM_URL: UPSTREAM } as NodeJS.ProcessEnv;

/** The ConfigError thrown by loadConfig, or a failure if it did not throw one. */
function configError(argv: readonly string[], env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(argv, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig(${JSON.stringify(argv)}, ${JSON.stringify(env)}) did not throw`);
}

describe('loadConfig defaults', () => {
  it('fills every setting but the upstream from defaults', () => {
    const config = loadConfig([], baseEnv);
    expect(config.upstreamUrl).toBeInstanceOf(URL);
    expect(config.upstreamUrl.href).toBe(UPSTREAM);
    expect(config).toMatchObject({
      host: DEFAULT_HOST,
      port: DEFAULT_PORT,
      mcpPath: DEFAULT_MCP_PATH,
      logLevel: DEFAULT_LOG_LEVEL,
      maxSessions: DEFAULT_MAX_SESSIONS,
      sessionIdleTtlMs: DEFAULT_SESSION_IDLE_TTL_MS,
      bodyLimitBytes: DEFAULT_BODY_LIMIT_BYTES,
      upstreamTimeoutMs: DEFAULT_UPSTREAM_TIMEOUT_MS,
      connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
    });
    expect([...config.loss.lossStatuses]).toEqual([404]);
    expect([...config.loss.patternStatuses].sort()).toEqual([400, 401, 403, 409, 410, 422, 503]);
    expect(config.loss.patterns).toEqual(DEFAULT_LOSS_PATTERNS);
  });

  it('has the documented default values', () => {
    expect(DEFAULT_HOST).toBe('0.0.0.0');
    expect(DEFAULT_PORT).toBe(8080);
    expect(DEFAULT_MCP_PATH).toBe('/mcp');
    expect(DEFAULT_LOG_LEVEL).toBe('info');
  });

  it('treats empty environment variables as unset', () => {
    const config = loadConfig([], { ...baseEnv, PORT: '', HOST: '', LOG_LEVEL: '' });
    expect(config.port).toBe(DEFAULT_PORT);
    expect(config.host).toBe(DEFAULT_HOST);
    expect(config.logLevel).toBe(DEFAULT_LOG_LEVEL);
  });

  it('does not read process.env, only the env it is given', () => {
    const error = configError([], {});
    expect(error.message).toBe('--upstream / UPSTREAM_URL is required');
  });
});

describe('loadConfig precedence: flags over env over defaults', () => {
  const env: NodeJS.ProcessEnv = {
    UPSTREAM_URL: 'http://env-upstream:9000/mcp',
    HOST: '127.0.0.1',
    PORT: '9001',
    MCP_PATH: '/env',
    LOG_LEVEL: 'warn',
    MAX_SESSIONS: '100',
    SESSION_IDLE_TTL_MS: '60000',
    BODY_LIMIT_BYTES: '2048',
    UPSTREAM_TIMEOUT_MS: '1000',
    CONNECT_TIMEOUT_MS: '500',
    LOSS_STATUSES: '404,410',
    LOSS_PATTERN_STATUSES: '400',
    LOSS_PATTERNS: 'env pattern',
  };

  it('reads every setting from the environment', () => {
    const config = loadConfig([], env);
    expect(config.upstreamUrl.href).toBe('http://env-upstream:9000/mcp');
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 9001,
      mcpPath: '/env',
      logLevel: 'warn',
      maxSessions: 100,
      sessionIdleTtlMs: 60_000,
      bodyLimitBytes: 2048,
      upstreamTimeoutMs: 1000,
      connectTimeoutMs: 500,
    });
    expect([...config.loss.lossStatuses]).toEqual([404, 410]);
    expect([...config.loss.patternStatuses]).toEqual([400]);
    expect(config.loss.patterns.map((p) => p.name)).toEqual([...DEFAULT_LOSS_PATTERNS.map((p) => p.name), 'custom_1']);
  });

  it('lets every flag override its environment variable', () => {
    const argv = [
      '--upstream=https://flag-upstream/rpc',
      '--host',
      '::1',
      '--port=9002',
      '--mcp-path',
      '/flag',
      '--log-level=debug',
      '--max-sessions=7',
      '--session-idle-ttl-ms=2000',
      '--body-limit-bytes=4096',
      '--upstream-timeout-ms=300',
      '--connect-timeout-ms=200',
      '--loss-statuses=404',
      '--loss-pattern-statuses=503,401',
      '--loss-patterns=flag one||flag two',
    ];
    const config = loadConfig(argv, env);
    expect(config.upstreamUrl.href).toBe('https://flag-upstream/rpc');
    expect(config).toMatchObject({
      host: '::1',
      port: 9002,
      mcpPath: '/flag',
      logLevel: 'debug',
      maxSessions: 7,
      sessionIdleTtlMs: 2000,
      bodyLimitBytes: 4096,
      upstreamTimeoutMs: 300,
      connectTimeoutMs: 200,
    });
    expect([...config.loss.lossStatuses]).toEqual([404]);
    expect([...config.loss.patternStatuses]).toEqual([503, 401]);
    const custom = config.loss.patterns.slice(DEFAULT_LOSS_PATTERNS.length);
    expect(custom.map((p) => p.name)).toEqual(['custom_1', 'custom_2']);
    expect(custom.map((p) => p.pattern.source)).toEqual(['flag one', 'flag two']);
  });

  it('mixes sources setting by setting', () => {
    const config = loadConfig(['--port', '7000'], { ...baseEnv, LOG_LEVEL: 'error' });
    expect(config.port).toBe(7000);
    expect(config.logLevel).toBe('error');
    expect(config.host).toBe(DEFAULT_HOST);
  });

  it('does not validate an environment variable that a flag overrides', () => {
    expect(loadConfig(['--port=81'], { ...baseEnv, PORT: 'not a number' }).port).toBe(81);
  });

  it('uses the last of a repeated flag', () => {
    expect(loadConfig(['--port=81', '--port=82'], baseEnv).port).toBe(82);
  });
});

describe('loadConfig values', () => {
  it('accepts log levels in any case', () => {
    expect(loadConfig([], { ...baseEnv, LOG_LEVEL: 'DEBUG' }).logLevel).toBe('debug');
    for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
      expect(loadConfig([`--log-level=${level}`], baseEnv).logLevel).toBe(level);
    }
  });

  it('accepts integers with surrounding spaces and at the bounds', () => {
    expect(loadConfig([], { ...baseEnv, PORT: ' 81 ' }).port).toBe(81);
    expect(loadConfig([], { ...baseEnv, PORT: '0' }).port).toBe(0);
    expect(loadConfig([], { ...baseEnv, PORT: '65535' }).port).toBe(65_535);
    expect(loadConfig([], { ...baseEnv, MAX_SESSIONS: '1' }).maxSessions).toBe(1);
    expect(loadConfig([], { ...baseEnv, SESSION_IDLE_TTL_MS: '1000' }).sessionIdleTtlMs).toBe(1000);
  });

  it('accepts https upstreams with a query', () => {
    expect(loadConfig(['--upstream=https://example.com/mcp?tenant=a'], {}).upstreamUrl.search).toBe('?tenant=a');
  });

  it('tolerates spaces and empty items in status lists', () => {
    expect([...loadConfig([], { ...baseEnv, LOSS_STATUSES: ' 404 , 410,,' }).loss.lossStatuses]).toEqual([404, 410]);
    // A list with no items empties the set (no status is a loss by itself).
    expect(loadConfig(['--loss-statuses=,'], baseEnv).loss.lossStatuses.size).toBe(0);
  });

  it('compiles custom patterns case-insensitively, skipping empty ones', () => {
    const config = loadConfig([], { ...baseEnv, LOSS_PATTERNS: ' conversation (gone|lost) || || ctx \\d+ missing ' });
    const custom = config.loss.patterns.slice(DEFAULT_LOSS_PATTERNS.length);
    expect(custom.map((p) => p.name)).toEqual(['custom_1', 'custom_2']);
    expect(custom[0]?.pattern.test('Conversation LOST')).toBe(true);
    expect(custom[1]?.pattern.test('CTX 42 MISSING')).toBe(true);
  });

  it('builds loss rules that change what classifyLoss answers', () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Conversation gone' } });
    const defaults = loadConfig([], baseEnv).loss;
    expect(classifyLoss(400, body, defaults)).toBeUndefined();
    expect(classifyLoss(500, 'Session not found', defaults)).toBeUndefined();
    expect(classifyLoss(404, '', defaults)).toBe('status_404');

    const custom = loadConfig(
      ['--loss-patterns=conversation gone', '--loss-pattern-statuses=400,500', '--loss-statuses=410'],
      baseEnv,
    ).loss;
    expect(classifyLoss(400, body, custom)).toBe('custom_1');
    expect(classifyLoss(500, 'Session not found', custom)).toBe('session_not_found');
    expect(classifyLoss(410, 'Gone', custom)).toBe('status_410');
    expect(classifyLoss(404, '', custom)).toBeUndefined();
    expect(classifyLoss(503, 'Session not found', custom)).toBeUndefined();
  });
});

describe('loadConfig validation: each error names the setting', () => {
  it('refuses a flag given with an empty value instead of silently using the default', () => {
    expect(configError(['--port='], { ...baseEnv, PORT: '9000' }).message).toBe('--port: needs a value');
    expect(configError(['--upstream='], baseEnv).message).toBe('--upstream: needs a value');
  });

  it('refuses loss statuses that are not errors (a 2xx is never a lost session)', () => {
    expect(configError([], { ...baseEnv, LOSS_STATUSES: '404,200' }).message).toMatch(/^LOSS_STATUSES: "200" is not a 4xx or 5xx/);
    expect(configError(['--loss-pattern-statuses', '302'], baseEnv).message).toMatch(/^--loss-pattern-statuses: "302"/);
  });

  it('requires the upstream, naming both its flag and its variable', () => {
    const error = configError([], {});
    expect(error.name).toBe('ConfigError');
    expect(error.message).toContain('--upstream');
    expect(error.message).toContain('UPSTREAM_URL');
  });

  it.each([
    ['UPSTREAM_URL', 'not a url', 'not a URL'],
    ['UPSTREAM_URL', 'ftp://example.com/mcp', 'http:// or https://'],
    ['UPSTREAM_URL', 'http://user:secret@example.com/mcp', 'credentials'],
    ['UPSTREAM_URL', 'http://example.com/mcp#frag', 'fragment'],
    ['HOST', 'local host', 'host name'],
    ['PORT', 'abc', 'whole number'],
    ['PORT', '-1', 'whole number'],
    ['PORT', '65536', 'from 0 to 65535'],
    ['PORT', '80.5', 'whole number'],
    ['PORT', '1e3', 'whole number'],
    ['MCP_PATH', 'mcp', 'starting with /'],
    ['MCP_PATH', '/mcp?x=1', 'no query'],
    ['MCP_PATH', '/mcp#x', 'fragment'],
    ['MCP_PATH', '/m cp', 'path'],
    ['LOG_LEVEL', 'verbose', 'must be one of'],
    ['MAX_SESSIONS', '0', 'from 1 to'],
    ['MAX_SESSIONS', '10000001', 'whole number'],
    ['SESSION_IDLE_TTL_MS', '999', 'from 1000 to'],
    ['BODY_LIMIT_BYTES', '1023', 'from 1024 to'],
    ['UPSTREAM_TIMEOUT_MS', '99', 'from 100 to'],
    ['CONNECT_TIMEOUT_MS', '600001', 'to 600000'],
    ['LOSS_STATUSES', '404,abc', '"abc" is not a 4xx or 5xx HTTP status'],
    ['LOSS_STATUSES', '600', '"600" is not a 4xx or 5xx HTTP status'],
    ['LOSS_STATUSES', '40', '"40" is not a 4xx or 5xx HTTP status'],
    ['LOSS_PATTERN_STATUSES', '400;401', 'is not a 4xx or 5xx HTTP status'],
    ['LOSS_PATTERNS', '(unclosed', 'pattern 1 is not a valid regular expression'],
    ['LOSS_PATTERNS', 'fine||[bad', 'pattern 2 is not a valid regular expression'],
  ])('%s=%j is rejected, naming the variable', (name, value, why) => {
    const error = configError([], { ...baseEnv, [name]: value });
    expect(error.message.startsWith(`${name}: `)).toBe(true);
    expect(error.message).toContain(why);
  });

  it.each([
    ['--upstream', 'mailto:a@b.c'],
    ['--host', 'a\tb'],
    ['--port', '99999'],
    ['--mcp-path', 'relative'],
    ['--log-level', 'loud'],
    ['--max-sessions', 'many'],
    ['--session-idle-ttl-ms', '10'],
    ['--body-limit-bytes', '1'],
    ['--upstream-timeout-ms', '0'],
    ['--connect-timeout-ms', '1'],
    ['--loss-statuses', '4040'],
    ['--loss-pattern-statuses', 'x'],
    ['--loss-patterns', '*'],
  ])('%s=%j is rejected, naming the flag', (flag, value) => {
    const error = configError([`${flag}=${value}`], baseEnv);
    expect(error.message.startsWith(`${flag}: `)).toBe(true);
  });

  it('names the flag when a flag overrides a valid environment variable with a bad value', () => {
    const error = configError(['--port=nope'], { ...baseEnv, PORT: '81' });
    expect(error.message.startsWith('--port: ')).toBe(true);
  });

  it('never echoes the upstream credentials it rejects', () => {
    const error = configError([], { UPSTREAM_URL: 'http://user:hunter2@example.com/mcp' });
    expect(error.message).not.toContain('hunter2');
  });

  it('rejects unknown flags by name', () => {
    const error = configError(['--bogus=1'], baseEnv);
    expect(error.message).toContain('--bogus');
  });

  it('rejects a flag without its value', () => {
    const error = configError(['--port'], baseEnv);
    expect(error.message).toContain('--port');
  });

  it('rejects positional arguments', () => {
    const error = configError(['http://127.0.0.1:8000/mcp'], {});
    expect(error.message).toContain('http://127.0.0.1:8000/mcp');
  });
});

describe('session secret settings', () => {
  const secretA = 'q3J8v1mZ0xk7Yb2Wc9Lr5Tn4Hs6Gd8Fa1Pe0Ui3Oj7M=';
  const secretB = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';

  it('are off by default: random ids, a week of age limit for sealed ones', () => {
    const config = loadConfig([], baseEnv);
    expect(config.sessionSecret).toBeUndefined();
    expect(config.sessionSecretPrevious).toBeUndefined();
    expect(config.sessionMaxAgeMs).toBe(7 * 24 * 3600 * 1000);
  });

  it('read the current and previous secrets from variables or files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'secrets-'));
    writeFileSync(join(dir, 'current'), `${secretA}\n`);
    writeFileSync(join(dir, 'previous'), secretB);
    const fromEnv = loadConfig([], { ...baseEnv, SESSION_SECRET: secretA, SESSION_SECRET_PREVIOUS: secretB, SESSION_MAX_AGE_MS: '60000' });
    const fromFiles = loadConfig([], {
      ...baseEnv,
      SESSION_SECRET_FILE: join(dir, 'current'),
      SESSION_SECRET_PREVIOUS_FILE: join(dir, 'previous'),
    });
    for (const config of [fromEnv, fromFiles]) {
      expect(config.sessionSecret?.toString()).toBe(secretA);
      expect(config.sessionSecretPrevious?.toString()).toBe(secretB);
    }
    expect(fromEnv.sessionMaxAgeMs).toBe(60_000);
  });

  it('refuse weak or unreadable secrets and a previous secret alone, naming the setting but never the value', () => {
    const weak = 'changeme'.repeat(8);
    const problems = configError([], {
      ...baseEnv,
      SESSION_SECRET: weak,
      SESSION_SECRET_FILE: '/nonexistent/secret',
      SESSION_MAX_AGE_MS: '10',
    }).problems;
    expect(problems.some((p) => p.startsWith('SESSION_SECRET: holds too little entropy'))).toBe(true);
    expect(problems.some((p) => p.startsWith('SESSION_SECRET_FILE: cannot read /nonexistent/secret'))).toBe(true);
    expect(problems.some((p) => p.startsWith('SESSION_MAX_AGE_MS:'))).toBe(true);
    expect(problems.join('\n')).not.toContain(weak);

    // An invalid current secret is reported as such, not as a missing one.
    expect(configError([], { ...baseEnv, SESSION_SECRET: 'short', SESSION_SECRET_PREVIOUS: secretB }).problems).toEqual([
      expect.stringMatching(/^SESSION_SECRET: too short/),
    ]);
    const alone = configError([], { ...baseEnv, SESSION_SECRET_PREVIOUS: secretB }).problems;
    expect(alone).toEqual(['SESSION_SECRET_PREVIOUS needs a current SESSION_SECRET (or SESSION_SECRET_FILE)']);
  });

  it('refuse a secret given both inline and as a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'secrets-'));
    writeFileSync(join(dir, 'current'), secretB);
    const problems = configError([], { ...baseEnv, SESSION_SECRET: secretA, SESSION_SECRET_FILE: join(dir, 'current') }).problems;
    expect(problems).toEqual(['SESSION_SECRET and SESSION_SECRET_FILE: set one, not both']);
  });
});

describe('allowed hosts and the body timeout', () => {
  it('default: no Host list (the gate derives one from --host), 30 s body timeout', () => {
    const config = loadConfig([], baseEnv);
    expect(config.allowedHosts).toBeUndefined();
    expect(config.bodyTimeoutMs).toBe(DEFAULT_BODY_TIMEOUT_MS);
    expect(DEFAULT_BODY_TIMEOUT_MS).toBe(30_000);
  });

  it('read hostnames (lower-cased, IPv6 in brackets) and the timeout from flags, environment and file', () => {
    const fromEnv = loadConfig([], { ...baseEnv, ALLOWED_HOSTS: 'MCP.example.com, 10.0.0.7,[::1],', BODY_TIMEOUT_MS: '250' });
    expect([...fromEnv.allowedHosts!]).toEqual(['mcp.example.com', '10.0.0.7', '[::1]']);
    expect(fromEnv.bodyTimeoutMs).toBe(250);
    const fromFlags = loadConfig(['--allowed-hosts', 'localhost', '--body-timeout-ms=60000'], { ...baseEnv, ALLOWED_HOSTS: 'other' });
    expect([...fromFlags.allowedHosts!]).toEqual(['localhost']);
    expect(fromFlags.bodyTimeoutMs).toBe(60_000);
  });

  it.each([
    ['localhost:8080', 'a port'],
    ['http://localhost', 'a scheme'],
    ['*', 'a wildcard'],
    ['*.example.com', 'a wildcard'],
    ['::1', 'IPv6 without brackets'],
    ['a b', 'a space'],
    [',', 'nothing'],
    ['127.1', 'a shorthand address'],
  ])('refuse ALLOWED_HOSTS=%s (%s), naming the setting', (value) => {
    const error = configError([], { ...baseEnv, ALLOWED_HOSTS: value });
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatch(/^ALLOWED_HOSTS: /);
  });

  it.each(['99', '600001', 'soon', '-1'])('refuse BODY_TIMEOUT_MS=%s', (value) => {
    expect(configError([], { ...baseEnv, BODY_TIMEOUT_MS: value }).problems[0]).toMatch(
      /^BODY_TIMEOUT_MS: must be a whole number from 100 to 600000/,
    );
  });

  it('refuse a probe path that the gate would take for the MCP path (another spelling of it)', () => {
    expect(configError(['--health-path', '/MCP/'], baseEnv).problems).toEqual(['--health-path: /MCP/ is already the --mcp-path']);
    expect(configError(['--metrics-path', '/x/../mcp'], baseEnv).problems).toEqual(['--metrics-path: /x/../mcp is already the --mcp-path']);
  });

  it('--help explains both', () => {
    expect(helpText()).toMatch(/--allowed-hosts\s+ALLOWED_HOSTS\s+\(none\)\n.*loopback/);
    expect(helpText()).toMatch(/--body-timeout-ms\s+BODY_TIMEOUT_MS\s+30000\n.*408/);
  });
});

describe('renamed settings: the old spelling still works, the new one wins', () => {
  it('--hosted-input-timeout-ms, HOSTED_INPUT_TIMEOUT_MS and hostedInputTimeoutMs; the held-* spelling is read too', () => {
    expect(loadConfig(['--hosted-input-timeout-ms', '1500'], baseEnv).hostedInputTimeoutMs).toBe(1500);
    expect(loadConfig([], { ...baseEnv, HOSTED_INPUT_TIMEOUT_MS: '1600' }).hostedInputTimeoutMs).toBe(1600);
    expect(loadConfig(['--held-input-timeout-ms', '1700'], baseEnv).hostedInputTimeoutMs).toBe(1700);
    expect(loadConfig([], { ...baseEnv, HELD_INPUT_TIMEOUT_MS: '1800' }).hostedInputTimeoutMs).toBe(1800);
    // The new spelling wins over the old one from the same source; a flag over any variable.
    expect(loadConfig(['--held-input-timeout-ms', '1700', '--hosted-input-timeout-ms', '1500'], baseEnv).hostedInputTimeoutMs).toBe(1500);
    expect(loadConfig([], { ...baseEnv, HELD_INPUT_TIMEOUT_MS: '1800', HOSTED_INPUT_TIMEOUT_MS: '1600' }).hostedInputTimeoutMs).toBe(1600);
    expect(loadConfig(['--held-input-timeout-ms', '1700'], { ...baseEnv, HOSTED_INPUT_TIMEOUT_MS: '1600' }).hostedInputTimeoutMs).toBe(
      1700,
    );
  });

  it('a bad value under the old spelling is reported under the name it was given by', () => {
    expect(configError(['--held-input-timeout-ms', 'soon'], baseEnv).problems[0]).toMatch(/^--held-input-timeout-ms: /);
    expect(configError([], { ...baseEnv, HELD_INPUT_TIMEOUT_MS: 'soon' }).problems[0]).toMatch(/^HELD_INPUT_TIMEOUT_MS: /);
  });

  it('the config file takes the old key as the new one, and the new key wins', () => {
    const dir = mkdtempSync(join(tmpdir(), 'renamed-'));
    const old = join(dir, 'old.json');
    writeFileSync(old, JSON.stringify({ upstreamUrl: UPSTREAM, heldInputTimeoutMs: 1900 }));
    expect(loadConfig(['--config', old], {}).hostedInputTimeoutMs).toBe(1900);
    const both = join(dir, 'both.json');
    writeFileSync(both, JSON.stringify({ upstreamUrl: UPSTREAM, hostedInputTimeoutMs: 2000, heldInputTimeoutMs: 1900 }));
    expect(loadConfig(['--config', both], {}).hostedInputTimeoutMs).toBe(2000);
  });

  it('--help names the old spelling as deprecated', () => {
    expect(helpText()).toContain('(deprecated spelling, still read: --held-input-timeout-ms, HELD_INPUT_TIMEOUT_MS, heldInputTimeoutMs)');
  });
});
