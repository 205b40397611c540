/**
 * The upstream link's state machine against an in-memory upstream (test/helpers/fake-upstream.ts):
 * the races that real processes hit only by luck, made to happen every time, in milliseconds.
 */
import { describe, expect, it } from 'vitest';
import { ProxyError, UpstreamAnswer } from '../../src/errors.js';
import { Cancellation, type UpstreamHeaders } from '../../src/upstream/client.js';
import { openLink, UpstreamLink, type Answer, type Outgoing } from '../../src/upstream/link.js';
import { fakeLinkDeps, FakeUpstream } from '../helpers/fake-upstream.js';

const INIT_PARAMS = '{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}';

function headers(): UpstreamHeaders {
  return { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: 'Bearer alice' };
}

function message(body: string | undefined, extra: Partial<Outgoing> = {}): Outgoing {
  return {
    headers: headers(),
    body: body === undefined ? undefined : Buffer.from(body),
    initialized: false,
    versionFromLink: false,
    cancel: new Cancellation(),
    replayed: undefined,
    ...extra,
  };
}

const call = (id: number) => message(`{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"echo"}}`);
const clientInitialized = () => message('{"jsonrpc":"2.0","method":"notifications/initialized"}', { initialized: true });

async function statusOf(answer: Promise<Answer | undefined>): Promise<number | 'absorbed'> {
  const a = await answer;
  if (a === undefined) return 'absorbed';
  if (!Buffer.isBuffer(a.payload)) a.payload.resume();
  return a.response.statusCode;
}

/** A link opened by a client's initialize, as the route opens one. */
async function opened(upstream = new FakeUpstream()) {
  const { deps, metrics } = fakeLinkDeps(upstream);
  const { link } = await openLink(deps, {
    initParams: INIT_PARAMS,
    headers: headers(),
    body: Buffer.from(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":${INIT_PARAMS}}`),
    requestId: 0,
    cancel: new Cancellation(),
  });
  if (link === undefined) throw new Error('the fake refused initialize');
  return { link, upstream, metrics, deps };
}

/** Opened and past the client's notifications/initialized: the usual live session. */
async function live(upstream = new FakeUpstream()) {
  const setup = await opened(upstream);
  expect(await statusOf(setup.link.send(clientInitialized()))).toBe(202);
  expect(setup.link.kind).toBe('live');
  return setup;
}

async function reason(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ProxyError) return error.reason;
    throw error;
  }
  throw new Error('expected a ProxyError');
}

