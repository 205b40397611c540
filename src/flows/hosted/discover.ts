/**
 * server/discover asked of a 2026-07-28-only upstream for a session the proxy holds, with the
 * client's credentials, capabilities and clientInfo: what its initialize is answered from, and what
 * proves new credentials when the session re-authenticates (session/reauthenticate.ts).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { JsonRpcId } from '../../errors.js';
import { messagesOf } from '../../mcp/initialize-result.js';
import { routingHeadersFor, toModernRequest, type LegacyClient } from '../../mcp/modern-upstream.js';
import { MAX_MESSAGE_BYTES, POST_ACCEPT } from '../../mcp/protocol.js';
import { readBody, type CancelSignal, type UpstreamClient, type UpstreamResponse } from '../../upstream/client.js';
import { toUpstreamHeaders } from '../../http/headers.js';

export type Discovered =
  | { readonly kind: 'result'; readonly result: Record<string, unknown> }
  /** Not a 2026-07-28 answer (an auth challenge, an error, a legacy server): the upstream's own, read whole. */
  | { readonly kind: 'refused'; readonly response: UpstreamResponse; readonly body: Buffer };

export async function discoverForHosted(
  upstream: UpstreamClient,
  clientHeaders: IncomingHttpHeaders,
  client: LegacyClient,
  requestId: JsonRpcId,
  signal: CancelSignal,
): Promise<Discovered> {
  const headers = toUpstreamHeaders(clientHeaders, undefined);
  headers['content-type'] = 'application/json';
  headers.accept = POST_ACCEPT;
  Object.assign(headers, routingHeadersFor('server/discover', undefined));
  const body = toModernRequest(requestId, 'server/discover', {}, client, undefined);
  const response = await upstream.request({ method: 'POST', headers, body, signal });
  const answer = await readBody(response.body, MAX_MESSAGE_BYTES, 'UPSTREAM_UNAVAILABLE', signal);
  const contentType = response.headers['content-type'];
  const result =
    response.statusCode === 200
      ? resultFor(messagesOf(answer.toString(), typeof contentType === 'string' ? contentType : undefined), requestId)
      : undefined;
  return result === undefined ? { kind: 'refused', response, body: answer } : { kind: 'result', result };
}

/** The result of the response to `id` among an answer's messages. */
function resultFor(messages: unknown[], id: JsonRpcId): Record<string, unknown> | undefined {
  for (const message of messages) {
    const { id: answered, result } = (message ?? {}) as { id?: unknown; result?: unknown };
    if (answered === id && typeof result === 'object' && result !== null && !Array.isArray(result))
      return result as Record<string, unknown>;
  }
  return undefined;
}
