/**
 * The relayed flow: a 2025 client's session on a legacy upstream, over an UpstreamLink.
 *
 *   initialize  → forward without a session id (openLink) → the client session, its id minted or
 *                 sealed → answer with our id
 *   POST / GET  → link.send: ready (replay / initialized first if need be) → exchange → lost?
 *                 replay once (single flight), retry once → stream the answer back untouched
 *
 * The link (upstream/link.ts) owns the upstream session; this flow does the client side's I/O.
 */
import type { Logger } from 'pino';
import { ProxyError, type JsonRpcId } from '../../errors.js';
import { accepted, relayAsItCame, type Call } from '../../http/call.js';
import { toClientHeaders, toUpstreamHeaders } from '../../http/headers.js';
import { errorEvents, relay, type OpenStreams, type RelayOptions } from '../../http/reply.js';
import { parseJson, requestIdsOf } from '../../mcp/protocol.js';
import type { Metrics } from '../../observability/metrics.js';
import type { ClientSessions } from '../../session/client-sessions.js';
import type { Fingerprint } from '../../session/ids.js';
import type { Session } from '../../session/store.js';
import { discard } from '../../upstream/client.js';
import { refusedAsModernOnly } from '../../upstream/era-probe.js';
import { openLink, type Answer, type LinkDeps, type Outgoing, type UpstreamLink } from '../../upstream/link.js';
import type { FlowOutcome } from '../era-matrix.js';

export interface RelayedDeps {
  readonly links: LinkDeps;
  readonly sessions: ClientSessions;
  readonly fingerprint: Fingerprint;
  /** Open GET event streams: shutdown ends them, since they would otherwise never finish. */
  readonly openStreams: OpenStreams;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly closing: () => boolean;
}

export interface RelayedFlow {
  /** A 2025 client's initialize: a new client session over a new upstream session. */
  start(call: Call, raw: Buffer, requestId: JsonRpcId, params: object): Promise<FlowOutcome>;
  /** A POSTed message on the session (`initialized`: the client's notifications/initialized). */
  /** `message`: `raw` as the dispatcher parsed it. */
  post(call: Call, session: Session, link: UpstreamLink, raw: Buffer, message: unknown, initialized: boolean): Promise<void>;
  /** The session's GET event stream. */
  stream(call: Call, session: Session, link: UpstreamLink): Promise<void>;
}

export function createRelayedFlow(deps: RelayedDeps): RelayedFlow {
  const { links, sessions, metrics, log } = deps;

  async function start(call: Call, raw: Buffer, requestId: JsonRpcId, params: object): Promise<FlowOutcome> {
    const { req, res, tracked } = call;
    const initParams = JSON.stringify(params);
    const { initialized, link } = await openLink(links, {
      initParams,
      headers: toUpstreamHeaders(req.headers, undefined),
      body: raw,
      requestId,
      cancel: tracked.gone,
    });
    if (link === undefined) {
      // The upstream refused (unsupported version, auth, ...): its answer goes back as is, no session.
      const refusal = { response: initialized.response, payload: initialized.body };
      // Refused as 2025-era by a 2026-07-28-only server: the dispatcher finds out for sure (once).
      if (refusedAsModernOnly(refusal)) return { kind: 'era-changed', otherwise: () => relayAsItCame(call, refusal) };
      return relayAsItCame(call, refusal);
    }
    const session = await sessions.create(call, { params, initParams, protocolVersion: link.protocolVersion }, { kind: 'relayed', link });
    const upstreamId = initialized.kind === 'accepted' ? initialized.upstreamId : undefined;
    log.info(
      { sid: session.logId, link: link.label, upstream: upstreamId === undefined ? null : deps.fingerprint(upstreamId) },
      'session created',
    );
    relay(res, initialized.response.statusCode, toClientHeaders(initialized.response.headers, session.id), initialized.body);
    return undefined;
  }

  /** One message (or the GET stream) on the session's upstream link, its answer streamed back. */
  async function forward(
    call: Call,
    session: Session,
    link: UpstreamLink,
    body: Buffer | undefined,
    message: unknown,
    initialized: boolean,
  ) {
    const out: Outgoing = {
      headers: toUpstreamHeaders(call.req.headers, undefined),
      body,
      message,
      initialized,
      versionFromLink: false,
      cancel: call.tracked.gone,
      replayed: undefined,
    };
    let answer: Answer | undefined;
    try {
      answer = await link.send(out);
    } finally {
      // The access line says why the message waited, if it did (a replay).
      call.tracked.replayedFor = out.replayed ?? null;
    }
    // The client's notifications/initialized, when the upstream session had one already.
    if (answer === undefined) return accepted(call);
    const { response, payload } = answer;
    if (body === undefined && deps.closing()) {
      // A GET stream opening after shutdown began would never be ended: refuse it instead.
      if (!Buffer.isBuffer(payload)) discard(payload);
      throw new ProxyError('SHUTTING_DOWN');
    }
    const options: RelayOptions =
      body === undefined
        ? { streams: deps.openStreams, metrics }
        : // A cut SSE answer: every request of this POST still waiting gets a JSON-RPC error.
          { cutEvents: () => errorEvents('UPSTREAM_CUT', requestIdsOf(parseJson(body))), metrics };
    relay(call.res, response.statusCode, toClientHeaders(response.headers, session.id), payload, options);
  }

  return {
    start,
    post: (call, session, link, raw, message, initialized) => forward(call, session, link, raw, message, initialized),
    stream: (call, session, link) => forward(call, session, link, undefined, undefined, false),
  };
}