describe("opening: the client's initialize and notifications/initialized", () => {
  it("awaits the client's notifications/initialized, forwards it once, then is live", async () => {
    const { link, upstream } = await opened();
    expect(link.kind).toBe('awaiting-initialized');
    expect(link.protocolVersion).toBe('2025-06-18');
    expect(await statusOf(link.send(clientInitialized()))).toBe(202);
    // A second one (a client repeating itself) is absorbed: the upstream session has one.
    expect(await statusOf(link.send(clientInitialized()))).toBe('absorbed');
    expect(upstream.count('notifications/initialized')).toBe(1);
    expect(link.kind).toBe('live');
  });

  it("a refused initialize yields no link and the upstream's answer", async () => {
    const upstream = new FakeUpstream();
    upstream.refuseInitialize = 400;
    const { deps } = fakeLinkDeps(upstream);
    const result = await openLink(deps, {
      initParams: INIT_PARAMS,
      headers: headers(),
      body: Buffer.from(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":${INIT_PARAMS}}`),
      requestId: 0,
      cancel: new Cancellation(),
    });
    expect(result.link).toBeUndefined();
    expect(result.initialized.kind).toBe('refused');
    expect(result.initialized.response.statusCode).toBe(400);
  });
});

describe('one replay per loss, however many requests meet it', () => {
  it('N concurrent requests meeting one loss: exactly one replay, every request retried and answered', async () => {
    const N = 25;
    const { link, upstream, metrics } = await live();
    upstream.forgetAll();
    // All N reach the upstream (and are refused) before any refusal comes back.
    const refusals = upstream.gate((s) => s.rpcMethod === 'tools/call');
    const answers = Array.from({ length: N }, (_, i) => statusOf(link.send(call(i + 1))));
    await refusals.reached(N);
    refusals.release();
    expect(await Promise.all(answers)).toEqual(Array.from({ length: N }, () => 200));
    expect(upstream.count('initialize')).toBe(2); // the client's, and one replay
    expect(metrics.replays).toEqual(['status_404']);
    // The replay sent its own notifications/initialized on the new session.
    expect(upstream.count('notifications/initialized')).toBe(2);
    const retries = upstream.seen.filter((s) => s.rpcMethod === 'tools/call').slice(N);
    expect(new Set(retries.map((s) => s.sessionId))).toEqual(new Set(['upstream-2']));
  });

  it('requests that arrive during the replay wait for it instead of meeting the loss again', async () => {
    const { link, upstream, metrics } = await live();
    upstream.forgetAll();
    const replay = upstream.gate((s) => s.rpcMethod === 'initialize');
    const first = link.send(call(1));
    await replay.reached();
    const later = [link.send(call(2)), link.send(call(3))];
    replay.release();
    expect(await Promise.all([first, ...later].map(statusOf))).toEqual([200, 200, 200]);
    expect(metrics.replays).toEqual(['status_404']);
    // Only the first request was ever refused.
    expect(upstream.seen.filter((s) => s.rpcMethod === 'tools/call').map((s) => s.sessionId)).toEqual([
      'upstream-1',
      'upstream-2',
      'upstream-2',
      'upstream-2',
    ]);
  });

  it('a request that met the loss before an earlier replay finished does not replay again', async () => {
    const { link, upstream, metrics } = await live();
    upstream.forgetAll();
    // Request 2 is refused with the old id, but its refusal arrives after request 1's replay.
    const slowRefusal = upstream.gate((s) => s.rpcId === 2);
    const second = link.send(call(2));
    await slowRefusal.reached();
    expect(await statusOf(link.send(call(1)))).toBe(200);
    slowRefusal.release();
    expect(await statusOf(second)).toBe(200);
    expect(metrics.replays).toEqual(['status_404']);
    expect(upstream.count('initialize')).toBe(2);
  });
});

describe('DELETE during a replay', () => {
  it('the link stays ended and the upstream session the replay made is ended upstream', async () => {
    const { link, upstream } = await live();
    upstream.forgetAll();
    const replay = upstream.gate((s) => s.rpcMethod === 'initialize');
    const pending = link.send(call(1));
    await replay.reached();
    const ending = link.end({ authorization: 'Bearer alice' });
    expect(link.kind).toBe('ended');
    replay.release();
    expect(await reason(pending)).toBe('SESSION_NOT_FOUND');
    await ending;
    expect(link.kind).toBe('ended');
    // The replay's session (upstream-2) was DELETEd, with the client's credentials.
    expect(upstream.deletes().map((s) => [s.sessionId, s.authorization])).toEqual([['upstream-2', 'Bearer alice']]);
    expect(await reason(link.send(call(2)))).toBe('SESSION_NOT_FOUND');
    expect(upstream.count('tools/call')).toBe(1);
  });

  it('ending a live link DELETEs its upstream session once; sends are refused after', async () => {
    const { link, upstream } = await live();
    await Promise.all([link.end(headers()), link.end()]);
    expect(upstream.deletes().map((s) => s.sessionId)).toEqual(['upstream-1']);
    expect(await reason(link.send(call(1)))).toBe('SESSION_NOT_FOUND');
  });
});

describe('rotated ids', () => {
  it('follows a rotated id from a current answer', async () => {
    const { link, upstream } = await live();
    upstream.rotate = true;
    expect(await statusOf(link.send(call(1)))).toBe(200);
    upstream.rotate = false;
    expect(await statusOf(link.send(call(2)))).toBe(200);
    expect(upstream.seen.filter((s) => s.rpcMethod === 'tools/call').map((s) => s.sessionId)).toEqual(['upstream-1', 'upstream-2']);
  });

  it('ignores a rotated id carried by an answer to a request sent before a replay', async () => {
    const { link, upstream } = await live();
    // Request 1 reaches the old session, which answers (late) with a rotated id: upstream-2.
    upstream.rotate = true;
    const late = upstream.gate((s) => s.rpcId === 1);
    const stale = link.send(call(1));
    await late.reached();
    upstream.rotate = false;
    // The upstream restarts; request 2 meets the loss and the replay makes upstream-3.
    upstream.forgetAll();
    expect(await statusOf(link.send(call(2)))).toBe(200);
    late.release();
    const staleAnswer = await stale;
    expect(staleAnswer?.response.headers['mcp-session-id']).toBe('upstream-2');
    expect(await statusOf(link.send(call(3)))).toBe(200);
    const lastCall = upstream.seen.filter((s) => s.rpcMethod === 'tools/call').at(-1);
    expect(lastCall).toMatchObject({ rpcId: 3, sessionId: 'upstream-3' });
  });
});

describe('notifications/initialized: exactly one reaches each upstream session', () => {
  it("a reopened link: the client's notifications/initialized while the replay sends its own", async () => {
    const upstream = new FakeUpstream();
    upstream.strict = true;
    const { deps, metrics } = fakeLinkDeps(upstream);
    const link = new UpstreamLink(deps, INIT_PARAMS, { kind: 'reopened', protocolVersion: '2025-06-18' });
    expect(link.kind).toBe('unopened');
    const replay = upstream.gate((s) => s.rpcMethod === 'initialize');
    const first = call(1);
    const answered = link.send(first);
    await replay.reached();
    const theirs = link.send(clientInitialized());
    replay.release();
    expect(await statusOf(answered)).toBe(200);
    expect(await statusOf(theirs)).toBe('absorbed');
    expect(upstream.count('initialize')).toBe(1);
    expect(upstream.count('notifications/initialized')).toBe(1);
    expect(metrics.replays).toEqual(['reopened']);
    expect(first.replayed).toBe('reopened');
  });

  it("the client's went to another replica: the proxy sends one; the client's arriving meanwhile is absorbed", async () => {
    const upstream = new FakeUpstream();
    upstream.strict = true;
    const { link } = await opened(upstream);
    const ours = upstream.gate((s) => s.rpcMethod === 'notifications/initialized');
    const answered = link.send(call(1));
    await ours.reached();
    expect(link.kind).toBe('acknowledging');
    const theirs = link.send(clientInitialized());
    ours.release();
    expect(await statusOf(answered)).toBe(200);
    expect(await statusOf(theirs)).toBe('absorbed');
    expect(upstream.count('notifications/initialized')).toBe(1);
    expect(upstream.count('initialize')).toBe(1);
  });

  it("a client's notifications/initialized that meets a loss is absorbed: the replay sent one", async () => {
    const { link, upstream, metrics } = await opened();
    upstream.forgetAll();
    expect(await statusOf(link.send(clientInitialized()))).toBe('absorbed');
    expect(metrics.replays).toEqual(['status_404']);
    // The client's (refused), then the replay's.
    expect(upstream.seen.filter((s) => s.rpcMethod === 'notifications/initialized').map((s) => s.sessionId)).toEqual([
      'upstream-1',
      'upstream-2',
    ]);
  });
});

describe('a failed replay', () => {
  it('answers REPLAY_FAILED to every request that waited for it; the next request replays again and works', async () => {
    const { link, upstream, metrics } = await live();
    upstream.forgetAll();
    upstream.refuseInitialize = 500;
    const refusals = upstream.gate((s) => s.rpcMethod === 'tools/call');
    const failing = [1, 2, 3].map((i) => link.send(call(i)).catch((e: unknown) => e));
    await refusals.reached(3);
    refusals.release();
    const errors = await Promise.all(failing);
    for (const error of errors) {
      expect(error).toBeInstanceOf(ProxyError);
      expect(error).toMatchObject({ reason: 'REPLAY_FAILED', detail: { upstreamStatus: 500 } });
    }
    expect(upstream.count('initialize')).toBe(2);
    expect(metrics.replayFailures).toBe(1);
    expect(link.kind).toBe('unopened');

    upstream.refuseInitialize = undefined;
    const next = call(4);
    expect(await statusOf(link.send(next))).toBe(200);
    expect(next.replayed).toBe('status_404');
    expect(link.kind).toBe('live');
    expect(metrics.replays).toEqual(['status_404', 'status_404']);
  });

  it('an auth challenge during a replay reaches the client as the upstream sent it', async () => {
    const { link, upstream } = await live();
    upstream.forgetAll();
    upstream.refuseInitialize = 401;
    const error = await link.send(call(1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamAnswer);
    expect((error as UpstreamAnswer).status).toBe(401);
  });
});

describe('event ids after a re-establishment', () => {
  it('a GET stream resumed after the upstream session was replaced goes without Last-Event-ID', async () => {
    const { link, upstream } = await live();
    upstream.forgetAll();
    const get = message(undefined);
    get.headers['last-event-id'] = 'evt-7';
    expect(await statusOf(link.send(get))).toBe(200);
    expect(upstream.seen.filter((s) => s.httpMethod === 'GET').map((s) => [s.sessionId, s.lastEventId])).toEqual([
      ['upstream-1', 'evt-7'],
      ['upstream-2', undefined],
    ]);
  });
});
