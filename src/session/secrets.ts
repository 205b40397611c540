/**
 * The session secret (SESSION_SECRET / SESSION_SECRET_FILE), checked before anything uses it.
 *
 * Entropy cannot be measured from one sample; what can be done is to refuse secrets that cannot
 * hold 256 bits (too short for their alphabet: 64 hex digits, 43 base64 characters) and secrets
 * that are visibly not random (they compress: repetition, few distinct characters), which catches
 * placeholders like "changeme…" or "aaaa…" without rejecting `openssl rand -base64 32` output.
 */
import { readFileSync } from 'node:fs';
import { deflateRawSync } from 'node:zlib';

const MIN_SECRET_BYTES = 32;
const REQUIRED_BITS = MIN_SECRET_BYTES * 8;
// Random secrets of 32 bytes do not compress below 32 bytes in any usual encoding (hex, base64,
// raw: 39 bytes and more in 200k samples); "changeme" eight times compresses to 13.
const MIN_COMPRESSED_BYTES = MIN_SECRET_BYTES;

const ADVICE = `use at least ${MIN_SECRET_BYTES} random bytes, e.g. the output of \`openssl rand -base64 32\``;

/** The secret's bytes, or an error whose message never contains the secret. */
export function parseSecret(text: string): Buffer {
  return checked(Buffer.from(text, 'utf8'), capacityBits(text));
}

/**
 * A secret file as Kubernetes and Docker mount them: text, maybe with one final newline, or raw
 * random bytes (`openssl rand 32 > file`), which are used as they are.
 */
export function readSecretFile(path: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { cause: error });
  }
  const text = bytes.toString('utf8');
  // Not text (decoding it would turn bytes into U+FFFD and lose their entropy): raw bytes.
  if (!Buffer.from(text, 'utf8').equals(bytes)) return checked(bytes, bytes.length * 8);
  return parseSecret(text.replace(/\r?\n$/, ''));
}

function checked(secret: Buffer, capacity: number): Buffer {
  if (secret.length < MIN_SECRET_BYTES) throw new Error(`too short (${secret.length} bytes): ${ADVICE}`);
  if (capacity < REQUIRED_BITS || deflateRawSync(secret).length < MIN_COMPRESSED_BYTES) {
    throw new Error(`holds too little entropy (too short for its alphabet, or not random): ${ADVICE}`);
  }
  return secret;
}

/** Most bits the text could hold given its alphabet (hex digits, base64, printable ASCII, any). */
function capacityBits(text: string): number {
  if (/^[0-9a-fA-F]+$/.test(text)) return text.length * 4;
  // Base64 padding carries no bits.
  if (/^[A-Za-z0-9+/_-]+=*$/.test(text)) return text.replace(/=+$/, '').length * 6;
  if (/^[\x20-\x7e]+$/.test(text)) return text.length * Math.log2(95);
  return Buffer.byteLength(text) * 8;
}
