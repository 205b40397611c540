/**
 * The one SSE reader (src/mcp/sse-text-reader.ts, and sse-reader.ts for bytes) against the WHATWG event-stream rules
 * (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation),
 * written out below as `specEvents` from the text of the rules, plus the one departure the proxy
 * makes on purpose: the end of the stream finishes the last line and event.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { createSseReader, readEventStream } from '../../src/http/sse-reader.js';
import { createSseTextReader, forEachEventData, MAX_EVENT_CHARS } from '../../src/mcp/sse-text-reader.js';
import { MAX_MESSAGE_BYTES } from '../../src/mcp/protocol.js';

/**
 * The rules, as written, over a whole stream: one leading U+FEFF ignored; lines end at CRLF, LF or
 * CR; a blank line dispatches the event (when its data buffer is not empty: data lines were seen),
 * with its data buffer less the last LF; `:` starts a comment; a field is what comes before the
 * first colon (the whole line when there is none), its value what follows, less one leading space;
 * `data` appends the value and an LF. What follows the last line end is discarded, and so is an
 * event without its blank line.
 */
function specEvents(stream: string): string[] {
  const text = stream.startsWith('\uFEFF') ? stream.slice(1) : stream;
  const out: string[] = [];
  let data = '';
  const line = (l: string) => {
    if (l === '') {
      if (data !== '') out.push(data.slice(0, -1));
      data = '';
      return;
    }
    if (l.startsWith(':')) return;
    const colon = l.indexOf(':');
    const field = colon === -1 ? l : l.slice(0, colon);
    let value = colon === -1 ? '' : l.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data += `${value}\n`;
  };
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== '\r' && c !== '\n') continue;
    line(text.slice(start, i));
    if (c === '\r' && text[i + 1] === '\n') i++;
    start = i + 1;
  }
  return out;
}

/** What the reader gives for a stream: the rules, with the end of the stream ending the last line and event. */
const expectedOf = (stream: string): string[] => specEvents(`${stream}\n\n`);

function readText(pieces: readonly string[]): { events: string[]; comments: number } {
  const events: string[] = [];
  let comments = 0;
  const reader = createSseTextReader({ event: (data) => events.push(data), comment: () => comments++ });
  for (const piece of pieces) reader.feed(piece);
  reader.end();
  return { events, comments };
}

function readBytes(chunks: readonly Buffer[]): string[] {
  const events: string[] = [];
  const reader = createSseReader({ event: (data) => events.push(data) });
  for (const chunk of chunks) reader.write(chunk);
  reader.end();
  return events;
}

/** `whole` cut at the given points (taken modulo its length), in order. */
function cut<T extends string | Buffer>(whole: T, points: readonly number[]): T[] {
  const at = [...new Set(points.map((p) => p % (whole.length + 1)))].sort((a, b) => a - b);
  const pieces: T[] = [];
  let start = 0;
  for (const point of [...at, whole.length]) {
    pieces.push(whole.slice(start, point) as T);
    start = point;
  }
  return pieces;
}

const cuts = fc.array(fc.nat(), { maxLength: 16 });

describe('the SSE reader against the event-stream rules', () => {
  // Streams of the characters that matter to the rules (and a few that must not), in any order.
  const token = fc.constantFrom(
    'data',
    'data:',
    'data: ',
    ':',
    ' ',
    '  ',
    'event: message',
    'id: 1',
    'retry: 10',
    'x',
    '{"a":1}',
    'é',
    '🦀',
    '\uFEFF',
    'ï»¿',
    '\n',
    '\r',
    '\r\n',
    '\n\n',
  );
  const stream = fc.array(token, { maxLength: 40 }).map((tokens) => tokens.join(''));

  it('reads any stream as the rules do, cut anywhere, as text or as UTF-8 bytes', () => {
    fc.assert(
      fc.property(stream, cuts, (text, points) => {
        const want = expectedOf(text);
        expect(readText([text]).events).toEqual(want);
        expect(readText(cut(text, points)).events).toEqual(want);
        expect(readBytes(cut(Buffer.from(text, 'utf8'), points))).toEqual(want);
        const whole: string[] = [];
        forEachEventData(text, (data) => whole.push(data));
        expect(whole).toEqual(want);
      }),
      { numRuns: 1000 },
    );
  });

  it('departs from the rules only at the end of the stream: a stream that ends with a blank line reads exactly as they say', () => {
    fc.assert(
      fc.property(stream, fc.constantFrom('\n\n', '\r\r', '\r\n\r\n'), (text, blank) => {
        expect(readText([text + blank]).events).toEqual(specEvents(text + blank));
      }),
    );
  });
});

