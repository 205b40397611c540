/**
 * Re-authentication: a client session presented with another opaque token of the same identity
 * (an OAuth refresh: session/binding.ts says why the proxy cannot tell a refreshed token from
 * another user's). It is treated like a session loss: the client's id stays, and the session gets
 * a new backend opened under the new credentials (a fresh upstream session, the client's
 * initialize replayed; or, in front of a 2026-07-28-only upstream, a new hosted session whose
 * server/discover the upstream answered). The old backend is ended: nothing of it (the upstream
 * session, its event streams, questions waiting for answers) ever serves the new credentials.
 *
 * Until the new backend is open the session is untouched: credentials the upstream refuses get its
 * own answer (401 and its challenge), and the session goes on for the credentials it had.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { UpstreamAnswer } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import { sameDigest } from './binding.js';
import { endBackend, labelOf, type Backend, type Session } from './store.js';
import { HostedSession } from '../flows/hosted/hosted-session.js';
import { UpstreamLink, type LinkDeps } from '../upstream/link.js';
import { discoverForHosted } from '../flows/hosted/discover.js';
import { toUpstreamHeaders } from '../http/headers.js';

export interface ReauthenticationDeps {
  readonly links: LinkDeps;
  readonly metrics: Metrics;
  readonly log: Logger;
}

let renewals = 0;

/**
 * Settles once `session` runs on a backend opened with these headers' credentials (`credential`
 * is their digest); rejects as opening it failed. One renewal per session and credential at a
 * time: concurrent requests with the same new token wait for the same one.
 */
export function reauthenticate(
  deps: ReauthenticationDeps,
  session: Session,
  headers: IncomingHttpHeaders,
  credential: Buffer | undefined,
): Promise<void> {
  const pending = session.renewal;
  if (pending !== undefined && sameDigest(pending.credential, credential)) return pending.done;
  const done = renew(deps, session, headers, credential).finally(() => {
    if (session.renewal?.done === done) session.renewal = undefined;
  });
  session.renewal = { credential, done };
  return done;
}

async function renew(
  deps: ReauthenticationDeps,
  session: Session,
  clientHeaders: IncomingHttpHeaders,
  credential: Buffer | undefined,
): Promise<void> {
  let next: Backend;
  try {
    next = await openLike(deps, session.backend, clientHeaders);
  } catch (error) {
    if (error instanceof UpstreamAnswer) deps.metrics.reauthentication('refused');
    deps.log.info(
      { sid: session.logId, refused: error instanceof UpstreamAnswer },
      'session not re-authenticated: the upstream did not accept the new credentials',
    );
    throw error;
  }
  // Whatever the session ran on by now (another renewal may have finished first) is replaced.
  const replaced = session.backend;
  session.backend = next;
  session.credential = credential;
  deps.metrics.reauthentication('renewed');
  deps.log.info(
    { sid: session.logId, link: labelOf(next), replaced: labelOf(replaced) },
    'session re-authenticated: a new backend under the new credentials',
  );
  // Ended as an eviction ends it: its requests still in flight finish, the upstream session is
  // ended (with the new credentials: the proxy never keeps the old ones).
  await endBackend(replaced, toUpstreamHeaders(clientHeaders, undefined));
}

/** A backend like `current`, opened under the new credentials. */
async function openLike(deps: ReauthenticationDeps, current: Backend, clientHeaders: IncomingHttpHeaders): Promise<Backend> {
  // Shared by every request waiting for it: no one client leaving may cancel it, only the deadline.
  const signal = AbortSignal.timeout(deps.links.timeoutMs);
  switch (current.kind) {
    case 'hosted': {
      // The upstream keeps no session: its server/discover is what accepts or refuses the credentials.
      const { client, protocolVersion } = current.hosted;
      const discovered = await discoverForHosted(
        deps.links.upstream,
        clientHeaders,
        client,
        `mcp-session-proxy-reauth-${++renewals}`,
        signal,
      );
      if (discovered.kind === 'refused')
        throw new UpstreamAnswer(discovered.response.statusCode, discovered.response.headers, discovered.body);
      return { kind: 'hosted', hosted: new HostedSession(client, protocolVersion) };
    }
    case 'relayed': {
      const { initParams, protocolVersion } = current.link;
      const link = new UpstreamLink(deps.links, initParams, { kind: 'reauthenticated', protocolVersion });
      await link.open(toUpstreamHeaders(clientHeaders, undefined));
      return { kind: 'relayed', link };
    }
  }
}
