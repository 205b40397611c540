#!/usr/bin/env node
/** Entry point: load config → build the app → listen; SIGTERM/SIGINT → close and exit. */
import { buildApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(process.argv.slice(2), process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`mcp-session-proxy: invalid configuration: ${error.message}\n`);
    process.exit(2);
  }

  const app = await buildApp(config);
  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  // One startup line at any log level but silent (operators and scripts wait for it). The
  // upstream URL is logged without its query string, which may hold a token.
  const startup = config.logLevel === 'silent' ? app.log : app.log.child({}, { level: 'info' });
  startup.info(
    { host: config.host, port, path: config.mcpPath, upstream: config.upstreamUrl.origin + config.upstreamUrl.pathname },
    'mcp-session-proxy listening',
  );

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
