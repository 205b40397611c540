/**
 * What every request goes through, on every route (MCP endpoint and pass-through alike): the
 * client-gone signal, the Origin allow-list, the access line, and the error handler.
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { ProxyError, type ProxyErrorReason } from '../errors.js';
import type { LossSignal } from '../mcp/loss.js';
import type { Metrics, RequestOutcome } from '../observability/metrics.js';
import { replyWithError } from './reply.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Log-safe fingerprint of the client session this request belongs to, for the access log. */
    sessionLogId: string | null;
    /** Why this request needed a replay, if it did. */
    replayedFor: LossSignal | null;
    /** Aborts when the client goes away before its answer is complete; aborts the upstream call. */
    clientGone: AbortSignal | null;
    /** The proxy error this request was answered with, if any (for the access line and metrics). */
    failure: ProxyErrorReason | null;
  }
  interface FastifyContextConfig {
    /** Probe and metrics routes: their access lines go to debug, not info. */
    quiet?: boolean;
  }
}

const OUTCOMES: Record<number, RequestOutcome> = { 2: '2xx', 3: '3xx', 4: '4xx', 5: '5xx' };

export function installRequestHooks(
  app: FastifyInstance,
  config: Config,
  metrics: Metrics,
  afterAnswer: () => void,
): void {
  const { allowedOrigins } = config;
  app.decorateRequest('sessionLogId', null);
  app.decorateRequest('replayedFor', null);
  app.decorateRequest('clientGone', null);
  app.decorateRequest('failure', null);
  app.setErrorHandler(replyWithError);

  // One listener per request does two jobs: abort the upstream call if the client leaves early,
  // and write the access line once the answer is over (relayed answers bypass Fastify's hooks).
  app.addHook('onRequest', (request, reply, done) => {
    const controller = new AbortController();
    request.clientGone = controller.signal;
    const res = reply.raw;
    res.once('close', () => {
      const complete = res.writableFinished;
      if (!complete) controller.abort();
      const status = res.statusCode;
      const ms = reply.elapsedTime;
      const { failure } = request;
      metrics.request(request.method, complete ? OUTCOMES[Math.floor(status / 100)] ?? '5xx' : 'aborted', ms / 1000);
      if (failure !== null && status >= 500) metrics.upstreamError(failure.toLowerCase());
      const line = {
        method: request.method,
        // The path without its query string, which may carry a token.
        path: request.url.split('?', 1)[0],
        status,
        ms: Math.round(ms * 10) / 10,
        sid: request.sessionLogId,
        replayed: request.replayedFor,
        error: failure,
        complete,
      };
      if (request.routeOptions.config.quiet === true) request.log.debug(line, 'request');
      else request.log.info(line, 'request');
      afterAnswer();
    });
    // Browsers send Origin; a page from a site not on the list must not drive a session (DNS
    // rebinding, cross-site requests). Clients that send no Origin are not browsers.
    const origin = request.headers.origin;
    if (allowedOrigins !== undefined && origin !== undefined && !allowedOrigins.has(origin)) {
      done(new ProxyError('ORIGIN_NOT_ALLOWED'));
      return;
    }
    done();
  });
}
