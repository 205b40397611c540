import fc from 'fast-check';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { JsonRpcId } from '../../src/errors.js';
import { MAX_MESSAGE_BYTES } from '../../src/mcp/protocol.js';
import { toModernMessage, type AnswerContext, type Translated } from '../../src/mcp/translate.js';
import { modernEventStream } from '../../src/http/event-stream.js';

const serverInfo = { name: 'legacy', version: '1.0.0' };
const ctx: AnswerContext = {
  method: 'tools/call',
  clientId: 7,
  upstreamId: 'u-1',
  clientProgressToken: 'progress-test-1',
  upstreamProgressToken: 'p-u-1',
  logLevel: 'info',
  serverInfo,
};
const map = (message: unknown): Translated => toModernMessage(message, ctx);

interface Run {
  readonly text: string;
  readonly refused: [JsonRpcId, string][];
}

/** Feed the chunks one write at a time and read everything the transform emits. */
async function run(chunks: readonly (string | Buffer)[], mapper = map): Promise<Run> {
  const refused: [JsonRpcId, string][] = [];
  const stream = modernEventStream(mapper, (id, method) => refused.push([id, method]));
  const out: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => out.push(chunk));
  const ended = once(stream, 'end');
  for (const chunk of chunks) stream.write(chunk);
  stream.end();
  await ended;
  return { text: Buffer.concat(out).toString('utf8'), refused };
}

const bytes = (text: string): Buffer[] => [...Buffer.from(text, 'utf8')].map((byte) => Buffer.from([byte]));

const progress = { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'p-u-1', progress: 1, total: 2 } };
const logInfo = { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'héllo ☃ 🦀' } };
const logDebug = { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'debug', data: 'noise' } };
const response = { jsonrpc: '2.0', id: 'u-1', result: { content: [{ type: 'text', text: 'done ✓' }] } };

const upstreamEvent = (message: unknown, id?: string) =>
  `${id === undefined ? '' : `id: ${id}\n`}event: message\ndata: ${JSON.stringify(message)}\n\n`;
const upstream = [
  upstreamEvent(progress, 'ev-1'),
  upstreamEvent(logDebug, 'ev-2'),
  upstreamEvent(logInfo, 'ev-3'),
  upstreamEvent(response, 'ev-4'),
].join('');

const modernEvent = (message: unknown) => `event: message\ndata: ${JSON.stringify(message)}\n\n`;
const expected = [
  modernEvent({ ...progress, params: { ...progress.params, progressToken: 'progress-test-1' } }),
  modernEvent(logInfo),
  modernEvent({
    jsonrpc: '2.0',
    id: 7,
    result: { ...response.result, resultType: 'complete', _meta: { 'io.modelcontextprotocol/serverInfo': serverInfo } },
  }),
].join('');

