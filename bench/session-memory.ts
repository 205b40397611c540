/**
 * Heap per idle session, measured in-process (node --expose-gc): sessions built exactly as the
 * route builds them (minted id, fingerprint, credential digest, the SDK client's initialize params
 * as JSON text) and held in the real session store. Prints a JSON array.
 */
import { createCredentialBinding } from '../src/session/binding.js';
import { createFingerprint, mintClientSessionId, type UpstreamSessionId } from '../src/session/ids.js';
import { createSessionStore, type Session } from '../src/session/store.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const counts = (process.env.SESSION_COUNTS ?? '10000,100000').split(',').map(Number);
const fingerprint = createFingerprint();
const binding = createCredentialBinding(undefined);
// A typical upstream id (a UUID) and an Authorization header, as real deployments have them.
const headers = { authorization: 'Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcCIsInN1YiI6ImFsaWNlIn0.c2ln' };

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
    const id = mintClientSessionId();
    const session: Session = {
      id,
      logId: fingerprint(id),
      credential: binding.of(headers),
      initParams: JSON.stringify(params),
      protocolVersion: '2025-06-18',
      upstreamId: crypto.randomUUID() as UpstreamSessionId,
      generation: 0,
      replaying: undefined,
      ended: false,
      nonce: undefined,
      expiresAt: Infinity,
      needsReplay: false,
    };
    store.add(session);
  }
  gc();
  const after = process.memoryUsage().heapUsed;
  results.push({ sessions: count, heapBytesPerSession: Math.round((after - before) / count) });
  if (store.size !== count) throw new Error('store lost sessions');
}
process.stdout.write(JSON.stringify(results) + '\n');
