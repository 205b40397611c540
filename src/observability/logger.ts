/**
 * Pino JSON lines. Session ids, credentials and cookies must never reach a log line: our own
 * log calls pass only fingerprints, and the redaction below is the safety net for any object
 * (a request, a response, a headers map) that a library or a future change logs whole.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config.js';

const SECRET_HEADERS = ['authorization', 'cookie', 'set-cookie', 'mcp-session-id', 'proxy-authorization', 'x-api-key'];
const HEADER_HOLDERS = ['headers', 'req.headers', 'res.headers', 'request.headers', 'response.headers'];

const REDACTED_PATHS = HEADER_HOLDERS.flatMap((holder) => SECRET_HEADERS.map((name) => `${holder}["${name}"]`));

/** `identityHeader`: the configured identity header is a credential too. */
export function createLogger(level: LogLevel, destination?: DestinationStream, identityHeader?: string): Logger {
  const extra = identityHeader === undefined ? [] : HEADER_HOLDERS.map((holder) => `${holder}["${identityHeader}"]`);
  return pino(
    {
      level,
      redact: { paths: [...REDACTED_PATHS, ...extra], censor: '[redacted]' },
      // A URL may carry a token in its query string: log the path only.
      serializers: {
        req: (req: { method?: string; url?: string }) => ({ method: req.method, path: req.url?.split('?')[0] }),
        err: serializeError,
      },
    },
    destination ?? bufferedStdout(),
  );
}

// Log lines are written in batches of this many bytes, or after FLUSH_MS when traffic is light.
const BATCH_BYTES = 4096;
const FLUSH_MS = 200;

/**
 * Stdout, written asynchronously and in batches. One write per access line cost about 8% of the
 * event loop's time under load (bench/README.md); batching takes that to near zero, and lines
 * wait at most FLUSH_MS. pino flushes what is left when the process exits, however it exits.
 */
function bufferedStdout(): DestinationStream {
  const stream = pino.destination({ dest: 1, sync: false, minLength: BATCH_BYTES });
  setInterval(() => stream.flush(), FLUSH_MS).unref();
  return stream;
}

/**
 * Errors as pino writes them, minus what Node attaches from the wire: a malformed request's
 * `rawPacket` holds its raw bytes, credentials and session id included.
 */
function serializeError(error: Error): Record<string, unknown> {
  const serialized: Record<string, unknown> = { ...pino.stdSerializers.err(error) };
  delete serialized.rawPacket;
  return serialized;
}