describe('the SSE reader reads back what a server writes', () => {
  // Event data: anything but CR (a line end inside a line is not expressible); LF splits data lines.
  const dataText = fc
    .array(fc.constantFrom('a', 'Z', ' ', ':', '\n', '{', '"', 'é', '☃', '🦀', '\uFEFF', 'data: '), { minLength: 1, maxLength: 12 })
    .map((units) => units.join(''));
  const extraLine = fc.constantFrom(
    ': keep-alive',
    ':',
    'event: message',
    'event:',
    'id: 42',
    'id',
    'retry: 1000',
    'unknown: field',
    'ignored',
  );
  const eol = fc.constantFrom('\n', '\r', '\r\n');
  const event = fc.record({
    data: dataText,
    // Per data line: a space after the colon or not (always when the value starts with one).
    spaced: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
    // An empty data line written as the bare field name, without a colon.
    bare: fc.boolean(),
    before: fc.array(extraLine, { maxLength: 3 }),
    between: fc.array(extraLine, { maxLength: 2 }),
  });
  const server = fc.record({
    events: fc.array(event, { maxLength: 6 }),
    // Comment-only blocks between events dispatch nothing.
    pings: fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
    eols: fc.array(eol, { minLength: 1, maxLength: 200 }),
    bom: fc.boolean(),
    finalBlank: fc.boolean(),
    // Without its final blank line, the stream may also stop right after its last line's text.
    lastEol: fc.boolean(),
  });
  type Server = typeof server extends fc.Arbitrary<infer T> ? T : never;

  function serialise({ events, pings, eols, bom, finalBlank, lastEol }: Server): string {
    const lines: string[] = [];
    events.forEach(({ data, spaced, bare, before, between }, i) => {
      if (pings[i]) lines.push(': ping', '');
      lines.push(...before);
      data.split('\n').forEach((value, j) => {
        if (value === '' && bare) lines.push('data');
        else lines.push(value.startsWith(' ') || spaced[j] ? `data: ${value}` : `data:${value}`);
        if (j === 0) lines.push(...between);
      });
      lines.push('');
    });
    if (!finalBlank && lines.at(-1) === '') lines.pop();
    let text = bom ? '\uFEFF' : '';
    let previous = '';
    lines.forEach((line, i) => {
      let end: string = eols[i % eols.length]!;
      // A CR then an empty line ended by LF would read as one CRLF: such a server writes CRLF there.
      if (line === '' && previous === '\r' && end === '\n') end = '\r\n';
      if (i === lines.length - 1 && !finalBlank && !lastEol) end = '';
      text += line + end;
      previous = end;
    });
    return text;
  }

  it('any events, any mix of line endings, a BOM or not, a final blank line or not, cut anywhere: the same events', () => {
    fc.assert(
      fc.property(server, cuts, (written, points) => {
        const text = serialise(written);
        const want = written.events.map((e) => e.data);
        expect(readText([text]).events).toEqual(want);
        expect(readText(cut(text, points)).events).toEqual(want);
        expect(readBytes(cut(Buffer.from(text, 'utf8'), points))).toEqual(want);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('the SSE reader, rule by rule', () => {
  const read = (text: string) => readText([text]);

  it('joins data lines with LF', () => {
    expect(read('data: a\ndata: b\ndata:\n\n').events).toEqual(['a\nb\n']);
  });

  it('strips one space after the colon, no more', () => {
    expect(read('data:  two\n\ndata:none\n\n').events).toEqual([' two', 'none']);
  });

  it('takes a line without a colon as a field with an empty value', () => {
    expect(read('data\ndata\n\n').events).toEqual(['\n']);
    expect(read('data\n\n').events).toEqual(['']);
  });

  it('dispatches nothing for an event without data lines', () => {
    expect(read('event: message\nid: 3\n\n: ping\n\n\n\n').events).toEqual([]);
  });

  it('ignores comments, and tells of each one', () => {
    expect(read(': ping\n: data: x\ndata: y\n\n:\n\n')).toEqual({ events: ['y'], comments: 3 });
  });

  it('ignores unknown fields, and compares field names as they are', () => {
    expect(read('Data: x\ndata : y\nfoo: z\ndata: w\n\n').events).toEqual(['w']);
  });

  it('skips one byte order mark at the very start, and only there', () => {
    expect(read('\uFEFFdata: x\n\n').events).toEqual(['x']);
    expect(read('\uFEFF\uFEFFdata: x\n\ndata: y\n\n').events).toEqual(['y']);
    expect(readBytes([Buffer.from('\uFEFF\uFEFFdata: x\n\ndata: y\n\n')])).toEqual(['y']);
    expect(read('data: x\n\n\uFEFFdata: y\n\n').events).toEqual(['x']);
    // The bytes of a BOM read as Latin-1 characters are text, not a BOM.
    expect(read('ï»¿data: x\n\n').events).toEqual([]);
    expect(readBytes([Buffer.from([0xef]), Buffer.from([0xbb, 0xbf]), Buffer.from('data: x\n\n')])).toEqual(['x']);
    expect(readText(['', '\uFEFF', 'data: x\n\n']).events).toEqual(['x']);
  });

  it('reads CR, LF and CRLF line ends, a CRLF split between chunks being one', () => {
    expect(readText(['data: a\r', '\ndata: b\r', '\r']).events).toEqual(['a\nb']);
    expect(readText(['data: a\r', '\r', 'data: b\n\n']).events).toEqual(['a', 'b']);
  });

  it('delivers a last event that ends without its blank line, or without its line end', () => {
    for (const end of ['', '\n', '\r', '\r\n']) expect(read(`data: a\n\ndata: {"b":1}${end}`).events).toEqual(['a', '{"b":1}']);
  });

  it('decodes a UTF-8 character cut between chunks', () => {
    const bytes = Buffer.from('data: ☃🦀\n\n', 'utf8');
    expect(readBytes([...bytes].map((b) => Buffer.from([b])))).toEqual(['☃🦀']);
  });

  it('bounds an event by the largest message read whole', () => {
    expect(MAX_EVENT_CHARS).toBe(MAX_MESSAGE_BYTES);
  });
});

describe('the bound on one event', () => {
  const events = (max: number) => {
    const out: string[] = [];
    return { out, reader: createSseTextReader({ event: (data) => out.push(data) }, max) };
  };

  it('throws when an event still arriving holds more than the bound, on one line or several', () => {
    const line = events(100);
    line.reader.feed(`data: ${'x'.repeat(60)}`);
    expect(() => line.reader.feed('x'.repeat(60))).toThrow(/max buffer size/);

    const lines = events(100);
    lines.reader.feed(`data: ${'x'.repeat(60)}\n`);
    expect(() => lines.reader.feed(`data: ${'x'.repeat(60)}\n`)).toThrow(/max buffer size/);
    expect(lines.out).toEqual([]);
  });

  it('holds any number of events under the bound, whatever they come to together', () => {
    const { out, reader } = events(100);
    const one = `data: ${'x'.repeat(90)}\n\n`;
    for (let i = 0; i < 1000; i++) {
      reader.feed(one.slice(0, 50));
      reader.feed(one.slice(50));
    }
    reader.end();
    expect(out).toHaveLength(1000);
  });

  it('fails the byte reader the same way', () => {
    const reader = createSseReader({ event: () => undefined }, 20);
    reader.write(Buffer.from('data: 12345'));
    expect(() => reader.write(Buffer.from('67890abcdef'))).toThrow(/max buffer size/);
  });

  it('hands on what the event handler throws', () => {
    const reader = createSseReader({
      event: () => {
        throw new Error('handler broke');
      },
    });
    expect(() => reader.write(Buffer.from('data: x\n\n'))).toThrow('handler broke');
  });
});

describe('a Readable body read to its end', () => {
  it('delivers its events as they come, its last one at its end, then tells it is done, once', async () => {
    const body = new PassThrough();
    const seen: string[] = [];
    readEventStream(body, { event: (data) => seen.push(data) }, () => seen.push('done'));
    body.write('\uFEFFdata: a\r\n\r\ndata: b');
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(seen).toEqual(['a']);
    body.end('\ndata: c');
    await once(body, 'close');
    expect(seen).toEqual(['a', 'b\nc', 'done']);
  });

  it('destroys a body whose event a handler cannot take, and tells it is done, once', async () => {
    const body = new PassThrough();
    let done = 0;
    readEventStream(
      body,
      {
        event: () => {
          throw new Error('too deep');
        },
      },
      () => done++,
    );
    body.write('data: x\n\n');
    await once(body, 'close');
    expect(body.destroyed).toBe(true);
    expect(done).toBe(1);
  });

  it('tells a body that breaks it is done, once', async () => {
    const body = new PassThrough();
    let done = 0;
    readEventStream(body, { event: () => undefined }, () => done++);
    const closed = new Promise((resolve) => body.once('close', resolve));
    body.destroy(new Error('reset'));
    await closed;
    expect(done).toBe(1);
  });
});
