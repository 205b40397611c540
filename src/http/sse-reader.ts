/**
 * The one reader of a streamed SSE body (an upstream answer, a GET or listen stream): its bytes,
 * cut anywhere (inside a UTF-8 character too), decoded and read by sse-text-reader.ts, which owns
 * the rules (byte order mark, line ends, the end of the stream, the bound on one event).
 */
import { StringDecoder } from 'node:string_decoder';
import { createSseTextReader, MAX_EVENT_CHARS, type SseHandlers } from './sse-text-reader.js';

export type { SseHandlers } from './sse-text-reader.js';

/** A byte stream's reader. After it throws (a handler's error, an event past the bound), it is spent. */
export interface SseReader {
  /** The next bytes of the stream. */
  write(chunk: Buffer): void;
  /** The stream ended: its last event is delivered even without the blank line after it. */
  end(): void;
}

export function createSseReader(handlers: SseHandlers, maxEventChars = MAX_EVENT_CHARS): SseReader {
  const text = createSseTextReader(handlers, maxEventChars);
  // StringDecoder rather than TextDecoder: as fast on large chunks, and a third of the cost on the
  // small ones that carry one event each (a progress notification), on Node 20 and 24 alike. It
  // keeps a leading BOM, which the text reader skips.
  const decoder = new StringDecoder('utf8');
  return {
    write(chunk) {
      text.feed(decoder.write(chunk));
    },
    end() {
      text.feed(decoder.end());
      text.end();
    },
  };
}
