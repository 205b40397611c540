/**
 * buildApp(config): the Fastify instance with every route wired, not yet listening (tests and
 * main.ts both use it). This file only wires; the flow lives in proxy/routes.ts.
 */
import httpProxy from '@fastify/http-proxy';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { DestinationStream } from 'pino';
import type { Config } from './config.js';
import { createLogger } from './observability/logger.js';
import { mcpRoutes } from './proxy/routes.js';
import { createCredentialBinding } from './session/binding.js';
import { createHandshake } from './session/handshake.js';
import { createFingerprint } from './session/ids.js';
import { createSessionStore } from './session/store.js';
import { createUpstreamClient } from './upstream/client.js';

export interface BuildOptions {
  /** Where log lines go (stdout when absent). */
  readonly logDestination?: DestinationStream;
}

export async function buildApp(config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  const logger = createLogger(config.logLevel, options.logDestination);
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // One access line per MCP request is written by the route itself (with the session fingerprint).
    logController: new LogController({ disableRequestLogging: true }),
    // SSE streams may stay open for hours; the upstream timeout bounds the wait for headers instead.
    requestTimeout: 0,
    bodyLimit: config.bodyLimitBytes,
    return503OnClosing: true,
  });

  const fingerprint = createFingerprint();
  const upstream = createUpstreamClient({
    url: config.upstreamUrl,
    headersTimeoutMs: config.upstreamTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    connectRetryMs: config.upstreamRetryMs,
  });
  const store = createSessionStore({
    maxSessions: config.maxSessions,
    idleTtlMs: config.sessionIdleTtlMs,
    onEnd: (session, reason) => {
      if (reason !== 'delete') logger.info({ sid: session.logId, reason }, 'session ended');
    },
  });
  const handshake = createHandshake({ upstream, fingerprint, timeoutMs: config.upstreamTimeoutMs });

  const binding = createCredentialBinding(config.identityHeader);

  await app.register(mcpRoutes, { config, store, upstream, handshake, fingerprint, binding });
  // Everything that is not the MCP endpoint (OAuth discovery, health, ...) passes through as is.
  await app.register(httpProxy, { upstream: config.upstreamUrl.origin, prefix: '/', http2: false });

  app.addHook('onClose', async () => {
    await upstream.close();
  });
  return app;
}
