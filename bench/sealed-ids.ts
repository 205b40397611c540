/**
 * What a sealed id costs, in-process: sealing one at initialize, and opening one on an LRU miss
 * (a restarted proxy, or another replica). Each operation runs on distinct ids, as in
 * production; results are per operation. Prints a JSON object.
 */
import { randomBytes } from 'node:crypto';
import { createCredentialBinding } from '../src/session/binding.js';
import { createSealer, deriveKeys, type Sealed } from '../src/session/sealing.js';

const COUNT = Number(process.env.SEALED_IDS ?? 20_000);
// What the official SDK client sends at initialize.
const params = {
  protocolVersion: '2025-06-18',
  capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } },
  clientInfo: { name: 'claude-code', version: '2.0.14' },
};

const keys = await deriveKeys(randomBytes(32));
const binding = createCredentialBinding(undefined, keys.binding);
const sealer = createSealer({ keys: [{ sealing: keys.sealing, binding }], maxAgeMs: 3600_000 });
const state = { params, protocolVersion: '2025-06-18', credential: binding.of({ authorization: 'Bearer token' }) };

const perOpMicros = (start: number) => Math.round(((performance.now() - start) * 1000 * 100) / COUNT) / 100;

// Warm-up: JIT and WebCrypto's first calls.
for (let i = 0; i < 1000; i++) await sealer.open((await sealer.seal(state))!.id);

let start = performance.now();
const sealed: Sealed[] = [];
for (let i = 0; i < COUNT; i++) sealed.push((await sealer.seal(state))!);
const sealMicros = perOpMicros(start);

start = performance.now();
for (const { id } of sealed) {
  const opened = await sealer.open(id);
  if (!opened.ok) throw new Error('a sealed id did not open');
}
const openMicros = perOpMicros(start);

// A tampered id costs one failed decryption per configured key.
start = performance.now();
for (const { id } of sealed) {
  if ((await sealer.open(id.slice(0, -2) + (id.endsWith('AA') ? 'BB' : 'AA'))).ok) throw new Error('a tampered id opened');
}
const refuseMicros = perOpMicros(start);

process.stdout.write(
  JSON.stringify({ ids: COUNT, idLength: sealed[0]!.id.length, sealMicros, openMicros, refuseTamperedMicros: refuseMicros }) + '\n',
);
