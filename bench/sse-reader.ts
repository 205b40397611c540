/**
 * What the one SSE reader (src/http/sse-reader.ts) costs per event, in-process, against
 * eventsource-parser fed through a StringDecoder with nothing around it (what each hand-written
 * reader loop did before, less its BOM check and end-of-stream flush). Three shapes of upstream
 * stream: one small event per chunk (progress streamed live), many small events per 64 KiB chunk,
 * and one large result in 16 KiB chunks. Medians of interleaved rounds. Prints a JSON object.
 *
 *   node --import tsx bench/sse-reader.ts
 */
import { createParser } from 'eventsource-parser';
import { StringDecoder } from 'node:string_decoder';
import { createSseReader } from '../src/http/sse-reader.js';

interface Reader {
  write(chunk: Buffer): void;
  end(): void;
}

function bareParser(onData: (data: string) => void): Reader {
  const decoder = new StringDecoder('utf8');
  const parser = createParser({ onEvent: (event) => onData(event.data), onComment: () => undefined });
  return {
    write: (chunk) => parser.feed(decoder.write(chunk)),
    end: () => parser.feed(`${decoder.end()}\n\n`),
  };
}

const oneReader = (onData: (data: string) => void): Reader => createSseReader({ event: onData, comment: () => undefined });

const progress = (i: number) =>
  `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'p-u-1', progress: i, total: 1000 } })}\n\n`;
const result = `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: 'u-1', result: { content: [{ type: 'text', text: 'lorem ipsum dolor sit amet '.repeat(20_000) }] } })}\n\n`;

function chunked(text: string, size: number): Buffer[] {
  const whole = Buffer.from(text);
  const out: Buffer[] = [];
  for (let at = 0; at < whole.length; at += size) out.push(whole.subarray(at, at + size));
  return out;
}

const shapes: Record<string, Buffer[]> = {
  oneSmallEventPerChunk: Array.from({ length: 2_000 }, (_, i) => Buffer.from(progress(i))),
  manyEventsPer64KiBChunk: chunked(Array.from({ length: 20_000 }, (_, i) => progress(i)).join(''), 65_536),
  largeResultIn16KiBChunks: chunked(result, 16_384),
};

const ROUNDS = 9;
const BYTES_PER_RUN = 20e6;

/** Nanoseconds per event for reading `chunks` with `make`, about BYTES_PER_RUN bytes in all. */
function run(make: (onData: (data: string) => void) => Reader, chunks: readonly Buffer[]): number {
  const bytes = chunks.reduce((n, chunk) => n + chunk.length, 0);
  const repeats = Math.max(1, Math.floor(BYTES_PER_RUN / bytes));
  let events = 0;
  const start = process.hrtime.bigint();
  for (let r = 0; r < repeats; r++) {
    const reader = make(() => void events++);
    for (const chunk of chunks) reader.write(chunk);
    reader.end();
  }
  return Number(process.hrtime.bigint() - start) / events;
}

const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const out: Record<string, { bareParserNsPerEvent: number; sseReaderNsPerEvent: number; ratio: number }> = {};
for (const [name, chunks] of Object.entries(shapes)) {
  const bare: number[] = [];
  const one: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Interleaved, each first in every other round, so that neither always runs in the other's wake.
    if (round % 2 === 0) {
      bare.push(run(bareParser, chunks));
      one.push(run(oneReader, chunks));
    } else {
      one.push(run(oneReader, chunks));
      bare.push(run(bareParser, chunks));
    }
  }
  const b = median(bare);
  const o = median(one);
  out[name] = { bareParserNsPerEvent: Math.round(b), sseReaderNsPerEvent: Math.round(o), ratio: Math.round((o / b) * 100) / 100 };
}
console.log(JSON.stringify({ node: process.version, ...out }));
