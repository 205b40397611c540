import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_PORT, helpText, loadConfig, parseInvocation, SETTINGS } from '../../src/config.js';

const dir = mkdtempSync(join(tmpdir(), 'msp-config-unit-'));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}
function problems(argv: string[], env: NodeJS.ProcessEnv): readonly string[] {
  try {
    loadConfig(argv, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('loadConfig did not throw');
}

describe('config file layer: defaults < file < environment < flags', () => {
  it('reads JSON with settings of every value type', () => {
    const path = file(
      'all.json',
      JSON.stringify({
        upstreamUrl: 'http://127.0.0.1:9000/mcp',
        port: 9001,
        metricsEnabled: false,
        lossStatuses: [404, 410],
        lossPatterns: ['gone away', 'bye'],
        allowedOrigins: ['https://a.example', 'https://b.example'],
      }),
    );
    const config = loadConfig(['--config', path], {});
    expect(config.upstreamUrl.href).toBe('http://127.0.0.1:9000/mcp');
    expect(config.port).toBe(9001);
    expect(config.metricsEnabled).toBe(false);
    expect([...config.loss.lossStatuses]).toEqual([404, 410]);
    expect(config.loss.patterns.map((p) => p.name).slice(-2)).toEqual(['custom_1', 'custom_2']);
    expect([...config.allowedOrigins!]).toEqual(['https://a.example', 'https://b.example']);
  });

  it('reads YAML (by extension), and CONFIG_FILE names it too', () => {
    const path = file('proxy.yml', 'upstreamUrl: http://127.0.0.1:9000/mcp\nmaxSessions: 77\n');
    expect(loadConfig([], { CONFIG_FILE: path }).maxSessions).toBe(77);
  });

  it('ranks the file under the environment and the environment under flags', () => {
    const path = file('rank.json', JSON.stringify({ upstreamUrl: 'http://127.0.0.1:1/mcp', port: 1111, host: '10.0.0.1' }));
    const config = loadConfig(['--config', path, '--port', '3333'], { PORT: '2222', HOST: '10.0.0.2' });
    expect(config.port).toBe(3333);
    expect(config.host).toBe('10.0.0.2');
    expect(config.upstreamUrl.port).toBe('1');
    expect(loadConfig(['--config', path], {}).port).toBe(1111);
    expect(loadConfig(['--upstream', 'http://x/mcp'], {}).port).toBe(DEFAULT_PORT);
  });

  it('names the file and the key for every problem in it, all at once', () => {
    const path = file(
      'bad.json',
      JSON.stringify({ upstreamUrl: 'http://127.0.0.1:1/mcp', port: 'eighty', maxSesions: 5, lossStatuses: { a: 1 } }),
    );
    expect(problems(['--config', path], {})).toEqual([
      `${path}: maxSesions: not a setting (settings: ${Object.keys(SETTINGS).join(', ')})`,
      `${path}: lossStatuses: must be a string, number, boolean or list`,
      `${path}: port: must be a whole number from 0 to 65535`,
    ]);
  });

  it('refuses a missing file, unparsable text, and a file that is not an object', () => {
    expect(problems(['--config', join(dir, 'nope.json')], {})[0]).toBe(`--config ${join(dir, 'nope.json')}: no such file`);
    expect(problems(['--config', file('broken.json', '{ "port": ')], {})[0]).toMatch(/^--config .*broken\.json: /);
    expect(problems(['--config', file('list.yaml', '- a\n- b\n')], {})[0]).toMatch(/must hold an object of settings$/);
  });

  it('refuses two routes on one path', () => {
    expect(problems(['--upstream', 'http://x/mcp', '--ready-path', '/healthz'], {})).toEqual([
      '--ready-path: /healthz is already the --health-path',
    ]);
    expect(problems(['--upstream', 'http://x/mcp', '--metrics-path', '/mcp'], {})).toEqual([
      '--metrics-path: /mcp is already the --mcp-path',
    ]);
  });

  it('reads booleans in the usual spellings', () => {
    for (const [text, value] of [
      ['true', true],
      ['1', true],
      ['on', true],
      ['false', false],
      ['0', false],
      ['no', false],
    ] as const) {
      expect(loadConfig(['--upstream', 'http://x/mcp', '--metrics', text], {}).metricsEnabled).toBe(value);
    }
    expect(problems(['--upstream', 'http://x/mcp', '--metrics', 'maybe'], {})).toEqual(['--metrics: must be true or false']);
  });
});

describe('--help and --version', () => {
  it('are recognised before any setting is validated', () => {
    expect(parseInvocation(['--help'], {})).toEqual({ kind: 'help' });
    expect(parseInvocation(['-h', '--port', 'x'], {})).toEqual({ kind: 'help' });
    expect(parseInvocation(['--version'], {})).toEqual({ kind: 'version' });
  });

  it('help names every setting with its flag, variable and file key', () => {
    const text = helpText();
    for (const [key, setting] of Object.entries(SETTINGS)) {
      expect(text).toContain(`--${setting.flag}`);
      expect(text).toContain(setting.env);
      expect(text).toContain(`config file key: ${key}`);
    }
  });
});
