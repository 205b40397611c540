/**
 * The one reader of SSE (text/event-stream) bodies the proxy receives, on eventsource-parser, with
 * what the WHATWG event-stream rules leave to the caller done once: one leading byte order mark
 * skipped, the end of the stream, and a bound on what one event may buffer.
 *
 *   createSseTextReader  a stream's text, piece by piece (sse-reader.ts decodes a byte stream into it)
 *   forEachEventData     a whole body already read
 *
 * Each event is handed on as its data (the `data:` lines joined with \n); as the rules say, an
 * event without a `data:` line is not dispatched. Every event the proxy reads carries one JSON-RPC
 * message, so the event type, id and retry fields are of no use to it. CRLF, CR and LF line
 * endings, comments, fields without a colon and the one space after a colon are
 * eventsource-parser's (the rules, property-tested in test/unit/sse-reader.test.ts).
 *
 * One deliberate departure from the rules: at the end of the stream, an event still missing its
 * blank line is delivered (the rules discard it). Servers do end a response right after an
 * answer's last `data:` line, and that answer is complete; dropping it would turn a good answer
 * into a cut one.
 *
 * Pure, no node:* import: src/mcp reads whole bodies with it.
 */
import { createParser, type ParseError } from 'eventsource-parser';
import { MAX_MESSAGE_BYTES } from './protocol.js';

/**
 * The most text one event may hold in the reader (its data so far and its line still arriving),
 * in UTF-16 units. An event carries one JSON-RPC message, which is never bigger than
 * MAX_MESSAGE_BYTES; n bytes of UTF-8 decode to at most n units, so no message the proxy would
 * read whole as JSON is refused as an event. Past it, the upstream is broken or hostile: the
 * reader throws rather than buffer without end.
 */
export const MAX_EVENT_CHARS = MAX_MESSAGE_BYTES;

export interface SseHandlers {
  /** An event's data; what it throws, the reader's write, feed or end throws. */
  readonly event: (data: string) => void;
  /** A comment line (`:` …): a keep-alive, in practice. Its text is the sender's business. */
  readonly comment?: (() => void) | undefined;
}

/** A text/event-stream body, fed as it arrives. After it throws, it is spent: feed it no more. */
export interface SseTextReader {
  /** The next piece of the stream's text, cut anywhere. */
  feed(text: string): void;
  /** The stream ended: its last event is delivered even without the blank line after it. */
  end(): void;
}

const BOM = 0xfeff;
// Two line ends finish a line still arriving and then its event, whichever line end (CR, LF,
// CRLF, or a CR whose LF never came) the stream left off at.
const END_OF_STREAM = '\n\n';

function rethrowOverflow(error: ParseError): void {
  // Unknown fields and bad retry values are ignored, as the rules say; an overflow is not.
  if (error.type === 'max-buffer-size-exceeded') throw error;
}

export function createSseTextReader(handlers: SseHandlers, maxEventChars = MAX_EVENT_CHARS): SseTextReader {
  const { event } = handlers;
  const parser = createParser({
    onEvent: (message) => event(message.data),
    onComment: handlers.comment,
    onError: rethrowOverflow,
    maxBufferSize: maxEventChars,
  });
  // The parser strips a leading BOM itself, as U+FEFF or as three bytes (EF BB BF) read as
  // characters, which decoded text never has and which would be text to keep if it did. A blank
  // line first (nothing to dispatch yet, so nothing else changes) ends its check; the decoded
  // BOM, U+FEFF, is skipped below.
  parser.feed('\n');
  let started = false;
  return {
    feed(text) {
      if (!started) {
        if (text.length === 0) return;
        started = true;
        if (text.charCodeAt(0) === BOM) text = text.slice(1);
      }
      parser.feed(text);
    },
    end() {
      parser.feed(END_OF_STREAM);
    },
  };
}

/** Each event's data in a whole SSE body, in order (the last one even without its blank line). */
export function forEachEventData(body: string, each: (data: string) => void): void {
  const reader = createSseTextReader({ event: each });
  reader.feed(body);
  reader.end();
}
