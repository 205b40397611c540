/**
 * What every request to a Fastify route goes through (everything but the MCP endpoint's own
 * methods, which run on the raw server, see routes.ts): tracking, the Origin allow-list, and the
 * error handler that answers JSON-RPC errors.
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { ProxyError } from '../errors.js';
import { answerError } from './reply.js';
import { originAllowed, track, type Tracked, type TrackingDeps } from './tracking.js';

declare module 'fastify' {
  interface FastifyRequest {
    tracked: Tracked | null;
  }
  interface FastifyContextConfig {
    /** Probe and metrics routes: their access lines go to debug, not info. */
    quiet?: boolean;
  }
}

export function installRequestHooks(app: FastifyInstance, config: Config, deps: TrackingDeps): void {
  const { allowedOrigins } = config;
  app.decorateRequest('tracked', null);
  app.setErrorHandler((error, request, reply) => {
    reply.hijack();
    answerError(request.raw, reply.raw, request.tracked!, error, deps.log);
  });
  app.addHook('onRequest', (request, reply, done) => {
    request.tracked = track(request.raw, reply.raw, deps, request.routeOptions.config.quiet === true);
    done(originAllowed(request.headers.origin, allowedOrigins) ? undefined : new ProxyError('ORIGIN_NOT_ALLOWED'));
  });
}
