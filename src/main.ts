#!/usr/bin/env node
/** Entry point: load config → build the app → listen; SIGTERM/SIGINT → close and exit. */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { buildApp } from './app.js';
import { ConfigError, helpText, parseInvocation, type Config } from './config.js';

function fail(lines: readonly string[]): never {
  for (const line of lines) process.stderr.write(`mcp-session-proxy: ${line}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let config: Config;
  try {
    const invocation = parseInvocation(process.argv.slice(2), process.env);
    if (invocation.kind === 'help') return void process.stdout.write(helpText() + '\n');
    if (invocation.kind === 'version') {
      const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
      return void process.stdout.write(`${pkg.version}\n`);
    }
    config = invocation.config;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    fail(error.problems.map((problem) => `invalid configuration: ${problem}`));
  }

  const app = await buildApp(config);
  try {
    // Listening on the server directly (after ready) instead of app.listen(), which would log a
    // line of its own for every interface address: the startup line below is the one line.
    await app.ready();
    await new Promise<void>((resolve, reject) => {
      app.server.once('error', reject);
      app.server.listen({ host: config.host, port: config.port }, () => {
        app.server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    fail([`cannot listen on ${config.host}:${config.port}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`]);
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  // One startup line at any log level but silent (operators and scripts wait for it). The
  // upstream URL is logged without its query string, which may hold a token.
  const startup = config.logLevel === 'silent' ? app.log : app.log.child({}, { level: 'info' });
  startup.info(
    {
      host: config.host,
      port,
      path: config.mcpPath,
      upstream: config.upstreamUrl.origin + config.upstreamUrl.pathname,
      ...(config.sessionSecret === undefined
        ? { sessions: 'in-process', hint: 'sessions do not survive a restart or reach other replicas; set SESSION_SECRET to seal them' }
        : { sessions: 'sealed', previousSecret: config.sessionSecretPrevious !== undefined }),
      // Whether spans and OTLP metrics go out, and where (origin and path only).
      tracing:
        config.telemetry.traces === undefined
          ? 'off'
          : `on (${config.telemetry.traces.protocol} to ${config.telemetry.traces.endpoint}, sampler ${config.telemetry.sampler})`,
      otlpMetrics:
        config.telemetry.metrics === undefined
          ? 'off'
          : `on (${config.telemetry.metrics.protocol} to ${config.telemetry.metrics.endpoint})`,
    },
    'mcp-session-proxy listening',
  );
  // Operators and scripts wait for this line: write it now, not with the next batch.
  (app.log as Logger).flush();

  // First signal: stop accepting connections, end GET event streams, let requests in flight
  // finish within the grace period, then exit 0. A second signal exits at once.
  let closing = false;
  const stop = (signal: NodeJS.Signals) => {
    if (closing) process.exit(1);
    closing = true;
    app.log.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down');
    setTimeout(() => {
      app.log.warn('grace period over; exiting with requests still in flight');
      process.exit(0);
    }, config.shutdownGraceMs).unref();
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

await main();
