/**
 * An upstream SSE answer re-emitted, event by event, for a modern (2026-07-28) client. The only
 * stateful part of the era translation: the SSE reader's partial line, event and UTF-8 character,
 * carried between chunks.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { JsonRpcId } from '../errors.js';
import { createSseReader } from './sse-reader.js';
import { parseJson } from '../mcp/protocol.js';
import { textOf, type MessageMap } from '../mcp/translate.js';
import { sseEvent, SSE_KEEPALIVE } from './reply.js';

/**
 * An SSE body from the upstream, for a modern client: each event's data parsed once, passed to
 * `map`, and a forwarded message written as `event: message\ndata: <json>\n\n`. Events whose data
 * is not JSON are dropped; `onRefuse(id, method)` hears each server→client request `map` refuses.
 * The stream is read by http/sse-reader.ts (line endings, a byte order mark, a last event without
 * its blank line, the bound on one event). What one chunk completes goes out as one write, so the
 * transform holds at most the one event still arriving; as a Transform it stops reading the
 * upstream while the client is not reading.
 */
export function modernEventStream(
  map: MessageMap,
  onRefuse: (id: JsonRpcId, method: string, missingCapability?: string) => void,
): Transform {
  let out = '';
  const reader = createSseReader({
    event(data) {
      const message = parseJson(data);
      if (message === undefined) return;
      const translated = map(message, data);
      if (translated.kind === 'refuse-upstream') onRefuse(translated.id, translated.method, translated.missingCapability);
      else if (translated.kind !== 'drop') out += sseEvent(textOf(translated)!);
    },
    comment() {
      // Upstream comments are keep-alives in practice; their text is the upstream's business, not
      // the client's, so each one becomes the same comment the v2 SDK server sends.
      out += SSE_KEEPALIVE;
    },
  });

  function emit(stream: Transform): void {
    if (out.length === 0) return;
    stream.push(out);
    out = '';
  }

  return new Transform({
    // Strings written in are turned into Buffers (decodeStrings), so every chunk is bytes.
    transform(this: Transform, chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      try {
        reader.write(chunk);
        emit(this);
        callback();
      } catch (error) {
        callback(error as Error);
      }
    },
    flush(this: Transform, callback: TransformCallback) {
      try {
        reader.end();
        emit(this);
        callback();
      } catch (error) {
        callback(error as Error);
      }
    },
  });
}
