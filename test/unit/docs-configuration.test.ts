/**
 * docs/configuration.md's settings table against SETTINGS in src/config.ts: every setting has a
 * row naming its flag, its environment variable, its config-file key and its default, and the
 * table has no row for a setting that does not exist. A setting added, renamed or given a new
 * default without its row fails here, so the operators' reference cannot drift from the code.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../../src/config.js';

const DOC = 'docs/configuration.md';
const text = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');

interface Row {
  readonly flag: string;
  readonly env: string;
  readonly key: string;
  readonly fallback: string;
  readonly line: string;
}

/** A Markdown table row's cells (a `\|` inside a cell is part of it, not a separator). */
function cellsOf(line: string): string[] {
  return line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split(/(?<!\\)\|/)
    .map((cell) => cell.trim());
}

/** The rows of the table whose header names the config-file key, by column name. */
function settingsTable(): Row[] {
  const lines = text.split('\n');
  const start = lines.findIndex((line) => line.startsWith('|') && cellsOf(line).includes('Config-file key'));
  if (start < 0) throw new Error(`${DOC}: no table with a "Config-file key" column`);
  const header = cellsOf(lines[start]!);
  const column = (name: string) => {
    const index = header.indexOf(name);
    if (index < 0) throw new Error(`${DOC}: the settings table has no "${name}" column`);
    return index;
  };
  const [flag, env, key, fallback] = [column('Flag'), column('Environment'), column('Config-file key'), column('Default')];
  const rows: Row[] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const cells = cellsOf(line);
    rows.push({
      flag: cells[flag] ?? '',
      env: cells[env] ?? '',
      key: (cells[key] ?? '').replace(/`/g, ''),
      fallback: cells[fallback] ?? '',
      line,
    });
  }
  return rows;
}

/** How the Default column spells a setting's default (as `--help` does, in code spans). */
function defaultText(setting: object): string {
  if (!('fallback' in setting)) return '(required)';
  const value = setting.fallback;
  if (value === undefined || (Array.isArray(value) && value.length === 0)) return '(none)';
  return `\`${Array.isArray(value) ? value.join(',') : (value as string | number | boolean).toString()}\``;
}

const settings = Object.entries(SETTINGS) as [string, { flag: string; env: string }][];
const rows = settingsTable();

describe(`${DOC} lists every setting of src/config.ts`, () => {
  it('has exactly one row per setting, and none for a setting that does not exist', () => {
    const missing = settings
      .filter(([key]) => !rows.some((row) => row.key === key))
      .map(([key, s]) => `${key} (--${s.flag}, ${s.env}): add a row for it to the table in ${DOC}`);
    const unknown = rows
      .filter((row) => !(row.key in SETTINGS))
      .map((row) => `"${row.key}" is not a setting in src/config.ts SETTINGS: remove or fix its row in ${DOC}`);
    const keys = rows.map((row) => row.key);
    const repeated = keys.filter((key, i) => keys.indexOf(key) !== i).map((key) => `${key}: more than one row in ${DOC}`);
    expect([...missing, ...unknown, ...repeated]).toEqual([]);
  });

  it.each(settings)('%s: its row names its flag, environment variable and default', (key, setting) => {
    const row = rows.find((r) => r.key === key);
    if (row === undefined) return; // reported by the test above
    // `--session-secret` must not be satisfied by `--session-secret-file`: the flag ends the token.
    expect(row.flag, `${DOC}, row ${key}: Flag`).toMatch(new RegExp(`^\`--${setting.flag}[\` ]`));
    expect(row.env, `${DOC}, row ${key}: Environment`).toBe(`\`${setting.env}\``);
    expect(
      row.fallback.startsWith(defaultText(setting)),
      `${DOC}, row ${key}: Default should start with ${defaultText(setting)}, is "${row.fallback}"`,
    ).toBe(true);
  });
});
