/**
 * The baseline target (BENCH_BASELINE=<git ref>): the proxy as it is at another commit, measured in
 * the same run as the current build, so that a change is judged on before/after figures from one
 * machine and one run rather than on figures from different runs (which move by about ±10%).
 *
 * The ref's src/, tsconfig.json and package.json are extracted under results/tmp/baseline-<sha>/,
 * compiled with this checkout's tsc, and run against this checkout's node_modules (a symlink): what
 * differs between the two targets is the proxy's own code.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface Baseline {
  ref: string;
  sha: string;
  shortSha: string;
  /** The compiled entry point, the baseline's dist/main.js. */
  mainJs: string;
  /** Whether its package.json asks for other dependencies than the ones it runs with. */
  dependenciesDiffer: boolean;
}

function git(args: string[]): Buffer {
  return execFileSync('git', ['-C', ROOT, ...args], { maxBuffer: 256 * 1024 * 1024 });
}

/** Extract and compile the proxy at `ref`. Throws (with tsc's output) if it does not build. */
export function buildBaseline(ref: string): Baseline {
  let sha: string;
  try {
    sha = git(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`])
      .toString()
      .trim();
  } catch {
    throw new Error(`BENCH_BASELINE=${ref}: not a commit in ${ROOT}`);
  }
  const shortSha = git(['rev-parse', '--short', sha]).toString().trim();
  const dir = `${ROOT}bench/results/tmp/baseline-${shortSha}`;
  // Always from scratch: a directory left by an interrupted build must not pass for a good one.
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['-x', '-C', dir], { input: git(['archive', '--format=tar', sha, 'src', 'tsconfig.json', 'package.json']) });
  symlinkSync(`${ROOT}node_modules`, `${dir}/node_modules`, 'dir');
  try {
    execFileSync(`${ROOT}node_modules/.bin/tsc`, ['-p', `${dir}/tsconfig.json`], { stdio: 'pipe' });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: Buffer; stderr?: Buffer };
    throw new Error(`BENCH_BASELINE=${ref}: tsc failed in ${dir}\n${stdout?.toString() ?? ''}${stderr?.toString() ?? ''}`, {
      cause: error,
    });
  }
  const dependencies = (file: string) =>
    JSON.stringify((JSON.parse(readFileSync(file, 'utf8')) as { dependencies?: unknown }).dependencies ?? {});
  return {
    ref,
    sha,
    shortSha,
    mainJs: `${dir}/dist/main.js`,
    dependenciesDiffer: dependencies(`${dir}/package.json`) !== dependencies(`${ROOT}package.json`),
  };
}

export interface BaselineProxy {
  readonly child: ChildProcess;
  readonly origin: string;
  /** SIGKILL. Sent at once (callable from an 'exit' handler); the promise waits for the exit. */
  kill(): Promise<void>;
}

/**
 * Start the baseline's main.js exactly as test/helpers/processes.ts starts the current one
 * (startProxy: same arguments, same working directory, output to a log file), and wait until it
 * logs that it listens. Spawned here because startProxy always runs this checkout's dist/main.js.
 */
export async function startBaselineProxy(
  mainJs: string,
  upstreamUrl: string,
  env: Record<string, string>,
  logFile: string,
): Promise<BaselineProxy> {
  const out = openSync(logFile, 'w');
  const child = spawn(process.execPath, [mainJs, '--upstream', upstreamUrl, '--port', '0', '--host', '127.0.0.1'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  // Never outlive the run, however it ends (an 'exit' handler cannot wait, but a signal is sent at once).
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  const exited = once(child, 'exit');
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  try {
    const port = await listeningPort(child, logFile);
    return { child, origin: `http://127.0.0.1:${port}`, kill };
  } catch (error) {
    await kill();
    throw error;
  }
}

/** The port from the proxy's "listening" log line, polled from its log file. */
async function listeningPort(child: ChildProcess, logFile: string): Promise<number> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    for (const line of readFileSync(logFile, 'utf8').split('\n')) {
      const json = parseJson(line);
      if (json?.msg === 'mcp-session-proxy listening') return Number(json.port);
    }
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      throw new Error(`baseline proxy not listening (exit ${child.exitCode ?? child.signalCode}):\n${readFileSync(logFile, 'utf8')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function parseJson(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