describe('modernEventStream: re-emitting an upstream SSE answer', () => {
  it('translates each event, drops what is not for the client, and writes no id lines', async () => {
    const { text, refused } = await run([upstream]);
    expect(text).toBe(expected);
    expect(refused).toEqual([]);
  });

  it('reads the stream fed byte by byte, multi-byte characters split included', async () => {
    expect((await run(bytes(upstream))).text).toBe(expected);
  });

  it('reads CRLF and CR line endings', async () => {
    expect((await run([upstream.replaceAll('\n', '\r\n')])).text).toBe(expected);
    expect((await run(bytes(upstream.replaceAll('\n', '\r\n')))).text).toBe(expected);
    expect((await run(bytes(upstream.replaceAll('\n', '\r')))).text).toBe(expected);
  });

  it('joins multi-line data fields into one message', async () => {
    const pretty = JSON.stringify(response, null, 2)
      .split('\n')
      .map((line) => `data: ${line}\n`)
      .join('');
    expect(pretty.split('data: ').length).toBeGreaterThan(5);
    const { text } = await run([`event: message\n${pretty}\n`]);
    expect(text).toBe(expected.slice(expected.lastIndexOf('event: message')));
  });

  it('keeps a last event cut without its blank line', async () => {
    const last = `event: message\ndata: ${JSON.stringify(response)}`;
    const want = expected.slice(expected.lastIndexOf('event: message'));
    for (const ending of ['', '\n', '\r', '\r\n']) {
      expect((await run([last + ending])).text).toBe(want);
      expect((await run(bytes(last + ending))).text).toBe(want);
    }
  });

  it('passes comments on as keep-alives and drops retry fields, priming events and data that is not JSON', async () => {
    const body = [
      'id: prime-0\nretry: 1000\ndata: \n\n',
      ': ping from upstream\n\n',
      'event: message\ndata: not json\n\n',
      upstreamEvent(response),
    ].join('');
    expect((await run([body])).text).toBe(`: keepalive\n\n${expected.slice(expected.lastIndexOf('event: message'))}`);
  });

  it('skips a byte order mark at the start of the stream', async () => {
    expect((await run([`\uFEFF${upstream}`])).text).toBe(expected);
    expect((await run(bytes(`\uFEFF${upstream}`))).text).toBe(expected);
  });

  it('refuses server→client requests through onRefuse and sends the client nothing for them', async () => {
    const body = [
      upstreamEvent({ jsonrpc: '2.0', id: 0, method: 'elicitation/create', params: { message: 'name?' } }),
      upstreamEvent({ jsonrpc: '2.0', id: 'srv-2', method: 'roots/list' }),
      upstreamEvent(response),
    ].join('');
    const { text, refused } = await run([body]);
    expect(text).toBe(expected.slice(expected.lastIndexOf('event: message')));
    expect(refused).toEqual([
      [0, 'elicitation/create'],
      ['srv-2', 'roots/list'],
    ]);
  });

  it('sends nothing when every event is dropped', async () => {
    const body = [
      upstreamEvent({ jsonrpc: '2.0', id: 'u-2', result: {} }),
      upstreamEvent({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' }),
      upstreamEvent(logDebug),
    ].join('');
    expect(await run([body])).toEqual({ text: '', refused: [] });
  });

  it('fails the stream, rather than throwing, when map throws', async () => {
    const stream = modernEventStream(
      () => {
        throw new Error('map broke');
      },
      () => undefined,
    );
    stream.resume();
    const failed = once(stream, 'error');
    stream.end(upstreamEvent(response));
    const [error] = (await failed) as [Error];
    expect(error.message).toBe('map broke');
  });

  it('fails the stream, rather than buffer without end, when one event outgrows the largest message', async () => {
    const stream = modernEventStream(map, () => undefined);
    stream.resume();
    const failed = once(stream, 'error');
    const mebibyte = Buffer.alloc(1024 * 1024, 'x');
    stream.write('event: message\ndata: ');
    for (let written = 0; written <= MAX_MESSAGE_BYTES && stream.errored === null; written += mebibyte.length) stream.write(mebibyte);
    expect(stream.errored?.message).toMatch(/max buffer size/);
    expect((await failed)[0]).toBe(stream.errored);
  });

  it('stops taking upstream chunks while the client is not reading', () => {
    const stream = modernEventStream(map, () => undefined);
    let accepted = 0;
    while (stream.write(upstreamEvent(response)) && accepted < 10_000) accepted++;
    // Nobody reads: the readable side fills to its high-water mark and write() asks to wait.
    expect(accepted).toBeLessThan(10_000);
    stream.destroy();
  });
});

describe('modernEventStream under arbitrary chunking', () => {
  const lineEnding = fc.constantFrom('\n', '\r\n', '\r');
  const message = fc.oneof(
    fc.constant(progress),
    fc.constant(logInfo),
    fc.constant(logDebug),
    fc.record({ jsonrpc: fc.constant('2.0'), id: fc.constant('u-1'), result: fc.dictionary(fc.string(), fc.jsonValue()) }),
    fc.record({ jsonrpc: fc.constant('2.0'), id: fc.oneof(fc.integer(), fc.string()), method: fc.constantFrom('ping', 'roots/list') }),
    fc.jsonValue(),
  );
  const event = fc.record({
    message,
    // Pretty-printed JSON spreads one message over several data lines.
    pretty: fc.boolean(),
    id: fc.option(
      fc.string({ unit: 'grapheme-ascii' }).filter((s) => !/[\r\n]/.test(s)),
      { nil: undefined },
    ),
    comment: fc.boolean(),
  });
  const streams = fc.record({ events: fc.array(event, { maxLength: 8 }), eol: lineEnding, cutLast: fc.boolean() });
  type Stream = typeof streams extends fc.Arbitrary<infer T> ? T : never;

  function textOf({ events, eol, cutLast }: Stream): string {
    let text = '';
    for (const { message: m, pretty, id, comment } of events) {
      if (comment) text += `: keep${eol}${eol}`;
      if (id !== undefined) text += `id: ${id}${eol}`;
      text += `event: message${eol}`;
      for (const line of JSON.stringify(m, null, pretty ? 2 : undefined).split('\n')) text += `data: ${line}${eol}`;
      text += eol;
    }
    // A stream may end right after its last data line.
    return cutLast && text.endsWith(eol + eol) ? text.slice(0, -eol.length) : text;
  }

  function expectedOf({ events }: Stream): Run {
    let text = '';
    const refused: [JsonRpcId, string][] = [];
    for (const { message: m, comment } of events) {
      if (comment) text += ': keepalive\n\n';
      const translated = map(JSON.parse(JSON.stringify(m)));
      if (translated.kind === 'forward') text += `event: message\ndata: ${JSON.stringify(translated.message)}\n\n`;
      if (translated.kind === 'refuse-upstream') refused.push([translated.id, translated.method]);
    }
    return { text, refused };
  }

  it('yields the same output for any split as for one chunk, and the output the messages call for', async () => {
    await fc.assert(
      fc.asyncProperty(streams, fc.array(fc.nat(), { maxLength: 12 }), async (stream, cuts) => {
        const body = Buffer.from(textOf(stream), 'utf8');
        const points = [...new Set(cuts.map((cut) => cut % (body.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let start = 0;
        for (const point of [...points, body.length]) {
          chunks.push(body.subarray(start, point));
          start = point;
        }
        const whole = await run([body]);
        expect(whole).toEqual(expectedOf(stream));
        expect(await run(chunks)).toEqual(whole);
      }),
      { numRuns: 300 },
    );
  });
});
