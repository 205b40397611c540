/**
 * A hosted session's GET stream (the legacy client's event stream), fed by an upstream
 * `subscriptions/listen` (flows/hosted/listen.ts). Its headers go out once the upstream has
 * acknowledged the first listen; a refused first listen is answered as the upstream answered
 * (an upstream without subscriptions/listen: 405, which the SDK clients take as "no stream"). One
 * stream per session: a new GET replaces the one before (a client reconnecting over a half-dead
 * connection must not be refused).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { ProxyError } from '../../errors.js';
import { SESSION_HEADER } from '../../mcp/protocol.js';
import type { Metrics } from '../../observability/metrics.js';
import type { UpstreamClient } from '../../upstream/client.js';
import { HostedListen } from './listen.js';
import type { HostedSession } from './hosted-session.js';
import { toClientHeaders, toUpstreamHeaders } from '../../http/headers.js';
import { relay, sseEvent, SSE_KEEPALIVE, type OpenStreams } from '../../http/reply.js';

export interface HostedStreamDeps {
  readonly upstream: UpstreamClient;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Shutdown ends every open stream. */
  readonly openStreams: OpenStreams;
  readonly keepAliveMs: number;
}

/** Serve the client's GET stream until it closes; resolves once the answer has begun. */
export function serveHostedStream(
  deps: HostedStreamDeps,
  req: IncomingMessage,
  res: ServerResponse,
  session: HostedSession,
  sessionId: string,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let started = false;
    let keepAlive: NodeJS.Timeout | undefined;
    // What shutdown destroys (endStreams) to end this stream.
    const handle = new Readable({ read() {} });
    const stop = () => {
      clearInterval(keepAlive);
      listen.end();
      deps.openStreams.delete(res);
      session.streamClosed(stop);
      if (!res.writableEnded) res.end();
    };
    const listen = new HostedListen(
      {
        upstream: deps.upstream,
        log: deps.log,
        label: session.label,
        client: session.client,
        headers: toUpstreamHeaders(req.headers, undefined),
        write: (message) => void res.write(sseEvent(JSON.stringify(message))),
        opened: () => {
          started = true;
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', [SESSION_HEADER]: sessionId });
          res.flushHeaders();
          deps.metrics.streamOpened();
          res.once('close', () => deps.metrics.streamClosed());
          keepAlive = setInterval(() => res.write(SSE_KEEPALIVE), deps.keepAliveMs);
          keepAlive.unref();
          resolve();
        },
        refused: (answer) => {
          deps.openStreams.delete(res);
          session.streamClosed(stop);
          if (answer === undefined) return reject(new ProxyError('UPSTREAM_UNAVAILABLE'));
          // No subscriptions/listen upstream (-32601, 404): no event stream, as before.
          if (answer.response.statusCode === 404) return reject(new ProxyError('HELD_NO_EVENT_STREAM'));
          relay(res, answer.response.statusCode, toClientHeaders(answer.response.headers, undefined), answer.body);
          resolve();
        },
      },
      session.subscriptions,
    );
    session.streamOpened(stop, listen);
    deps.openStreams.set(res, handle);
    handle.once('close', stop);
    res.once('close', () => {
      if (!started) listen.end();
      stop();
    });
  });
}
