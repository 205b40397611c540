/**
 * The one reader of a streamed SSE body (an upstream answer, a GET or listen stream): its bytes,
 * cut anywhere (inside a UTF-8 character too), decoded and read by sse-text-reader.ts, which owns
 * the rules (byte order mark, line ends, the end of the stream, the bound on one event).
 *
 *   createSseReader  bytes in, events out, for a caller that drives the body itself
 *   readEventStream  a Readable body read to its end
 */
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createSseTextReader, MAX_EVENT_CHARS, type SseHandlers } from '../mcp/sse-text-reader.js';

export type { SseHandlers } from '../mcp/sse-text-reader.js';

/** A byte stream's reader. After it throws (a handler's error, an event past the bound), it is spent. */
export interface SseReader {
  /** The next bytes of the stream. */
  write(chunk: Buffer): void;
  /** The stream ended: its last event is delivered even without the blank line after it. */
  end(): void;
}

export function createSseReader(handlers: SseHandlers, maxEventChars = MAX_EVENT_CHARS): SseReader {
  const text = createSseTextReader(handlers, maxEventChars);
  // StringDecoder rather than TextDecoder, which cost about two thirds more per small chunk (one
  // event each: progress streamed live) on Node 20 and 24, and twice as much per large chunk on
  // Node 20 (bench/sse-reader.ts's shapes). It keeps a leading BOM, which the text reader skips.
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

/**
 * Read a body's events as they arrive. A handler's throw (an event the translation cannot take:
 * JSON nested deeper than the stack, say) or an event past the bound makes it a garbled stream:
 * the body is destroyed, and the process carries on. At the body's end its last event is
 * delivered, even without its blank line. `done` is told once: the body ended, failed or was
 * destroyed (by the caller too).
 */
export function readEventStream(body: Readable, handlers: SseHandlers, done: () => void): void {
  const reader = createSseReader(handlers);
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    done();
  };
  body.on('data', (chunk: Buffer) => {
    try {
      reader.write(chunk);
    } catch {
      body.destroy();
    }
  });
  body.once('end', () => {
    try {
      reader.end();
    } catch {
      // Garbled at its very end: it ended all the same.
    }
    finish();
  });
  body.once('error', finish);
  body.once('close', finish);
}
