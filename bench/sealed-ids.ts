/**
 * What a sealed id costs, in-process: sealing one at initialize, and opening one on an LRU miss
 * (a restarted proxy, or another replica). Each operation runs on distinct ids, as in
 * production; results are per operation. The same for an MRTR requestState (sealed at each
 * input_required answer, opened at each retry). Prints a JSON object.
 */
import { randomBytes } from 'node:crypto';
import { createCredentialBinding } from '../src/session/binding.js';
import { createRequestStateCodec } from '../src/session/request-state.js';
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

// An MRTR requestState as bench/mrtr.ts's asking call leaves it: one question asked, parked here.
const codec = createRequestStateCodec({ key: keys.requestState, ttlMs: 600_000 });
const requestState = {
  request: 'lB2bq3m7p0yQm0Zc3Vd9sA',
  credential: state.credential?.toString('base64url'),
  parked: { handle: 'x0VYtk3ShkJmA3Zk.2s', round: 1 },
  asked: { 'elicitation-3q9Zs0mUj2Xr': 'Q2x8cmT0bXlnYXJ0ZW5pbmc' },
  answers: {},
};
for (let i = 0; i < 1000; i++) codec.open(codec.seal(requestState));
start = performance.now();
const states: string[] = [];
for (let i = 0; i < COUNT; i++) states.push(codec.seal(requestState));
const stateSealMicros = perOpMicros(start);
start = performance.now();
for (const token of states) if (!codec.open(token).ok) throw new Error('a requestState did not open');
const stateOpenMicros = perOpMicros(start);

process.stdout.write(
  JSON.stringify({
    ids: COUNT,
    idLength: sealed[0]!.id.length,
    sealMicros,
    openMicros,
    refuseTamperedMicros: refuseMicros,
    requestState: { length: states[0]!.length, sealMicros: stateSealMicros, openMicros: stateOpenMicros },
  }) + '\n',
);
