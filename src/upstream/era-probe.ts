/**
 * Which era the upstream speaks, found out once: a `server/discover` probe as the TypeScript SDK v2
 * client sends it. An upstream that lists 2026-07-28 gets modern requests passed through untouched;
 * any other answer means a legacy server, onto whose pooled sessions modern requests are translated.
 * The answer is cached until `forget()` (the upstream restarted: it may have been upgraded);
 * failures that say nothing about the era (auth, 5xx, no connection) are not cached.
 */
import type { Logger } from 'pino';
import type { UpstreamEra } from '../config.js';
import { ENVELOPE, MODERN_PROTOCOL_VERSION as MODERN } from '../mcp/era.js';
import { messagesOf } from '../mcp/initialize-result.js';
import { LAST_EVENT_ID_HEADER, POST_ACCEPT, PROTOCOL_VERSION_HEADER, SESSION_HEADER } from '../mcp/protocol.js';
import { readBody, toProxyError, type UpstreamClient, type UpstreamHeaders } from './client.js';
import type { Answer } from './link.js';

export type Era = 'legacy' | 'modern';

export interface EraProbe {
  /** The upstream's era; probes (once, shared by concurrent callers) with the caller's credentials. */
  era(clientHeaders: UpstreamHeaders): Era | Promise<Era>;
  /** The era if it is known already (the setting, or a probe's verdict), without probing. */
  known(): Era | undefined;
  /** Probe again before the next modern request (the upstream restarted). */
  forget(): void;
}

// A DiscoverResult is small; a bigger answer is not one.
const MAX_PROBE_ANSWER_BYTES = 256 * 1024;
const PROBE_BODY = JSON.stringify({
  jsonrpc: '2.0',
  id: 'mcp-session-proxy-era-probe',
  method: 'server/discover',
  params: {
    _meta: {
      [ENVELOPE.protocolVersion]: MODERN,
      [ENVELOPE.clientInfo]: { name: 'mcp-session-proxy', version: 'era-probe' },
      [ENVELOPE.clientCapabilities]: {},
    },
  },
});
const PROBE_RPC = { method: 'server/discover' };

export function createEraProbe(upstream: UpstreamClient, setting: UpstreamEra, log: Logger, timeoutMs: number): EraProbe {
  if (setting !== 'auto') return { era: () => setting, known: () => setting, forget: () => undefined };
  let known: Era | undefined;
  let probing: Promise<Era> | undefined;

  async function probe(clientHeaders: UpstreamHeaders): Promise<Era> {
    const headers: UpstreamHeaders = { ...clientHeaders };
    delete headers[SESSION_HEADER];
    // The probe is the proxy's own request: a client's resumption point means nothing to it.
    delete headers[LAST_EVENT_ID_HEADER];
    headers['content-type'] = 'application/json';
    headers.accept = POST_ACCEPT;
    headers[PROTOCOL_VERSION_HEADER] = MODERN;
    headers['mcp-method'] = 'server/discover';
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const answer = await upstream.request({ method: 'POST', headers, body: PROBE_BODY, signal, rpc: PROBE_RPC });
      const body = await readBody(answer.body, MAX_PROBE_ANSWER_BYTES, 'UPSTREAM_UNAVAILABLE', signal);
      const verdict = verdictOf(answer.statusCode, body.toString(), answer.headers['content-type']);
      if (verdict !== undefined) {
        known = verdict;
        log.info({ era: verdict, status: answer.statusCode }, 'upstream era found');
        return verdict;
      }
      log.debug({ status: answer.statusCode }, 'upstream era probe inconclusive');
    } catch (error) {
      log.debug({ reason: toProxyError(error, signal).reason }, 'upstream era probe failed');
    }
    // Nothing learnt: serve this request as for a legacy upstream (what every server before
    // 2026-07-28 is), and probe again next time.
    return 'legacy';
  }

  return {
    era(clientHeaders) {
      if (known !== undefined) return known;
      probing ??= probe(clientHeaders).finally(() => {
        probing = undefined;
      });
      return probing;
    },
    known: () => known,
    forget() {
      known = undefined;
    },
  };
}

/** The era an answer to the probe shows, or undefined when it shows none (auth, server errors). */
export function verdictOf(status: number, body: string, contentType: string | string[] | undefined): Era | undefined {
  if (status === 401 || status === 403 || status >= 500) return undefined;
  for (const message of messagesOf(body, typeof contentType === 'string' ? contentType : undefined)) {
    if (typeof message !== 'object' || message === null) continue;
    const { result, error } = message as {
      result?: { supportedVersions?: unknown };
      error?: { code?: unknown; data?: { supported?: unknown } };
    };
    if (Array.isArray(result?.supportedVersions)) return result.supportedVersions.includes(MODERN) ? 'modern' : 'legacy';
    // A modern server that wants another envelope still names 2026-07-28 among what it supports.
    if (error?.code === -32022 && Array.isArray(error.data?.supported) && error.data.supported.includes(MODERN)) return 'modern';
  }
  // Any other 2xx or 4xx: a legacy server (which answers a discover it does not know, or a request
  // without a session, with an error).
  return status < 500 ? 'legacy' : undefined;
}

/**
 * A 400 -32022 naming 2026-07-28 among the supported versions: what a modern-only server (the v2
 * SDK's `legacy: 'reject'`) answers a 2025-era request. (400 answers are read whole by the link.)
 */
export function refusedAsModernOnly(answer: Answer): boolean {
  const { response, payload } = answer;
  if (response.statusCode !== 400 || !Buffer.isBuffer(payload)) return false;
  return verdictOf(response.statusCode, payload.toString(), response.headers['content-type']) === 'modern';
}
