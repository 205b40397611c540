/**
 * What every request goes through, on every route (MCP endpoint and pass-through alike): the
 * client-gone signal, the Origin allow-list, the access line, and the error handler.
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { ProxyError } from '../errors.js';
import type { LossSignal } from '../mcp/loss.js';
import { replyWithError } from './reply.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Log-safe fingerprint of the client session this request belongs to, for the access log. */
    sessionLogId: string | null;
    /** Why this request needed a replay, if it did. */
    replayedFor: LossSignal | null;
    /** Aborts when the client goes away before its answer is complete; aborts the upstream call. */
    clientGone: AbortSignal | null;
  }
}

export function installRequestHooks(app: FastifyInstance, config: Config): void {
  const { allowedOrigins } = config;
  app.decorateRequest('sessionLogId', null);
  app.decorateRequest('replayedFor', null);
  app.decorateRequest('clientGone', null);
  app.setErrorHandler(replyWithError);

  // One listener per request does two jobs: abort the upstream call if the client leaves early,
  // and write the access line once the answer is over (relayed answers bypass Fastify's hooks).
  app.addHook('onRequest', (request, reply, done) => {
    const controller = new AbortController();
    request.clientGone = controller.signal;
    const res = reply.raw;
    res.once('close', () => {
      if (!res.writableFinished) controller.abort();
      request.log.info(
        {
          method: request.method,
          // The path without its query string, which may carry a token.
          path: request.url.split('?', 1)[0],
          status: res.statusCode,
          ms: Math.round(reply.elapsedTime * 10) / 10,
          sid: request.sessionLogId,
          replayed: request.replayedFor,
          complete: res.writableFinished,
        },
        'request',
      );
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
