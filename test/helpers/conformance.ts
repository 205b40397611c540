/**
 * The MCP conformance suite (`@modelcontextprotocol/conformance`), run as its CLI on the Node the
 * tests run on (it needs Node >= 22, as the proxy does).
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CONFORMANCE = join(ROOT, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');

export interface Check {
  readonly id: string;
  readonly status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'SKIPPED' | 'INFO';
  readonly errorMessage?: string;
}

/** One CLI run of every scenario a protocol revision requires; the checks of each, by scenario name. */
export function runRequirements(
  url: string,
  outDir: string,
  revision: '2025-11-25' | '2026-07-28',
): Promise<{ output: string; checks: Map<string, Check[]> }> {
  return runCli(['--url', url, '--requirements', revision, '-o', outDir], outDir);
}

/** One CLI run of one scenario; its checks, by scenario name. */
export function runScenario(url: string, outDir: string, scenario: string): Promise<{ output: string; checks: Map<string, Check[]> }> {
  return runCli(['--url', url, '--scenario', scenario, '-o', outDir], outDir);
}

function runCli(args: string[], outDir: string): Promise<{ output: string; checks: Map<string, Check[]> }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CONFORMANCE, 'server', ...args],
      { maxBuffer: 16 * 1024 * 1024 },
      // A failing scenario (even an unscored or excluded one) makes the exit code non-zero: read the checks.
      (_error, stdout, stderr) => {
        const checks = new Map<string, Check[]>();
        for (const dir of readdirSync(outDir)) {
          // server-<scenario>-<ISO timestamp>
          const scenario = /^server-(.+)-\d{4}-\d{2}-\d{2}T/.exec(dir)?.[1];
          const file = join(outDir, dir, 'checks.json');
          if (scenario !== undefined && existsSync(file)) checks.set(scenario, JSON.parse(readFileSync(file, 'utf8')) as Check[]);
        }
        resolve({ output: stdout + stderr, checks });
      },
    );
  });
}
