/**
 * buildApp(config): the Fastify instance with every route wired, not yet listening (tests and
 * main.ts both use it). This file only wires: the dispatcher is http/endpoint.ts, the flows are in flows/.
 */
import httpProxy from '@fastify/http-proxy';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { DestinationStream, Logger } from 'pino';
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
import { createCredentialBinding, type CredentialBinding } from './session/binding.js';
import { createFingerprint, type Fingerprint } from './session/ids.js';
import { createSealer, deriveKeys, type Sealer } from './session/sealing.js';
import { createRequestStateCodec, randomStateKey } from './session/request-state.js';
import { createSessionStore, createTerminatedIds, endBackend } from './session/store.js';
import { createUpstreamClient, type UpstreamClient } from './upstream/client.js';
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
  // anything (endpoint.ts says why); everything else is Fastify's. The endpoint is made below,
  // before the server listens.
  const mcp: { endpoint?: McpEndpoint } = {};
  const app = createFastify(config, logger, (req, res) => mcp.endpoint?.handle(req, res) === true);
  const keys = await sessionKeys(config);
  // NO_TRACING unless an OTLP exporter is configured (observability/tracing.ts).
  const tracing = createTracing({
    settings: config.telemetry,
    fingerprint: keys.fingerprint,
    upstreamUrl: config.upstreamUrl,
    serviceVersion: packageVersion(),
  });
  // --public-url: auth challenges name the proxy's own metadata URL (http/resource-metadata.ts).
  const rewriteChallenge = config.publicUrl === undefined ? undefined : challengeRewriter(config.publicUrl);
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
  // Closing: Node's server.close() drops the connections idle at that moment only; a keep-alive
  // connection whose answer finishes later would hold the process for its whole idle timeout.
  const shutdown = { closing: false };
  const afterAnswer = () => {
    if (shutdown.closing) setImmediate(() => app.server.closeIdleConnections());
  };
  const engine = createEngine({ config, logger, keys, tracing, upstream, closing: () => shutdown.closing, afterAnswer });
  mcp.endpoint = engine.endpoint;

  installRequestHooks(app, gatePolicyOf(config), engine.tracking, tracing);
  await app.register(healthRoutes, { config, upstream, metrics: engine.metrics });
  if (config.publicUrl !== undefined) {
    await app.register(resourceMetadataRoutes, {
      publicUrl: config.publicUrl,
      upstreamUrl: config.upstreamUrl,
      upstream,
      timeoutMs: config.upstreamTimeoutMs,
    });
  }
  await registerPassThrough(app, config, rewriteChallenge);

  app.addHook('preClose', async () => {
    shutdown.closing = true;
    engine.close();
  });
  app.addHook('onClose', async () => {
    await upstream.close();
    // Spans and metrics still pending are exported before the process exits.
    await tracing.shutdown();
  });
  return app;
}

/** The Fastify instance on a node:http server that offers every request to `mcp` first. */
function createFastify(config: Config, logger: Logger, mcp: (req: IncomingMessage, res: ServerResponse) => boolean): FastifyInstance {
  return Fastify({
    // typescript-eslint finds this assertion unnecessary; tsc needs it (pino's Logger is not Fastify's base logger type).
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: logger as FastifyBaseLogger,
    // The access line is written by tracking.ts (with the session fingerprint).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    return503OnClosing: true,
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true },
    clientErrorHandler: (error, socket) => answerMalformedRequest(error, socket, logger),
    serverFactory: (fastifyHandler) => {
      const server = createServer((req, res) => {
        if (!mcp(req, res)) fastifyHandler(req, res);
      });
      // Fastify applies its server settings only to servers it creates itself.
      // Idle keep-alive longer than load balancers' (60 s), so they never reuse a closed socket.
      server.keepAliveTimeout = SERVER_KEEP_ALIVE_MS;
      // SSE streams may stay open for hours.
      server.requestTimeout = 0;
      return server;
    },
  });
}

interface SessionKeys {
  readonly binding: CredentialBinding;
  readonly fingerprint: Fingerprint;
  readonly sealer: Sealer | undefined;
  /** The MRTR requestState key: with a secret every replica opens the states another sealed. */
  readonly requestState: Buffer | undefined;
}

/**
 * With a secret, every key comes from it, so that replicas and restarts agree on them; without
 * one they are random per process.
 */
async function sessionKeys(config: Config): Promise<SessionKeys> {
  const secrets = [config.sessionSecret, config.sessionSecretPrevious].filter((s) => s !== undefined);
  const keys = await Promise.all(secrets.map(deriveKeys));
  const bindings = keys.map((k) => createCredentialBinding(config.identityHeader, k.binding));
  const sealer =
    keys.length === 0
      ? undefined
      : createSealer({ keys: keys.map((k, i) => ({ sealing: k.sealing, binding: bindings[i]! })), maxAgeMs: config.sessionMaxAgeMs });
  return {
    binding: bindings[0] ?? createCredentialBinding(config.identityHeader),
    fingerprint: createFingerprint(keys[0]?.fingerprint),
    sealer,
    requestState: keys[0]?.requestState,
  };
}

