/**
 * One MRTR exchange (flows/pooled/mrtr/mrtr.ts) in milliseconds: the upstream's SSE answer is a PassThrough the
 * test writes, the link a recorder of what the proxy sends upstream, the parked registry runs on a
 * fake clock, and each client round is a real request to an in-process HTTP server.
 */
import fc from 'fast-check';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createMrtr, type Exchange, type Mrtr } from '../../src/flows/pooled/mrtr/mrtr.js';
import { createCredentialBinding } from '../../src/session/binding.js';
import { createRequestStateCodec, randomStateKey } from '../../src/session/request-state.js';
import { Cancellation } from '../../src/upstream/client.js';
import type { UpstreamLink } from '../../src/upstream/link.js';
import { createParkedExchanges, type ParkedExchanges, type Schedule } from '../../src/flows/pooled/mrtr/parked.js';
import { StandingCall } from '../../src/flows/pooled/mrtr/standing.js';
import type { NotificationFeed } from '../../src/flows/pooled/listen/feed.js';

const CAPABILITIES = { elicitation: {}, sampling: {}, roots: {} };
const PARAMS = { name: 'tool', arguments: {} };
const event = (message: object) => `event: message\ndata: ${JSON.stringify(message)}\n\n`;
const elicit = (id: string, message: string) =>
  event({ jsonrpc: '2.0', id, method: 'elicitation/create', params: { message, requestedSchema: { type: 'object', properties: {} } } });

let server: Server;
let url: string;
let mrtr: Mrtr;
let parked: ParkedExchanges<Exchange>;
let timers: (() => void)[];
let sent: Record<string, unknown>[];
/** What each client round does with its request, set by the test before it sends the round. */
let onRound: (req: IncomingMessage, res: ServerResponse, params: Record<string, unknown>) => Promise<void>;

const link = {
  label: 1,
  notify: async (body: string) => void sent.push(JSON.parse(body) as Record<string, unknown>),
} as unknown as UpstreamLink;

beforeEach(async () => {
  sent = [];
  timers = [];
  const schedule: Schedule = (run) => {
    timers.push(run);
    return () => void (timers = timers.filter((t) => t !== run));
  };
  parked = createParkedExchanges<Exchange>({ max: 10, timeoutMs: 1000, schedule });
  mrtr = createMrtr({
    codec: createRequestStateCodec({ key: randomStateKey(), ttlMs: 60_000 }),
    parked,
    binding: createCredentialBinding(undefined),
    log: createLogger('silent'),
    metrics: createMetrics(false, () => 0),
  });
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => void onRound(req, res, JSON.parse(body) as Record<string, unknown>));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
});
afterEach(async () => {
  server.closeAllConnections();
  server.close();
});

const tracked = () => ({
  gone: new Cancellation(),
  startedAt: performance.now(),
  sessionLogId: null,
  replayedFor: null,
  failure: null,
  requestId: 1,
  onClose: null,
});
const ctx = (clientId: number) => ({
  method: 'tools/call',
  clientId,
  upstreamId: 'up-1',
  clientProgressToken: undefined,
  upstreamProgressToken: undefined,
  logLevel: undefined,
  serverInfo: { name: 'up', version: '1' },
  clientCapabilities: CAPABILITIES,
});

/** Resolved once the latest first round is being relayed. */
let relayed: Promise<void>;

/** The first round: relayed from `payload` (and its standing-stream questions from `standing`). */
function firstRound(payload: PassThrough, standing?: StandingCall) {
  let started!: () => void;
  relayed = new Promise((resolve) => (started = resolve));
  onRound = async (req, res, params) => {
    const call = { req, res, tracked: tracked() };
    const begun = mrtr.begin(call, 'tools/call', params);
    if (begun.kind !== 'run') throw new Error('expected a run');
    mrtr.relay(call, begun, ctx(1), link, {}, payload, standing);
    started();
  };
  return send(PARAMS);
}

/** A retry: continues the parked exchange (or fails the test). */
function retryRound(id: number, extra: Record<string, unknown>) {
  onRound = async (req, res, params) => {
    const call = { req, res, tracked: tracked() };
    const begun = mrtr.begin(call, 'tools/call', params);
    // Not a parked exchange of this process: say so instead of running anything.
    if (begun.kind !== 'resume') return void res.end(JSON.stringify({ kind: begun.kind }));
    mrtr.resume(call, begun, { ...ctx(id), upstreamId: undefined } as never, {});
  };
  return send({ ...PARAMS, ...extra });
}

