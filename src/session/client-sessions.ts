/**
 * Client sessions as both session flows (relayed, hosted) use them: found by the id a client
 * presents (in memory, or reopened from a sealed id), admitted (credentials, age limit,
 * re-authentication), created at initialize, and ended by DELETE.
 *
 *   find: in memory? ─ admit ─▶ the session        (other credentials: 404, or a re-authentication)
 *         sealed id? ─ open, check ─ a new backend by the upstream's era ─ admit ─▶ the session
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { ProxyError } from '../errors.js';
import { backendFor } from '../flows/era-matrix.js';
import { HostedSession } from '../flows/hosted/hosted-session.js';
import type { Call } from '../http/call.js';
import { toUpstreamHeaders } from '../http/headers.js';
import { legacyClientOf } from '../mcp/modern-upstream.js';
import { parseJson, SESSION_HEADER } from '../mcp/protocol.js';
import type { Metrics, SealedIdRejection } from '../observability/metrics.js';
import type { Tracing } from '../observability/tracing.js';
import type { EraProbe } from '../upstream/era-probe.js';
import { UpstreamLink, type LinkDeps } from '../upstream/link.js';
import type { CredentialBinding } from './binding.js';
import { asClientSessionId, isSealedId, mintClientSessionId, type ClientSessionId, type Fingerprint } from './ids.js';
import { reauthenticate } from './reauthenticate.js';
import type { Opened, Sealer } from './sealing.js';
import { endBackend, labelOf, newSession, type Backend, type Session, type SessionStore, type TerminatedIds } from './store.js';

export interface ClientSessionsDeps {
  readonly store: SessionStore;
  /** Sealed ids ended by DELETE: refused even though they still open. */
  readonly terminated: TerminatedIds;
  /** Seals new ids and opens ids this process has no session for; undefined without a secret. */
  readonly sealer: Sealer | undefined;
  readonly binding: CredentialBinding;
  readonly fingerprint: Fingerprint;
  /** Age limit of a sealed id, from its initialize. */
  readonly sessionMaxAgeMs: number;
  /** What a reopened session's link is built with. */
  readonly links: LinkDeps;
  /** A reopened session's backend follows the upstream's era. */
  readonly eraProbe: EraProbe;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly tracing: Tracing;
}

/** What a session is looked up for: any use, or ending it (a DELETE), which never re-authenticates it. */
export type SessionUse = 'use' | 'end';

/** The client's initialize, as a session keeps it (and a sealed id carries it). */
export interface Initialize {
  readonly params: object;
  /** `params` as JSON text: every replay sends it verbatim. */
  readonly initParams: string;
  readonly protocolVersion: string;
}

export interface ClientSessions {
  /**
   * The session named by the client's header. Unknown or malformed ids get 404, as the spec says.
   * In memory, with the same credentials, it is synchronous (the hot path).
   */
  find(call: Call, purpose?: SessionUse): Session | Promise<Session>;
  /** A new client session on `backend`: its id minted (or sealed), kept, counted. */
  create(call: Call, initialize: Initialize, backend: Backend): Promise<Session>;
  /** DELETE: forget the session (a sealed id: refuse it here from now on) and end its backend. */
  end(call: Call, session: Session): Promise<void>;
}