interface EngineParts {
  readonly config: Config;
  readonly logger: Logger;
  readonly keys: SessionKeys;
  readonly tracing: Tracing;
  readonly upstream: UpstreamClient;
  readonly closing: () => boolean;
  readonly afterAnswer: () => void;
}

/** Everything behind the MCP endpoint: the upstream side, client sessions, the flows. */
function createEngine(parts: EngineParts) {
  const { config, logger, keys, tracing, upstream, closing } = parts;
  const { binding, fingerprint } = keys;
  // The store, pool and streams are created below; the gauges read their sizes when scraped.
  const metrics = createMetrics(config.metricsEnabled, () => store.size, {
    pooledSessions: () => pool.size,
    listenStreams: () => listens.size,
    notificationFeeds: () => feeds.size,
    parkedExchanges: () => parked.size,
  });
  const eraProbe = createEraProbe(upstream, config.upstreamEra, logger, config.upstreamTimeoutMs);
  const forgetEra = () => eraProbe.forget();
  const links: LinkDeps = {
    upstream,
    log: logger,
    metrics,
    fingerprint,
    loss: config.loss,
    timeoutMs: config.upstreamTimeoutMs,
    now: () => performance.now(),
    // A lost session means the upstream restarted or forgot: it may speak another era now.
    onLoss: forgetEra,
    tracing,
  };
  const pool = createLinkPool(links, { max: config.poolMaxSessions, idleTtlMs: config.poolIdleTtlMs });
  const store = createSessionStore({
    maxSessions: config.maxSessions,
    idleTtlMs: config.sessionIdleTtlMs,
    onEnd: (session, reason) => {
      metrics.sessionEnded(reason);
      if (reason === 'delete') return; // the DELETE route ends the backend itself, with the client's credentials
      logger.info({ sid: session.logId, reason }, 'session ended');
      // Evicted or expired: free the upstream's side too (without the client's credentials,
      // which the proxy does not keep; an upstream that insists will expire it on its own).
      void endBackend(session.backend);
    },
  });
  const openStreams: OpenStreams = new Map();
  const feeds = createNotificationFeeds({ log: logger, now: () => performance.now(), retryDelayMs: defaultRetryDelayMs, metrics });
  const listens = createListens({
    feeds,
    keepAliveMs: config.listenKeepAliveMs,
    // Well inside the pool's idle TTL, so a link with listeners never expires as idle.
    touchEveryMs: Math.floor(config.poolIdleTtlMs / 2),
    maxStreams: config.listenMaxStreams,
    log: logger,
    metrics,
    closing,
  });
  const parked = createParkedExchanges<Exchange>({ max: config.mrtrMaxParked, timeoutMs: config.mrtrParkTimeoutMs });
  const codec = createRequestStateCodec({ key: keys.requestState ?? randomStateKey(), ttlMs: config.mrtrStateTtlMs });
  const mrtr = createMrtr({ codec, parked, binding, log: logger, metrics });
  const tracking = { log: logger, metrics, afterAnswer: parts.afterAnswer };
  const sessions = createClientSessions({
    binding,
    fingerprint,
    sealer: keys.sealer,
    store,
    terminated: createTerminatedIds(config.maxSessions),
    sessionMaxAgeMs: config.sessionMaxAgeMs,
    links,
    eraProbe,
    metrics,
    log: logger,
    tracing,
  });
  const flows = {
    relayed: createRelayedFlow({ links, sessions, fingerprint, openStreams, metrics, log: logger, closing }),
    pooled: createPooledFlow({ pool, binding, listens, feeds, mrtr, forgetEra, tracing, metrics, log: logger }),
    hosted: createHostedFlow({
      upstream,
      sessions,
      forgetEra,
      inputTimeoutMs: config.hostedInputTimeoutMs,
      listenKeepAliveMs: config.listenKeepAliveMs,
      openStreams,
      metrics,
      log: logger,
      closing,
    }),
    passThrough: { upstream, forgetEra, metrics },
  };
  return {
    endpoint: createMcpEndpoint({ ...tracking, config, flows, sessions, eraProbe, tracing, closing }),
    tracking,
    metrics,
    /** Shutdown began: end what never ends by itself, so in-flight requests can finish and the server close. */
    close() {
      // GET event streams: ended (clients reconnect).
      endStreams(openStreams);
      // subscriptions/listen streams end gracefully: the final result tells each client so.
      listens.closeAll();
      // Parked MRTR exchanges: their upstream requests get an error answer and a cancellation.
      parked.clear();
      // Pooled upstream sessions are the proxy's own: end them upstream (their DELETEs finish
      // before the upstream client closes).
      pool.clear();
    },
  };
}

/**
 * Everything that is not the MCP endpoint (OAuth discovery, ...) passes through as is, except
 * session ids: no path may reach the upstream's MCP endpoint around the proxy. Any spelling of the
 * proxy's own MCP path never gets here (the gate takes it); the upstream's is recognised by the
 * gate's normaliser.
 */
async function registerPassThrough(
  app: FastifyInstance,
  config: Config,
  rewriteChallenge: ((headers: IncomingHttpHeaders) => void) | undefined,
) {
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
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
