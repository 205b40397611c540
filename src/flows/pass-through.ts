/**
 * The pass-through flow: a 2026-07-28 request for a 2026-07-28 upstream goes as it came, its
 * answer as it goes; and a browser's CORS preflight, which the upstream decides.
 */
import { relayAsItCame, type Call } from '../http/call.js';
import { toClientHeaders, toUpstreamHeaders } from '../http/headers.js';
import { relay } from '../http/reply.js';
import type { Metrics } from '../observability/metrics.js';
import type { UpstreamClient, UpstreamHeaders } from '../upstream/client.js';

export interface PassThroughDeps {
  readonly upstream: UpstreamClient;
  /** The upstream may speak another era now (it went away, or refused a valid 2026 request). */
  readonly forgetEra: () => void;
  readonly metrics: Metrics;
}

/**
 * `headers`: the client's, as the upstream must see them (the era probe built them already);
 * `message`: the body as the dispatcher parsed it.
 */
export async function passThrough(
  deps: PassThroughDeps,
  call: Call,
  headers: UpstreamHeaders,
  raw: Buffer,
  message: unknown,
): Promise<void> {
  let response;
  try {
    response = await deps.upstream.request({ method: 'POST', headers, body: raw, signal: call.tracked.gone, rpc: message });
  } catch (error) {
    // No upstream: when it comes back it may be another version; find out again.
    deps.forgetEra();
    throw error;
  }
  // A modern upstream refuses no valid modern request with 400, unless it is modern no more.
  if (response.statusCode === 400) deps.forgetEra();
  relay(call.res, response.statusCode, toClientHeaders(response.headers, undefined), response.body, { metrics: deps.metrics });
}

/** A browser's CORS preflight before a cross-origin POST: the upstream decides CORS. */
export async function preflight(upstream: UpstreamClient, call: Call): Promise<void> {
  const response = await upstream.request({
    method: 'OPTIONS',
    headers: toUpstreamHeaders(call.req.headers, undefined),
    signal: call.tracked.gone,
  });
  relayAsItCame(call, { response, payload: response.body });
}
