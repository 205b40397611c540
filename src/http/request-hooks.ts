/**
 * What every request to a Fastify route goes through (everything but the MCP endpoint's own
 * path, which runs on the raw server, see endpoint.ts): tracking, the gate's Host and Origin checks
 * (gate.ts), and the error handler that answers JSON-RPC errors.
 */
import type { FastifyInstance } from 'fastify';
import { ProxyError } from '../errors.js';
import type { Tracing } from '../observability/tracing.js';
import { admission, type GatePolicy } from './gate.js';
import { answerError } from './reply.js';
import { track, type Tracked, type TrackingDeps } from './tracking.js';

declare module 'fastify' {
  interface FastifyRequest {
    tracked: Tracked | null;
  }
  interface FastifyContextConfig {
    /** Probe and metrics routes: their access lines go to debug, not info. */
    quiet?: boolean;
  }
}

/**
 * `tracing`: a server span for every request but the probes' and the metrics' (the OAuth
 * pass-through routes); its context goes upstream in the request's `traceparent`.
 */
export function installRequestHooks(app: FastifyInstance, policy: GatePolicy, deps: TrackingDeps, tracing: Tracing): void {
  // Probes are exempt from the Host check: Kubernetes sends the pod IP as Host, and they reveal
  // nothing a rebound page could use.
  const probePolicy: GatePolicy = { ...policy, allowedHosts: undefined };
  app.decorateRequest('tracked', null);
  app.setErrorHandler((error, request, reply) => {
    reply.hijack();
    answerError(request.raw, reply.raw, request.tracked!, error, deps.log);
  });
  app.addHook('onRequest', (request, reply, done) => {
    const quiet = request.routeOptions.config.quiet === true;
    request.tracked = track(request.raw, reply.raw, deps, quiet);
    if (tracing.on && !quiet) tracing.serve(request.raw, reply.raw, request.tracked, undefined, () => undefined);
    // Pass-through paths reach the upstream with the proxy's Host, so the upstream cannot check it.
    const refused = admission(quiet ? probePolicy : policy, request.headers.host, request.headers.origin);
    done(refused === undefined ? undefined : new ProxyError(refused));
  });
}
