/**
 * Heap per idle session, measured in-process (node --expose-gc): sessions built exactly as the
 * route builds them (minted id, fingerprint, credential digest, and an upstream link holding the
 * SDK client's initialize params as JSON text and the upstream's id) and held in the real session
 * store. SEALED=1: with sealed ids (session/sealing.ts),
 * which are longer and carry a nonce. Prints a JSON array.
 */
import { randomBytes } from 'node:crypto';
import { createCredentialBinding } from '../src/session/binding.js';
import { createFingerprint, mintClientSessionId, type UpstreamSessionId } from '../src/session/ids.js';
import { createSealer, deriveKeys } from '../src/session/sealing.js';
import { createSessionStore, newSession } from '../src/session/store.js';
import { UpstreamLink, type LinkDeps } from '../src/upstream/link.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const counts = (process.env.SESSION_COUNTS ?? '10000,100000').split(',').map(Number);
const fingerprint = createFingerprint();
const binding = createCredentialBinding(undefined);
const keys = await deriveKeys(randomBytes(32));
const sealer = process.env.SEALED === '1' ? createSealer({ keys: [{ sealing: keys.sealing, binding }], maxAgeMs: 3600_000 }) : undefined;
// A typical upstream id (a UUID) and an Authorization header, as real deployments have them.
const headers = { authorization: 'Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcCIsInN1YiI6ImFsaWNlIn0.c2ln' };

// Shared by every link, as in the proxy; never used here (nothing is sent).
const linkDeps = {} as LinkDeps;

const results = [];
for (const count of counts) {
  const store = createSessionStore({ maxSessions: count, idleTtlMs: 86_400_000 });
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < count; i++) {
    // Each request's params arrive as freshly parsed JSON, as in the proxy.
    const params = JSON.parse(
      '{"protocolVersion":"2025-06-18","capabilities":{"sampling":{},"elicitation":{},"roots":{"listChanged":true}},"clientInfo":{"name":"claude-code","version":"2.0.14"}}',
    ) as object;
    const credential = binding.of(headers);
    const sealed = await sealer?.seal({ params, protocolVersion: '2025-06-18', credential });
    const id = sealed?.id ?? mintClientSessionId();
    const link = new UpstreamLink(linkDeps, JSON.stringify(params), {
      kind: 'initialized-by-client',
      protocolVersion: '2025-06-18',
      upstreamId: crypto.randomUUID() as UpstreamSessionId,
    });
    const session = newSession({
      id,
      logId: fingerprint(id),
      credential,
      identity: undefined,
      nonce: sealed?.nonce,
      expiresAt: sealed === undefined ? Infinity : sealed.issuedAtMs + 3600_000,
      backend: { kind: 'relayed', link },
    });
    store.add(session);
  }
  gc();
  const after = process.memoryUsage().heapUsed;
  results.push({ sessions: count, sealed: sealer !== undefined, heapBytesPerSession: Math.round((after - before) / count) });
  if (store.size !== count) throw new Error('store lost sessions');
}
process.stdout.write(JSON.stringify(results) + '\n');
