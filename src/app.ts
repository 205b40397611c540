/**
 * buildApp(config): the Fastify instance with every route wired, not yet listening (tests and
 * main.ts both use it). This file only wires; the flow lives in http/endpoint.ts.
 */
import httpProxy from '@fastify/http-proxy';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { DestinationStream } from 'pino';
import type { Config } from './config.js';
import { ProxyError } from './errors.js';
import { answerMalformedRequest } from './http/malformed.js';
import { SESSION_HEADER } from './mcp/protocol.js';
import { createLogger } from './observability/logger.js';
import { createMetrics } from './observability/metrics.js';
import { createTracing, type Tracing } from './observability/tracing.js';
import { gatePolicyOf } from './http/gate.js';
import { normalizePath, pathOf } from './http/paths.js';
import { healthRoutes } from './http/health.js';
import { endStreams, type OpenStreams } from './http/reply.js';
import { createListens } from './flows/pooled/listen/listen.js';
import { installRequestHooks } from './http/request-hooks.js';
import { challengeRewriter, resourceMetadataRoutes } from './http/resource-metadata.js';
import { createMrtr, type Exchange } from './flows/pooled/mrtr/mrtr.js';
import { createMcpEndpoint, type McpEndpoint } from './http/endpoint.js';
import { createHostedFlow } from './flows/hosted/hosted.js';
import { createPooledFlow } from './flows/pooled/pooled.js';
import { createRelayedFlow } from './flows/relayed/relayed.js';
import { createClientSessions } from './session/client-sessions.js';
import { createCredentialBinding } from './session/binding.js';
import { createFingerprint } from './session/ids.js';
import { createSealer, deriveKeys, type Sealer } from './session/sealing.js';
import { createRequestStateCodec, randomStateKey } from './session/request-state.js';
import { createSessionStore, createTerminatedIds, endBackend } from './session/store.js';
import { createUpstreamClient } from './upstream/client.js';
import { createEraProbe } from './upstream/era-probe.js';
import type { LinkDeps } from './upstream/link.js';
import { createNotificationFeeds, defaultRetryDelayMs } from './flows/pooled/listen/feed.js';
import { createParkedExchanges } from './flows/pooled/mrtr/parked.js';
import { createLinkPool } from './upstream/pool.js';

const SERVER_KEEP_ALIVE_MS = 72_000;

export interface BuildOptions {
  /** Where log lines go (stdout when absent). */
  readonly logDestination?: DestinationStream;
}