export function createClientSessions(deps: ClientSessionsDeps): ClientSessions {
  const { store, terminated, sealer, binding, fingerprint, metrics, log, tracing } = deps;

  function find(call: Call, purpose: SessionUse = 'use'): Session | Promise<Session> {
    const presented = call.req.headers[SESSION_HEADER];
    if (presented === undefined) throw new ProxyError('SESSION_REQUIRED');
    const id = typeof presented === 'string' ? asClientSessionId(presented) : undefined;
    if (id === undefined) throw new ProxyError('SESSION_NOT_FOUND');
    const session = store.get(id);
    if (session !== undefined) return admit(call, session, purpose);
    const reopening = () => reopen(deps, call, id, purpose).then((reopened) => admit(call, reopened, purpose));
    return tracing.on ? tracing.step('sealed id reopen', {}, call.req.headers, reopening) : reopening();
  }

  /**
   * The checks every use of a session passes, however it was found. `purpose` 'end' takes only the
   * credentials the session runs under: ending a session never re-authenticates it, so a stolen id
   * with a token of its own cannot end its owner's session.
   */
  function admit(call: Call, session: Session, purpose: SessionUse): Session | Promise<Session> {
    const { headers } = call.req;
    const sameCredentials = binding.matches(session.credential, headers);
    // Other credentials than at initialize, unless another opaque token of the same identity (a
    // refresh, which re-authenticates the session below): answer exactly as for an unknown id.
    const refreshed =
      !sameCredentials && purpose === 'use' && session.identity !== undefined && binding.identityMatches(session.identity, headers);
    if (!sameCredentials && !refreshed) throw new ProxyError('SESSION_NOT_FOUND');
    if (session.expiresAt <= Date.now()) {
      // A sealed id past its age limit would be refused by every other replica: refuse it here too.
      store.delete(session.id, 'max_age');
      throw new ProxyError('SESSION_NOT_FOUND');
    }
    call.tracked.sessionLogId = session.logId;
    if (sameCredentials) return session;
    return reauthenticate({ links: deps.links, metrics, log }, session, headers, binding.of(headers)).then(() => session);
  }

  async function create(call: Call, initialize: Initialize, backend: Backend): Promise<Session> {
    const { params, initParams, protocolVersion } = initialize;
    const credential = binding.of(call.req.headers);
    const identity = binding.identityOf(call.req.headers);
    // Sealed: the identity when the credentials are an opaque token, so that a refreshed one reopens it.
    const sealed = await sealer?.seal({ params, protocolVersion, credential: identity ?? credential });
    const id = sealed?.id ?? mintClientSessionId();
    const session = newSession({
      id,
      logId: fingerprint(id),
      credential,
      identity,
      nonce: sealed?.nonce,
      expiresAt: sealed === undefined ? Infinity : sealed.issuedAtMs + deps.sessionMaxAgeMs,
      backend,
    });
    if (sealer !== undefined && sealed === undefined) {
      log.warn(
        { sid: session.logId, paramsBytes: initParams.length },
        'initialize params too large to seal; this session lives in this process only',
      );
    }
    store.add(session);
    metrics.sessionCreated();
    call.tracked.sessionLogId = session.logId;
    return session;
  }

  async function end(call: Call, session: Session): Promise<void> {
    store.delete(session.id);
    // A sealed id would still open: refuse it here until it is too old anyway. Other replicas do
    // not learn of it (docs/security.md: sealed ids).
    if (session.nonce !== undefined) terminated.add(session.nonce, session.expiresAt);
    log.info({ sid: session.logId }, 'session deleted by client');
    const { backend } = session;
    // A hosted session's requests in flight end with it, as a legacy server ends the requests of a
    // session it terminates (their answers end without a response: the client gave them up).
    if (backend.kind === 'hosted') backend.hosted.inFlight.cancelAll();
    // Ended at once (a replay racing this DELETE cannot bring it back); the upstream may not
    // support DELETE (405) or may have lost the session already: either way it is over.
    await endBackend(backend, toUpstreamHeaders(call.req.headers, undefined));
  }

  return { find, create, end };
}

/**
 * A sealed id this process has no session for (it restarted, or another replica made it): open
 * it, check it, and take the session in. A relayed backend starts unopened: the first message
 * replays initialize. Any failed check answers exactly as an unknown id does.
 */
async function reopen(deps: ClientSessionsDeps, call: Call, id: ClientSessionId, purpose: SessionUse): Promise<Session> {
  const { store, sealer, binding, fingerprint, metrics, log } = deps;
  if (sealer === undefined || !isSealedId(id)) throw new ProxyError('SESSION_NOT_FOUND');
  const opened = await sealer.open(id);
  const refused = opened.ok ? refusalOf(deps.terminated, opened.session, call.req.headers, purpose) : opened.reason;
  if (!opened.ok || refused !== undefined) {
    metrics.sealedIdRejected(refused!);
    log.debug({ reason: refused }, 'sealed session id refused');
    throw new ProxyError('SESSION_NOT_FOUND');
  }
  // Another request with this id may have taken it in while this one was decrypting.
  const known = store.get(id);
  if (known !== undefined) return known;
  const { session: state } = opened;
  const era = await deps.eraProbe.era(toUpstreamHeaders(call.req.headers, undefined));
  const session = newSession({
    id,
    logId: fingerprint(id),
    // The caller's credentials matched the sealed digest; this process compares with its current key.
    credential: binding.of(call.req.headers),
    identity: binding.identityOf(call.req.headers),
    nonce: state.nonce,
    expiresAt: state.issuedAtMs + deps.sessionMaxAgeMs,
    backend:
      backendFor(era) === 'hosted'
        ? { kind: 'hosted', hosted: new HostedSession(legacyClientOf(parseJson(state.initParams)), state.protocolVersion) }
        : {
            kind: 'relayed',
            link: new UpstreamLink(deps.links, state.initParams, { kind: 'reopened', protocolVersion: state.protocolVersion }),
          },
  });
  store.add(session);
  metrics.sessionReopened();
  log.info({ sid: session.logId, link: labelOf(session.backend) }, 'session reopened from its sealed id');
  return session;
}

function refusalOf(
  terminated: TerminatedIds,
  opened: Opened,
  headers: IncomingHttpHeaders,
  purpose: SessionUse,
): SealedIdRejection | undefined {
  if (terminated.has(opened.nonce)) return 'terminated';
  // A sealed id carries the identity digest when the credentials were an opaque token (any token
  // of that identity reopens it, under its own upstream session; never to end it: the token it
  // runs under is not known here), else the credential digest.
  const { binding: sealedWith, credential } = opened;
  const byIdentity = purpose === 'use' && credential !== undefined && sealedWith.identityMatches(credential, headers);
  if (!sealedWith.matches(credential, headers) && !byIdentity) return 'credentials';
  return undefined;
}
