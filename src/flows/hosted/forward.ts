/**
 * A hosted session's request sent on upstream as a stateless 2026-07-28 request (the session's
 * client, version and log level in its envelope, Mcp-Method/Mcp-Name and any Mcp-Param-* headers),
 * its answer translated back to 2025 form event by event. Requests that may be asked for input go
 * through input.ts instead.
 */
import type { Logger } from 'pino';
import type { JsonRpcId } from '../../errors.js';
import { relayAsItCame, type Call } from '../../http/call.js';
import { modernEventStream } from '../../http/event-stream.js';
import { toUpstreamHeaders } from '../../http/headers.js';
import { errorEvents } from '../../http/reply.js';
import { INPUT_REQUIRED_METHODS } from '../../mcp/input-required.js';
import { routingHeadersFor, toLegacyMessage, toModernRequest } from '../../mcp/modern-upstream.js';
import { acceptsEventStream, isAuthChallenge, isEventStream, MAX_MESSAGE_BYTES } from '../../mcp/protocol.js';
import { answerBodyOf, type MessageMap } from '../../mcp/translate.js';
import type { Metrics } from '../../observability/metrics.js';
import { discard, readBody, type UpstreamClient } from '../../upstream/client.js';
import type { HostedSession } from './hosted-session.js';
import type { InFlightRequest } from './in-flight.js';
import { hostedExchange } from './input.js';

export interface ForwardDeps {
  readonly upstream: UpstreamClient;
  readonly inputTimeoutMs: number;
  readonly metrics: Metrics;
  readonly log: Logger;
}

export interface HostedRequest {
  readonly id: JsonRpcId;
  readonly method: string;
  readonly params: Record<string, unknown> | undefined;
}

/** Send `message` on upstream; `request.signal` aborts it (the client left or cancelled it). */
export async function forwardHosted(
  deps: ForwardDeps,
  call: Call,
  hosted: HostedSession,
  request: InFlightRequest,
  message: HostedRequest,
) {
  const { signal } = request;
  const { id, method, params } = message;
  const headers = toUpstreamHeaders(call.req.headers, undefined);
  Object.assign(headers, routingHeadersFor(method, params));
  // Mcp-Param-* headers for tools that declare them (learnt from tools/list answers on this session).
  if (method === 'tools/call') Object.assign(headers, hosted.paramHeadersFor(params?.name, params?.arguments));
  if (INPUT_REQUIRED_METHODS.has(method)) {
    const hostedCall = { res: call.res, gone: signal, acceptsEventStream: acceptsEventStream(call.req.headers.accept) };
    const inputDeps = { upstream: deps.upstream, timeoutMs: deps.inputTimeoutMs, metrics: deps.metrics, log: deps.log };
    return hostedExchange(inputDeps, hostedCall, hosted, { id, method, params, headers });
  }
  const body = toModernRequest(id, method, params, hosted.client, hosted.logLevel);
  const response = await deps.upstream.request({ method: 'POST', headers, body, signal, rpc: message });
  // Refused unprocessed (expired token, missing scope): as it came, whatever its body says.
  if (isAuthChallenge(response.statusCode)) return relayAsItCame(call, { response, payload: response.body });
  const map: MessageMap =
    method === 'tools/list'
      ? (answer) => {
          hosted.learnTools((answer as { result?: unknown }).result);
          return toLegacyMessage(answer, method);
        }
      : (answer) => toLegacyMessage(answer, method);
  if (isEventStream(response.headers['content-type'])) {
    call.res.writeHead(response.statusCode, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    deps.metrics.streamOpened();
    call.res.once('close', () => deps.metrics.streamClosed());
    const events = modernEventStream(map, () => undefined);
    // A broken upstream, or an event the translation cannot take: an error event for the request.
    // Cancelled (the upstream body destroyed by the abort): the stream just ends, no response.
    const cut = () => {
      if (call.res.writableEnded) return;
      if (!request.cancelled) return void call.res.end(errorEvents('UPSTREAM_CUT', [id]));
      events.unpipe(call.res);
      endCancelled(call);
    };
    response.body.once('error', cut);
    events.once('error', () => {
      discard(response.body);
      cut();
    });
    response.body.pipe(events).pipe(call.res);
    return;
  }
  const answer = await readBody(response.body, MAX_MESSAGE_BYTES, 'UPSTREAM_UNAVAILABLE', signal);
  const contentType = response.headers['content-type'];
  const text = answerBodyOf(answer.toString(), typeof contentType === 'string' ? contentType : undefined, map, () => undefined);
  // A JSON-RPC answer to the request goes back as a 2025 server sends one: 200, whatever status a
  // 2026 server gives its errors; anything else (auth, gateway errors) as it came.
  if (text === undefined) return relayAsItCame(call, { response, payload: answer });
  call.res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
  call.res.end(text);
}

/**
 * The answer to a request the client cancelled ends without a response (2025-11-25: the receiver
 * SHOULD NOT send one; the v1 SDK client has already given up on it). Not begun yet: an SSE answer
 * with no event, which the SDK clients read to its end without complaint (no event id, so no
 * reconnection); a client that cannot take SSE gets the bodyless 202.
 */
export function endCancelled(call: Call) {
  const { res } = call;
  if (res.writableEnded || res.destroyed) return;
  if (res.headersSent) return void res.end();
  if (!acceptsEventStream(call.req.headers.accept)) return void res.writeHead(202).end();
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.end();
}
