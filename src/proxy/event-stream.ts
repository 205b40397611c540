/**
 * An upstream SSE answer re-emitted, event by event, for a modern (2026-07-28) client. The only
 * stateful part of the era translation: the SSE parser's partial line and event, and a UTF-8
 * decoder's partial character, both carried between chunks.
 */
import { createParser } from 'eventsource-parser';
import { StringDecoder } from 'node:string_decoder';
import { Transform, type TransformCallback } from 'node:stream';
import type { JsonRpcId } from '../errors.js';
import { parseJson } from '../mcp/protocol.js';
import { textOf, type MessageMap } from '../mcp/translate.js';
import { sseEvent, SSE_KEEPALIVE } from './reply.js';

// An SSE stream may begin with a byte order mark; the parser only recognises one in raw bytes.
const BOM = 0xfeff;

/**
 * An SSE body from the upstream, for a modern client: each event's data parsed once, passed to
 * `map`, and a forwarded message written as `event: message\ndata: <json>\n\n`. Events whose data
 * is not JSON are dropped; `onRefuse(id, method)` hears each server→client request `map` refuses.
 * Events split across chunks, CRLF or CR line endings, multi-line data and a last event cut
 * without its blank line are all read as one would expect. What one chunk completes goes out as
 * one write, so the transform holds at most the one event still arriving; as a Transform it
 * stops reading the upstream while the client is not reading.
 */
export function modernEventStream(
  map: MessageMap,
  onRefuse: (id: JsonRpcId, method: string, missingCapability?: string) => void,
): Transform {
  const decoder = new StringDecoder('utf8');
  let out = '';
  let started = false;
  const parser = createParser({
    onEvent(event) {
      const message = parseJson(event.data);
      if (message === undefined) return;
      const translated = map(message, event.data);
      if (translated.kind === 'refuse-upstream') onRefuse(translated.id, translated.method, translated.missingCapability);
      else if (translated.kind !== 'drop') out += sseEvent(textOf(translated)!);
    },
    onComment() {
      // Upstream comments are keep-alives in practice; their text is the upstream's business, not
      // the client's, so each one becomes the same comment the v2 SDK server sends.
      out += SSE_KEEPALIVE;
    },
  });

  function feed(text: string): void {
    if (text.length === 0) return;
    if (!started) {
      started = true;
      if (text.charCodeAt(0) === BOM) text = text.slice(1);
    }
    parser.feed(text);
  }

  function emit(stream: Transform): void {
    if (out.length === 0) return;
    stream.push(out);
    out = '';
  }

  return new Transform({
    // Strings written in are turned into Buffers (decodeStrings), so every chunk is bytes.
    transform(this: Transform, chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      try {
        feed(decoder.write(chunk));
        emit(this);
        callback();
      } catch (error) {
        callback(error as Error);
      }
    },
    flush(this: Transform, callback: TransformCallback) {
      try {
        feed(decoder.end());
        // A stream cut after its last event has no trailing blank line: end the line and the event.
        parser.feed('\n\n');
        emit(this);
        callback();
      } catch (error) {
        callback(error as Error);
      }
    },
  });
}