async function send(params: Record<string, unknown>) {
  const res = await fetch(url, { method: 'POST', body: JSON.stringify(params) });
  const text = await res.text();
  const data = res.headers.get('content-type')?.startsWith('text/event-stream')
    ? text
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => JSON.parse(l.slice(6)) as Record<string, any>)
    : [JSON.parse(text) as Record<string, any>];
  return { status: res.status, messages: data, last: data.at(-1)! };
}

describe('an MRTR exchange', () => {
  it('collects questions written together, even in separate chunks, into one input_required', async () => {
    const payload = new PassThrough();
    const round = firstRound(payload);
    payload.write(elicit('s1', 'First?'));
    payload.write(elicit('s2', 'Second?'));
    const { last } = await round;
    expect(last.result.resultType).toBe('input_required');
    expect(Object.values(last.result.inputRequests).map((r: any) => r.params.message)).toEqual(['First?', 'Second?']);
    expect(parked.size).toBe(1);
  });

  it('answers what the retry answered, asks again for the rest, then relays the answer to the last retry', async () => {
    const payload = new PassThrough();
    const round = firstRound(payload);
    payload.write(elicit('s1', 'First?') + elicit('s2', 'Second?'));
    const first = (await round).last.result;
    const [k1, k2] = Object.keys(first.inputRequests);

    const partial = await retryRound(2, {
      inputResponses: { [k1!]: { action: 'accept', content: { a: 1 } } },
      requestState: first.requestState,
    });
    expect(partial.last).toMatchObject({ id: 2, result: { resultType: 'input_required' } });
    expect(Object.keys(partial.last.result.inputRequests)).toEqual([k2]);
    expect(sent).toEqual([{ jsonrpc: '2.0', id: 's1', result: { action: 'accept', content: { a: 1 } } }]);

    const done = retryRound(3, { inputResponses: { [k2!]: { action: 'decline' } }, requestState: partial.last.result.requestState });
    payload.write(event({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'dropped: no logLevel' } }));
    payload.end(event({ jsonrpc: '2.0', id: 'up-1', result: { content: [{ type: 'text', text: 'ok' }] } }));
    const final = await done;
    expect(final.last).toMatchObject({
      id: 3,
      result: { resultType: 'complete', content: [{ text: 'ok' }], _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'up' } } },
    });
    expect(sent[1]).toEqual({ jsonrpc: '2.0', id: 's2', result: { action: 'decline' } });
    expect(parked.size).toBe(0);
  });

  it('takes questions from the standing stream as its own: one that came before the relay began, one while parked', async () => {
    let released = 0;
    const feed = { release: () => void released++ } as unknown as NotificationFeed;
    const refused: unknown[] = [];
    const standing = new StandingCall(CAPABILITIES, feed, (id) => void refused.push(id));
    const question = (message: string) => ({ message, requestedSchema: { type: 'object', properties: {} } });
    // Before the upstream's answer was read: it waits for the exchange.
    standing.ask('g1', 'elicitation/create', question('Early?'));
    const payload = new PassThrough();
    const first = (await firstRound(payload, standing)).last.result;
    expect(first.resultType).toBe('input_required');
    expect(Object.values(first.inputRequests).map((r: any) => r.params.message)).toEqual(['Early?']);
    // While parked: kept for the retry, which answers the first and is asked the second.
    standing.ask('g2', 'elicitation/create', question('Late?'));
    const [k1] = Object.keys(first.inputRequests);
    const second = await retryRound(2, {
      inputResponses: { [k1!]: { action: 'accept', content: { a: 1 } } },
      requestState: first.requestState,
    });
    expect(sent).toEqual([{ jsonrpc: '2.0', id: 'g1', result: { action: 'accept', content: { a: 1 } } }]);
    expect(Object.values(second.last.result.inputRequests).map((r: any) => r.params.message)).toEqual(['Late?']);
    const [k2] = Object.keys(second.last.result.inputRequests);
    const done = retryRound(3, { inputResponses: { [k2!]: { action: 'decline' } }, requestState: second.last.result.requestState });
    // Relaying again (the answer went upstream): the rest of the answer reaches the last retry.
    await new Promise<void>((resolve) => {
      const check = () => (sent.length === 2 ? resolve() : setImmediate(check));
      check();
    });
    payload.end(event({ jsonrpc: '2.0', id: 'up-1', result: { content: [{ type: 'text', text: 'ok' }] } }));
    expect((await done).last).toMatchObject({ id: 3, result: { resultType: 'complete', content: [{ text: 'ok' }] } });
    expect(sent[1]).toEqual({ jsonrpc: '2.0', id: 'g2', result: { action: 'decline' } });
    // The answer is over: the call leaves the standing stream, and a late question is refused.
    if (!payload.destroyed) await once(payload, 'close');
    expect(released).toBe(1);
    standing.ask('g3', 'elicitation/create', question('Too late?'));
    expect(refused).toEqual(['g3']);
  });

  it('parks at a question from the standing stream that comes while the answer is being relayed', async () => {
    const feed = { release: () => {} } as unknown as NotificationFeed;
    const standing = new StandingCall(CAPABILITIES, feed, () => {});
    const payload = new PassThrough();
    const round = firstRound(payload, standing);
    await relayed;
    standing.ask('g1', 'sampling/createMessage', { messages: [], maxTokens: 1 });
    const { last } = await round;
    expect(last.result.resultType).toBe('input_required');
    expect(Object.values(last.result.inputRequests).map((r: any) => r.method)).toEqual(['sampling/createMessage']);
    expect(parked.size).toBe(1);
  });

  it('a retry that replays an older round of the same exchange does not take it over', async () => {
    const payload = new PassThrough();
    const round = firstRound(payload);
    payload.write(elicit('s1', 'One?') + elicit('s2', 'Two?'));
    const first = (await round).last.result;
    const [k1] = Object.keys(first.inputRequests);
    await retryRound(2, { inputResponses: { [k1!]: { action: 'decline' } }, requestState: first.requestState });
    expect((await retryRound(3, { inputResponses: {}, requestState: first.requestState })).last).toEqual({ kind: 'run' });
    expect(parked.size).toBe(1);
  });

  it('puts input_required at the end of the stream when progress was streamed first, progress tokens mapped back', async () => {
    const payload = new PassThrough();
    onRound = async (req, res, params) => {
      const call = { req, res, tracked: tracked() };
      const begun = mrtr.begin(call, 'tools/call', params);
      if (begun.kind !== 'run') throw new Error('expected a run');
      mrtr.relay(call, begun, { ...ctx(1), clientProgressToken: 7, upstreamProgressToken: 'up-1' }, link, {}, payload);
    };
    const round = send(PARAMS);
    payload.write(event({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'up-1', progress: 1 } }));
    payload.write(elicit('s1', 'Now?'));
    const { status, messages } = await round;
    expect(status).toBe(200);
    expect(messages).toHaveLength(2);
    expect(messages[0]).toEqual({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 7, progress: 1 } });
    expect(messages[1]).toMatchObject({ id: 1, result: { resultType: 'input_required' } });
  });

  it('reads an upstream answer that starts with a byte order mark', async () => {
    const payload = new PassThrough();
    onRound = async (req, res, params) => {
      const call = { req, res, tracked: tracked() };
      const begun = mrtr.begin(call, 'tools/call', params);
      if (begun.kind !== 'run') throw new Error('expected a run');
      mrtr.relay(call, begun, { ...ctx(1), clientProgressToken: 7, upstreamProgressToken: 'up-1' }, link, {}, payload);
    };
    const round = send(PARAMS);
    payload.write(
      `\uFEFFdata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'up-1', progress: 1 } })}\n\n`,
    );
    payload.write(elicit('s1', 'Now?'));
    const { messages } = await round;
    expect(messages).toHaveLength(2);
    expect(messages[0]).toEqual({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 7, progress: 1 } });
    expect(messages[1]).toMatchObject({ id: 1, result: { resultType: 'input_required' } });
  });

  it('ends an exchange whose retry never comes: a cancellation, then error answers, the stream discarded', async () => {
    const payload = new PassThrough();
    const round = firstRound(payload);
    payload.write(elicit('s1', 'Anyone?'));
    await round;
    expect(timers).toHaveLength(1);
    timers[0]!();
    await expect
      .poll(() => sent)
      .toEqual([
        { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'up-1', reason: 'the client did not answer in time' } },
        { jsonrpc: '2.0', id: 's1', error: { code: -32000, message: 'No answer: the client did not answer in time (mcp-session-proxy)' } },
      ]);
    expect(payload.destroyed).toBe(true);
    expect(parked.size).toBe(0);
  });

  it('answers a question heard on the standing stream while parked with an error when the exchange ends', async () => {
    const feed = { release: () => {} } as unknown as NotificationFeed;
    const standing = new StandingCall(CAPABILITIES, feed, () => {});
    const payload = new PassThrough();
    const round = firstRound(payload, standing);
    payload.write(elicit('s1', 'Anyone?'));
    await round;
    standing.ask('g1', 'elicitation/create', { message: 'Still there?', requestedSchema: { type: 'object', properties: {} } });
    expect(timers).toHaveLength(1);
    timers[0]!();
    const noAnswer = { code: -32000, message: 'No answer: the client did not answer in time (mcp-session-proxy)' };
    await expect
      .poll(() => sent)
      .toEqual([
        { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'up-1', reason: 'the client did not answer in time' } },
        { jsonrpc: '2.0', id: 's1', error: noAnswer },
        { jsonrpc: '2.0', id: 'g1', error: noAnswer },
      ]);
  });

  it('fails the call with -32021 at a question for an undeclared capability; upstream, cancels it, then refuses the question', async () => {
    const payload = new PassThrough();
    // The cancellation is delivered when the test says: the refusal must wait for it.
    let deliver!: () => void;
    const delivered = new Promise<void>((resolve) => (deliver = resolve));
    const gated = {
      label: 1,
      notify: (body: string) => {
        const message = JSON.parse(body) as Record<string, unknown>;
        sent.push(message);
        return message.method === 'notifications/cancelled' ? delivered : Promise.resolve();
      },
    } as unknown as UpstreamLink;
    onRound = async (req, res, params) => {
      const call = { req, res, tracked: tracked() };
      const begun = mrtr.begin(call, 'tools/call', params);
      if (begun.kind !== 'run') throw new Error('expected a run');
      mrtr.relay(call, begun, { ...ctx(1), clientCapabilities: { elicitation: {} } }, gated, {}, payload);
    };
    const round = send(PARAMS);
    payload.write(event({ jsonrpc: '2.0', id: 'r1', method: 'roots/list' }));
    const answer = await round;
    expect(answer.status).toBe(400);
    expect(answer.last).toMatchObject({ id: 1, error: { code: -32021, data: { requiredCapabilities: { roots: {} } } } });
    expect(sent).toEqual([
      {
        jsonrpc: '2.0',
        method: 'notifications/cancelled',
        params: { requestId: 'up-1', reason: 'the request ended (missing-capability)' },
      },
    ]);
    deliver();
    await expect.poll(() => sent.length).toBe(2);
    expect(sent[1]).toMatchObject({ id: 'r1', error: { code: -32601 } });
  });

  it('answers an upstream that ends without an answer with an error, and a cut one too', async () => {
    const quiet = new PassThrough();
    const round = firstRound(quiet);
    quiet.end();
    expect((await round).last).toMatchObject({ id: 1, error: { data: { reason: 'UPSTREAM_BAD_ANSWER' } } });

    const cut = new PassThrough();
    const streamed = firstRound(cut);
    cut.write(event({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'x', progress: 1 } }));
    cut.write(': keepalive\n\n');
    // Cut once the relay reads it (a stream destroyed before is the next test's case).
    await relayed;
    cut.destroy(new Error('cut'));
    expect((await streamed).last).toMatchObject({ id: 1, error: { data: { reason: 'UPSTREAM_CUT' } } });
  });

  it('answers at once for an upstream stream that broke before the relay began', async () => {
    const broken = new PassThrough();
    broken.on('error', () => undefined);
    broken.destroy(new Error('gone'));
    expect((await firstRound(broken)).last).toMatchObject({ id: 1, error: { data: { reason: 'UPSTREAM_CUT' } } });
  });

  it('answers every client, whatever garbage the upstream streams (never throws, never hangs)', async () => {
    const upstreamMessage = fc.oneof(
      fc.string(),
      fc.jsonValue().map((v) => `data: ${JSON.stringify(v)}\n\n`),
      fc
        .record({
          id: fc.oneof(fc.string(), fc.integer()),
          method: fc.constantFrom('elicitation/create', 'sampling/createMessage', 'roots/list', 'ping', 'x/y'),
          params: fc.anything(),
        })
        .map((m) => event({ jsonrpc: '2.0', ...m })),
      fc.constantFrom(
        event({ jsonrpc: '2.0', id: 'up-1', result: {} }),
        event({ jsonrpc: '2.0', id: 'up-1', error: { code: 1, message: 'x' } }),
        ': c\n\n',
        '\r\n',
        'data: {',
      ),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(upstreamMessage, { maxLength: 8 }), fc.boolean(), async (chunks, cut) => {
        const payload = new PassThrough();
        const round = firstRound(payload);
        for (const chunk of chunks) payload.write(chunk);
        if (cut) {
          await relayed;
          payload.destroy(new Error('cut'));
        } else payload.end();
        const { status, last } = await round;
        expect([200, 400, 502]).toContain(status);
        expect(last.jsonrpc).toBe('2.0');
        expect(last.id).toBe(1);
        parked.clear();
      }),
      { numRuns: 60 },
    );
  });
});
