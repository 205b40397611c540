/**
 * There is no Docker engine on our machines, so this replays the Dockerfile's final stage outside
 * Docker: it reads the stage's instructions, copies what it copies into an empty directory, runs
 * what it runs (production dependencies only), starts its exact CMD with its ENV plus what a user
 * passes with -e, then checks the HEALTHCHECK, /healthz and one MCP session through the result.
 * Its `node` is the binary of the `node` devDependency, which must be the base image's line.
 * Not covered: the base image itself, and USER (tests run as whoever runs them).
 */
import { execFileSync, execSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { callText, connect } from '../helpers/client.js';
import { freePort, killAll, READY_TIMEOUT_MS, startFixture } from '../helpers/processes.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// The image's `node`: the binary of the shipped line, whichever Node runs the tests.
const IMAGE_NODE_DIR = join(ROOT, 'node_modules/node/bin');

interface Stage {
  env: Record<string, string>;
  copies: { from: string | undefined; sources: string[]; dest: string }[];
  runs: string[];
  cmd: string[];
  healthcheck: string[];
  expose: string[];
  user: string | undefined;
}

/** The instructions of the Dockerfile's last stage (continuation lines joined). */
function finalStage(dockerfile: string): Stage {
  const lines = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const last = lines
    .map((l, i) => (/^FROM\s/i.test(l) ? i : -1))
    .filter((i) => i >= 0)
    .at(-1)!;
  const stage: Stage = { env: {}, copies: [], runs: [], cmd: [], healthcheck: [], expose: [], user: undefined };
  for (const line of lines.slice(last + 1)) {
    const [instruction, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    switch (instruction!.toUpperCase()) {
      case 'ENV':
        for (const m of args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) stage.env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
        break;
      case 'COPY': {
        const words = args.split(/\s+/);
        const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
        const paths = words.filter((w) => !w.startsWith('--'));
        stage.copies.push({ from, sources: paths.slice(0, -1), dest: paths.at(-1)! });
        break;
      }
      case 'RUN':
        stage.runs.push(args.replace(/--mount=\S+\s+/g, ''));
        break;
      case 'CMD':
        stage.cmd = JSON.parse(args) as string[];
        break;
      case 'HEALTHCHECK':
        stage.healthcheck = JSON.parse(args.slice(args.indexOf('CMD') + 3).trim()) as string[];
        break;
      case 'EXPOSE':
        stage.expose.push(...rest);
        break;
      case 'USER':
        stage.user = args;
        break;
    }
  }
  return stage;
}

const work = mkdtempSync(join(tmpdir(), 'msp-image-'));
afterAll(async () => {
  await killAll();
  rmSync(work, { recursive: true, force: true });
});

describe('the container image (final Dockerfile stage, replayed without Docker)', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const stage = finalStage(dockerfile);

  it('is built on the Node line `npm test` runs on; `npm run test:oldest` runs on the one `engines` starts at', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      engines: { node: string };
      devDependencies: Record<string, string>;
    };
    const major = (text: string) => Number(/(\d+)/.exec(text)![1]);
    const images = [...dockerfile.matchAll(/^FROM\s+node:(\d+)\S*/gm)].map((m) => Number(m[1]));
    expect(images.length).toBeGreaterThan(1);
    // Every stage on the line of the `node` devDependency (`npm test` runs on it)...
    expect(new Set(images)).toEqual(new Set([major(pkg.devDependencies.node!)]));
    expect(major(execFileSync(join(IMAGE_NODE_DIR, 'node'), ['--version']).toString())).toBe(images[0]);
    // ...and `node-oldest` (`npm run test:oldest`) on the line `engines` starts at.
    expect(pkg.devDependencies['node-oldest']).toMatch(/^npm:node@/);
    expect(major(pkg.devDependencies['node-oldest']!.slice('npm:node@'.length))).toBe(major(pkg.engines.node));
    expect(major(pkg.engines.node)).toBeLessThan(images[0]!);
  });

  it('is a non-root, production-only stage that exposes its port and has a health check', () => {
    expect(stage.user).toBe('node');
    expect(stage.expose).toEqual([stage.env.PORT]);
    expect(stage.env.NODE_ENV).toBe('production');
    expect(stage.runs.join(' ')).toMatch(/npm ci --omit=dev/);
    expect(stage.cmd[0]).toBe('node');
    expect(stage.healthcheck.join(' ')).toContain('/healthz');
  });

  it('installs, starts with the environment a user passes, and serves probes and an MCP session', async () => {
    // COPY: from the build context, or from the build stage (whose /app/dist is our compiled dist/).
    for (const copy of stage.copies) {
      for (const source of copy.sources) {
        const from = join(ROOT, copy.from === undefined ? source : source.replace(/^\/app\//, ''));
        const intoDir = copy.sources.length > 1 || copy.dest.endsWith('/');
        cpSync(from, intoDir ? join(work, copy.dest, basename(source)) : join(work, copy.dest), { recursive: true });
      }
    }
    for (const run of stage.runs) execSync(run, { cwd: work, stdio: 'pipe', env: { ...process.env, npm_config_prefer_offline: 'true' } });
    // Production dependencies only: no test tooling in the image.
    expect(existsSync(join(work, 'node_modules/fastify'))).toBe(true);
    expect(existsSync(join(work, 'node_modules/vitest'))).toBe(false);
    expect(existsSync(join(work, 'node_modules/typescript'))).toBe(false);
    expect(existsSync(join(work, 'src'))).toBe(false);

    const upstream = await startFixture('sdk');
    const port = String(await freePort());
    // As `docker run -e UPSTREAM_URL=... -e PORT=...` (HOST too: tests stay on loopback).
    const env = {
      PATH: `${IMAGE_NODE_DIR}${delimiter}${process.env.PATH ?? ''}`,
      ...stage.env,
      UPSTREAM_URL: upstream.mcpUrl,
      PORT: port,
      HOST: '127.0.0.1',
    };
    const child = spawn(stage.cmd[0]!, stage.cmd.slice(1), { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = once(child, 'exit');
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    try {
      await expect.poll(() => output, { timeout: READY_TIMEOUT_MS }).toContain('mcp-session-proxy listening');
      const origin = `http://127.0.0.1:${port}`;
      expect((await fetch(`${origin}/healthz`)).status).toBe(200);
      const health = execSync(stage.healthcheck.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' '), { cwd: work, env });
      expect(health.toString()).toBe(''); // exit 0, quietly
      const c = await connect(`${origin}/mcp`, 'containerised');
      expect(await callText(c, 'echo', { text: 'from the image' })).toBe('from the image');
      await upstream.drop();
      expect(await callText(c, 'echo', { text: 'recovered in the image' })).toBe('recovered in the image');
      await c.close();
    } finally {
      child.kill('SIGTERM');
    }
    const [code] = await exited;
    expect(code).toBe(0);
  });
});

describe('examples', () => {
  it('docker-compose and the Kubernetes pod wire the probes to /healthz and /readyz', () => {
    const compose = parseYaml(readFileSync(join(ROOT, 'examples/docker-compose.yml'), 'utf8')) as {
      services: Record<string, { environment?: Record<string, string>; healthcheck?: { test: string[] } }>;
    };
    const proxy = compose.services['mcp-session-proxy']!;
    expect(proxy.environment!.UPSTREAM_URL).toMatch(/^http:\/\/mcp-server:\d+\/mcp$/);
    expect(proxy.healthcheck!.test.join(' ')).toContain('/readyz');

    const docs = readFileSync(join(ROOT, 'examples/kubernetes/pod.yaml'), 'utf8')
      .split(/^---$/m)
      .map((d) => parseYaml(d));
    const pod = docs.find((d) => d.kind === 'Pod');
    const sidecar = pod.spec.containers.find((c: { name: string }) => c.name === 'mcp-session-proxy');
    expect(sidecar.livenessProbe.httpGet.path).toBe('/healthz');
    expect(sidecar.readinessProbe.httpGet.path).toBe('/readyz');
    expect(sidecar.env.find((e: { name: string }) => e.name === 'UPSTREAM_URL').value).toBe('http://127.0.0.1:8000/mcp');
  });

  it('the Kubernetes Deployment gives every replica the session secret as a file where SESSION_SECRET_FILE looks', () => {
    const docs = readFileSync(join(ROOT, 'examples/kubernetes/deployment.yaml'), 'utf8')
      .split(/^---$/m)
      .map((d) => parseYaml(d));
    const deployment = docs.find((d) => d.kind === 'Deployment');
    expect(deployment.spec.replicas).toBeGreaterThan(1);
    const spec = deployment.spec.template.spec;
    const sidecar = spec.containers.find((c: { name: string }) => c.name === 'mcp-session-proxy');
    const file = sidecar.env.find((e: { name: string }) => e.name === 'SESSION_SECRET_FILE').value as string;
    const mount = sidecar.volumeMounts.find((m: { mountPath: string }) => file.startsWith(`${m.mountPath}/`));
    const volume = spec.volumes.find((v: { name: string }) => v.name === mount.name);
    expect(volume.secret.secretName).toBe('mcp-session-secret');
    expect(file.slice(mount.mountPath.length + 1)).toBe('current');
    expect(sidecar.readinessProbe.httpGet.path).toBe('/readyz');
    // No sticky sessions needed: the Service has no session affinity.
    expect(docs.find((d) => d.kind === 'Service').spec.sessionAffinity).toBeUndefined();
  });
});