export async function buildApp(config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  const logger = createLogger(config.logLevel, options.logDestination, config.identityHeader);
  // Every request for the MCP path, whatever its method, is handed over before Fastify routes
  // anything (endpoint.ts says why); everything else is Fastify's. `endpoint` is set below, before
  // the server listens.
  let endpoint: McpEndpoint | undefined;
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // The access line is written by tracking.ts (with the session fingerprint).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    return503OnClosing: true,
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true },
    clientErrorHandler: (error, socket) => answerMalformedRequest(error, socket, logger),
    serverFactory: (fastifyHandler) => {
      const server = createServer((req, res) => {
        if (endpoint?.handle(req, res) !== true) fastifyHandler(req, res);
      });
      // Fastify applies its server settings only to servers it creates itself.
      // Idle keep-alive longer than load balancers' (60 s), so they never reuse a closed socket.
      server.keepAliveTimeout = SERVER_KEEP_ALIVE_MS;
      // SSE streams may stay open for hours.
      server.requestTimeout = 0;
      return server;
    },
  });

  // With a secret, every key comes from it, so that replicas and restarts agree on them; without
  // one they are random per process.
  const secrets = [config.sessionSecret, config.sessionSecretPrevious].filter((s) => s !== undefined);
  const keys = await Promise.all(secrets.map(deriveKeys));
  const bindings = keys.map((k) => createCredentialBinding(config.identityHeader, k.binding));
  const binding = bindings[0] ?? createCredentialBinding(config.identityHeader);
  const fingerprint = createFingerprint(keys[0]?.fingerprint);
  const sealer: Sealer | undefined =
    keys.length === 0
      ? undefined
      : createSealer({
          keys: keys.map((k, i) => ({ sealing: k.sealing, binding: bindings[i]! })),
          maxAgeMs: config.sessionMaxAgeMs,
        });
  // --public-url: auth challenges name the proxy's own metadata URL (http/resource-metadata.ts).
  const rewriteChallenge = config.publicUrl === undefined ? undefined : challengeRewriter(config.publicUrl);
  // NO_TRACING unless an OTLP exporter is configured (observability/tracing.ts).
  const tracing: Tracing = createTracing({
    settings: config.telemetry,
    fingerprint,
    upstreamUrl: config.upstreamUrl,
    serviceVersion: packageVersion(),
  });
  // On, every upstream exchange gets a client span and carries its context (the same client otherwise).
  const upstream = tracing.client(
    createUpstreamClient({
      url: config.upstreamUrl,
      headersTimeoutMs: config.upstreamTimeoutMs,
      connectTimeoutMs: config.connectTimeoutMs,
      connectRetryMs: config.upstreamRetryMs,
      resetRetryWindowMs: config.resetRetryWindowMs,
      ...(rewriteChallenge === undefined ? {} : { rewriteHeaders: rewriteChallenge }),
    }),
  );
  // The store is created below; the gauge reads its size when scraped.
  const metrics = createMetrics(config.metricsEnabled, () => store.size, {
    pooledSessions: () => pool.size,
    listenStreams: () => listens.size,
    notificationFeeds: () => feeds.size,
    parkedExchanges: () => parked.size,
  });
  const eraProbe = createEraProbe(upstream, config.upstreamEra, logger, config.upstreamTimeoutMs);
  const links: LinkDeps = {
    upstream,
    log: logger,
    metrics,
    fingerprint,
    loss: config.loss,
    timeoutMs: config.upstreamTimeoutMs,
    now: () => performance.now(),
    // A lost session means the upstream restarted or forgot: it may speak another era now.
    onLoss: () => eraProbe.forget(),
    tracing,
  };
  const pool = createLinkPool(links, { max: config.poolMaxSessions, idleTtlMs: config.poolIdleTtlMs });
  const store = createSessionStore({
    maxSessions: config.maxSessions,
    idleTtlMs: config.sessionIdleTtlMs,
    onEnd: (session, reason) => {
      metrics.sessionEnded(reason);
      if (reason === 'delete') return; // the DELETE route ends the link itself, with the client's credentials
      logger.info({ sid: session.logId, reason }, 'session ended');
      // Evicted or expired: free the upstream's side too (without the client's credentials,
      // which the proxy does not keep; an upstream that insists will expire it on its own).
      void endBackend(session.backend);
    },
  });
  const openStreams: OpenStreams = new Map();
  const feeds = createNotificationFeeds({ log: logger, now: () => performance.now(), retryDelayMs: defaultRetryDelayMs });
  const listens = createListens({
    feeds,
    keepAliveMs: config.listenKeepAliveMs,
    // Well inside the pool's idle TTL, so a link with listeners never expires as idle.
    touchEveryMs: Math.floor(config.poolIdleTtlMs / 2),
    maxStreams: config.listenMaxStreams,
    log: logger,
    metrics,
    closing: () => closing,
  });
  // MRTR: with a secret every replica opens the requestStates another sealed; without one only
  // this process can (README "MRTR").
  const parked = createParkedExchanges<Exchange>({ max: config.mrtrMaxParked, timeoutMs: config.mrtrParkTimeoutMs });
  const mrtr = createMrtr({
    codec: createRequestStateCodec({ key: keys[0]?.requestState ?? randomStateKey(), ttlMs: config.mrtrStateTtlMs }),
    parked,
    binding,
    log: logger,
    metrics,
  });

  // Closing: Node's server.close() drops the connections idle at that moment only; a keep-alive
  // connection whose answer finishes later would hold the process for its whole idle timeout.
  let closing = false;
  const afterAnswer = () => {
    if (closing) setImmediate(() => app.server.closeIdleConnections());
  };
  const tracking = { log: logger, metrics, afterAnswer };
  const isClosing = () => closing;
  const forgetEra = () => eraProbe.forget();
  const sessions = createClientSessions({
    store,
    terminated: createTerminatedIds(config.maxSessions),
    sealer,
    binding,
    fingerprint,
    sessionMaxAgeMs: config.sessionMaxAgeMs,
    links,
    eraProbe,
    metrics,
    log: logger,
    tracing,
  });
  const flows = {
    relayed: createRelayedFlow({ links, sessions, fingerprint, openStreams, metrics, log: logger, closing: isClosing }),
    pooled: createPooledFlow({ pool, binding, listens, mrtr, forgetEra, tracing, metrics, log: logger }),
    hosted: createHostedFlow({
      upstream,
      sessions,
      forgetEra,
      inputTimeoutMs: config.hostedInputTimeoutMs,
      listenKeepAliveMs: config.listenKeepAliveMs,
      openStreams,
      metrics,
      log: logger,
      closing: isClosing,
    }),
    passThrough: { upstream, forgetEra, metrics },
  };
  endpoint = createMcpEndpoint({ ...tracking, config, flows, sessions, eraProbe, tracing, closing: isClosing });

  installRequestHooks(app, gatePolicyOf(config), tracking);
  await app.register(healthRoutes, { config, upstream, metrics });
  if (config.publicUrl !== undefined) {
    await app.register(resourceMetadataRoutes, { publicUrl: config.publicUrl, upstreamUrl: config.upstreamUrl, upstream, timeoutMs: config.upstreamTimeoutMs });
  }

  // Everything that is not the MCP endpoint (OAuth discovery, health, ...) passes through as is,
  // except session ids: no path may reach the upstream's MCP endpoint around the proxy. Any
  // spelling of the proxy's own MCP path never gets here (the gate takes it); the upstream's is
  // recognised by the gate's normaliser.
  const mcpPaths = new Set([normalizePath(config.upstreamUrl.pathname), normalizePath(config.mcpPath)]);
  await app.register(httpProxy, {
    upstream: config.upstreamUrl.origin,
    prefix: '/',
    http2: false,
    preHandler: (request, _reply, done) => {
      const path = normalizePath(pathOf(request.url));
      done(mcpPaths.has(path) ? new ProxyError('NOT_MCP_ENDPOINT') : undefined);
    },
    replyOptions: {
      rewriteRequestHeaders: (_request, headers) => {
        delete headers[SESSION_HEADER];
        return headers;
      },
      rewriteHeaders: (headers) => {
        delete headers[SESSION_HEADER];
        rewriteChallenge?.(headers);
        return headers;
      },
    },
  });

  // GET event streams never end by themselves: end them when closing starts (clients reconnect),
  // so in-flight requests can finish and the server can close.
  app.addHook('preClose', async () => {
    closing = true;
    endStreams(openStreams);
    // subscriptions/listen streams end gracefully: the final result tells each client so.
    listens.closeAll();
    // Parked MRTR exchanges: their upstream requests get an error answer and a cancellation.
    parked.clear();
    // Pooled upstream sessions are the proxy's own: end them upstream (their DELETEs finish
    // before the upstream client closes).
    pool.clear();
  });
  app.addHook('onClose', async () => {
    await upstream.close();
    // Spans and metrics still pending are exported before the process exits.
    await tracing.shutdown();
  });
  return app;
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
