/**
 * The session secret (SESSION_SECRET / SESSION_SECRET_FILE), checked before anything uses it.
 *
 * Entropy cannot be measured from one sample; what can be done is to refuse secrets that cannot
 * hold 256 bits (too short for their alphabet: 64 hex digits, 43 base64 characters) and secrets
 * that are visibly not random (few distinct characters, repetition), which catches passwords and
 * placeholders like "changeme" or "aaaa…" without rejecting `openssl rand -base64 32` output.
 */
import { readFileSync } from 'node:fs';

export const MIN_SECRET_BYTES = 32;
const REQUIRED_BITS = MIN_SECRET_BYTES * 8;
// Half the required bits, from the observed character frequencies: a random 64-digit hex secret
// shows about 240, "passwordpassword…" about 80.
const REQUIRED_OBSERVED_BITS = REQUIRED_BITS / 2;

const ADVICE = `use at least ${MIN_SECRET_BYTES} random bytes, e.g. the output of \`openssl rand -base64 32\``;

/** The secret's bytes, or an error whose message never contains the secret. */
export function parseSecret(text: string): Buffer {
  const secret = Buffer.from(text, 'utf8');
  if (secret.length < MIN_SECRET_BYTES) throw new Error(`too short (${secret.length} bytes): ${ADVICE}`);
  if (capacityBits(text) < REQUIRED_BITS || observedBits(secret) < REQUIRED_OBSERVED_BITS) {
    throw new Error(`holds too little entropy (too short for its alphabet, or not random): ${ADVICE}`);
  }
  return secret;
}

/** A secret file as Kubernetes and Docker mount them: the value, maybe with one final newline. */
export function readSecretFile(path: string): Buffer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return parseSecret(text.replace(/\r?\n$/, ''));
}

/** Most bits the text could hold given its alphabet (hex digits, base64, printable ASCII, any). */
function capacityBits(text: string): number {
  const bitsPerChar = /^[0-9a-fA-F]+$/.test(text)
    ? 4
    : /^[A-Za-z0-9+/_=-]+$/.test(text)
      ? 6
      : /^[\x20-\x7e]+$/.test(text)
        ? Math.log2(95)
        : 8;
  return text.replace(/=+$/, '').length * bitsPerChar;
}

/** Shannon entropy of the byte frequencies, times the length. */
function observedBits(bytes: Buffer): number {
  const counts = new Map<number, number>();
  for (const byte of bytes) counts.set(byte, (counts.get(byte) ?? 0) + 1);
  let perByte = 0;
  for (const count of counts.values()) {
    const p = count / bytes.length;
    perByte -= p * Math.log2(p);
  }
  return perByte * bytes.length;
}
