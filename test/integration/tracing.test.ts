/**
 * Traces over OTLP (issue 14): the real proxy exports to a real OTLP/HTTP receiver on 127.0.0.1,
 * in front of the legacy fixture, which reports the trace context it saw. Spans are read after
 * the proxy stopped (SIGTERM flushes them) or as they arrive, never after a guessed delay.
 */
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { SamplingDecision, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect as connectSocket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callText, connect, sessionHeaders } from '../helpers/client.js';
import { envelope, modernHeaders, post } from '../helpers/modern-client.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { freePort, killAll, startFixture, startModernFixture, startProxy, type Fixture, type Proxy } from '../helpers/processes.js';

afterAll(killAll);

const SERVER = 2;
const CLIENT = 3;
const INTERNAL = 1;
const ERROR = 2;
const TOKEN = 'Bearer tracing-test-token-7f3a9c';

/** A W3C context the caller sends: a new trace id, a span id of the caller's. */
function callerContext(): { traceId: string; spanId: string; traceparent: string } {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

function otelEnv(receiver: OtlpReceiver, protocol: 'http/json' | 'http/protobuf'): Record<string, string> {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
    OTEL_SERVICE_NAME: 'proxy-under-test',
    // Export soon after each span ends (the default waits 5 s); shutdown flushes the rest.
    OTEL_BSP_SCHEDULE_DELAY: '50',
    LOG_LEVEL: 'trace',
    SESSION_SECRET: randomBytes(32).toString('base64url'),
  };
}

const inTrace = (spans: ReceivedSpan[], traceId: string) => spans.filter((s) => s.traceId === traceId);
const childrenOf = (spans: ReceivedSpan[], parent: ReceivedSpan) => spans.filter((s) => s.parentSpanId === parent.spanId);
const one = (spans: ReceivedSpan[], match: (s: ReceivedSpan) => boolean): ReceivedSpan => {
  const found = spans.filter(match);
  expect(found, `spans: ${JSON.stringify(spans.map((s) => [s.name, s.kind, s.parentSpanId]))}`).toHaveLength(1);
  return found[0]!;
};
/** The span id in a traceparent. */
const spanIdOf = (traceparent: string | null) => traceparent?.split('-')[2];

describe('tracing over OTLP http/json in front of a legacy upstream', () => {
  let receiver: OtlpReceiver;
  let upstream: Fixture;
  let proxy: Proxy;
  const secrets: string[] = [TOKEN.slice(7)];
  let spans: ReceivedSpan[] = [];
  const plain = callerContext();
  const recovered = callerContext();
  const modern = callerContext();
  const sealed = callerContext();

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    upstream = await startFixture('sdk');
    const env = otelEnv(receiver, 'http/json');
    secrets.push(env.SESSION_SECRET!);
    proxy = await startProxy(upstream.mcpUrl, env);

    // A plain call, with the caller's context in the HTTP header.
    const c = await connect(proxy.url, 'plain', { traceparent: plain.traceparent, authorization: TOKEN });
    expect(await callText(c, 'echo', { text: 'plain' })).toBe('plain');
    secrets.push(c.sessionId()!);

    // A recovered call: the upstream forgot every session; one trace shows the replay. The session
    // is made by hand, without an SDK client: its background GET stream, reconnecting after the
    // drop, could meet the loss first (then the call only waits for that replay, under another
    // signal), which made this test depend on the machine's load.
    const base = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: TOKEN };
    const init = await post(proxy.url, base, {
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: '2025-11-25',
        capabilities: {},
        clientInfo: { name: 'recovered', version: '1' },
        _meta: { 'example.com/kept': 'yes' },
      },
    });
    const sessionId = init.headers.get('mcp-session-id')!;
    secrets.push(sessionId);
    const onSession = { ...base, 'mcp-protocol-version': '2025-11-25', 'mcp-session-id': sessionId };
    expect((await post(proxy.url, onSession, { jsonrpc: '2.0', method: 'notifications/initialized' })).status).toBe(202);
    await upstream.drop();
    const answer = await post(
      proxy.url,
      { ...onSession, traceparent: recovered.traceparent },
      { jsonrpc: '2.0', id: 'recovered-1', method: 'tools/call', params: { name: 'echo', arguments: { text: 'after drop' } } },
    );
    expect(answer.messages[0]).toMatchObject({ result: { content: [{ text: 'after drop' }] } });

    // A 2026-07-28 call on a pooled upstream session, its context in params._meta only.
    const modernAnswer = await post(
      proxy.url,
      { ...modernHeaders('tools/call', 'echo'), authorization: TOKEN },
      {
        jsonrpc: '2.0',
        id: 'modern-1',
        method: 'tools/call',
        params: { name: 'echo', arguments: { text: 'modern' }, _meta: { ...envelope(), traceparent: modern.traceparent } },
      },
    );
    expect(modernAnswer.messages[0]).toMatchObject({ result: { content: [{ text: 'modern' }] } });

    // A sealed id this process no longer knows (a restart): reopened, then replayed.
    const s = await connect(proxy.url, 'sealed', { authorization: TOKEN });
    const sealedId = s.sessionId()!;
    secrets.push(sealedId);
    const stats = await upstream.stats();
    secrets.push(...stats.issuedIds);
    const traceparentsSeen = stats.traceparents;
    await proxy.stop();
    proxy = await startProxy(upstream.mcpUrl, { ...env });
    const reopened = await post(
      proxy.url,
      {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': s.transport.protocolVersion!,
        'mcp-session-id': sealedId,
        authorization: TOKEN,
        traceparent: sealed.traceparent,
      },
      { jsonrpc: '2.0', id: 'sealed-1', method: 'tools/call', params: { name: 'echo', arguments: { text: 'reopened' } } },
    );
    expect(reopened.messages[0]).toMatchObject({ result: { content: [{ text: 'reopened' }] } });
    await proxy.stop();
    secrets.push(...(await upstream.stats()).issuedIds);
    spans = receiver.spans();
    seen = { before: traceparentsSeen, after: (await upstream.stats()).traceparents };
  });
  let seen: { before: Awaited<ReturnType<Fixture['stats']>>['traceparents']; after: Awaited<ReturnType<Fixture['stats']>>['traceparents'] };
  afterAll(() => receiver?.close());

  it("a plain call: a server span under the caller's context, a client span under it, its context seen upstream", () => {
    const trace = inTrace(spans, plain.traceId);
    const server = one(trace, (s) => s.kind === SERVER && s.name === 'tools/call echo');
    expect(server.parentSpanId).toBe(plain.spanId);
    expect(server.service).toBe('proxy-under-test');
    expect(server.attributes).toMatchObject({
      'mcp.method.name': 'tools/call',
      'gen_ai.tool.name': 'echo',
      'network.protocol.name': 'http',
      'network.transport': 'tcp',
    });
    expect(server.attributes['mcp.session.id']).toMatch(/^fp:[0-9a-f]{12}$/);
    expect(server.attributes['mcp.protocol.version']).toBeTypeOf('string');
    expect(server.attributes['jsonrpc.request.id']).toBeTypeOf('string');
    expect(server.status).not.toBe(ERROR);
    const client = one(childrenOf(trace, server), (s) => s.kind === CLIENT);
    expect(client.name).toBe('tools/call echo');
    expect(client.attributes).toMatchObject({
      'server.address': '127.0.0.1',
      'server.port': upstream.port,
      'http.response.status_code': 200,
    });
    expect(client.attributes['mcp.session.id']).toMatch(/^fp:[0-9a-f]{12}$/);
    // The upstream saw the client span's context in the header; the client's own body went untouched.
    const call = seen.before.find((t) => t.method === 'tools/call' && t.header?.includes(plain.traceId));
    expect(spanIdOf(call!.header)).toBe(client.spanId);
    expect(call!.meta).toBeNull();
  });

  it('a recovered call is one trace: the lost exchange, the replay (initialize + initialized) and the retry under the call', () => {
    const trace = inTrace(spans, recovered.traceId);
    const server = one(trace, (s) => s.kind === SERVER);
    expect(server.parentSpanId).toBe(recovered.spanId);
    expect(server.attributes['mcp_session_proxy.replayed']).toBe('status_404');
    const children = childrenOf(trace, server);
    const exchanges = children.filter((s) => s.kind === CLIENT);
    expect(exchanges.map((s) => s.attributes['http.response.status_code'])).toEqual([404, 200]);
    expect(exchanges[0]!.status).toBe(ERROR);
    const replay = one(children, (s) => s.kind === INTERNAL && s.name === 'replay initialize');
    expect(
      childrenOf(trace, replay)
        .map((s) => s.name)
        .sort(),
    ).toEqual(['initialize', 'notifications/initialized']);
    // The replay's own messages carry its context upstream, in the header and in params._meta.
    const initialize = one(childrenOf(trace, replay), (s) => s.name === 'initialize');
    const seenInit = seen.before.find((t) => t.method === 'initialize' && spanIdOf(t.header) === initialize.spanId);
    expect(spanIdOf(seenInit!.meta)).toBe(initialize.spanId);
    // The client's own _meta members travel with the replay's context.
    expect(seenInit!.metaKeys.sort()).toEqual(['example.com/kept', 'traceparent']);
  });

  it("a modern call on a pooled session: the caller's context from params._meta, a pool miss opening the session, _meta rewritten upstream", () => {
    const trace = inTrace(spans, modern.traceId);
    const server = one(trace, (s) => s.kind === SERVER);
    expect(server.name).toBe('tools/call echo');
    expect(server.parentSpanId).toBe(modern.spanId);
    expect(server.attributes['mcp.protocol.version']).toBe('2026-07-28');
    const miss = one(childrenOf(trace, server), (s) => s.name === 'pool miss');
    expect(childrenOf(trace, miss).map((s) => s.name)).toContain('initialize');
    const client = one(childrenOf(trace, server), (s) => s.kind === CLIENT && s.name === 'tools/call echo');
    const call = seen.before.find((t) => t.method === 'tools/call' && spanIdOf(t.header) === client.spanId);
    expect(spanIdOf(call!.meta)).toBe(client.spanId);
  });

  it("a sealed id reopened after a restart: the reopen and the replay in the call's trace", () => {
    const trace = inTrace(spans, sealed.traceId);
    const server = one(trace, (s) => s.kind === SERVER);
    one(childrenOf(trace, server), (s) => s.name === 'sealed id reopen');
    const replay = one(childrenOf(trace, server), (s) => s.name === 'replay initialize');
    expect(replay.attributes['mcp_session_proxy.replay.reason']).toBe('reopened');
    expect(seen.after.some((t) => t.header?.includes(sealed.traceId))).toBe(true);
  });

  it('a request without context starts a trace', () => {
    const roots = spans.filter((s) => s.kind === SERVER && s.parentSpanId === '' && s.attributes['mcp.method.name'] === 'initialize');
    expect(roots.length).toBeGreaterThan(0);
  });

  it('exports mcp.server.operation.duration and mcp.client.operation.duration', () => {
    expect(receiver.metricNames()).toEqual(expect.arrayContaining(['mcp.server.operation.duration', 'mcp.client.operation.duration']));
  });

  it('no raw session id, token or secret in any exported span or metric', () => {
    expect(receiver.rawBodies().length).toBeGreaterThan(0);
    const text = receiver.rawBodies().join('\n');
    const needles = [...new Set(secrets)];
    expect(needles.length).toBeGreaterThan(4);
    for (const needle of needles) {
      expect(needle.length).toBeGreaterThanOrEqual(8);
      expect(text.includes(needle), `a secret (${needle.slice(0, 4)}…) reached the exported telemetry`).toBe(false);
    }
    for (const span of spans) {
      const sid = span.attributes['mcp.session.id'];
      if (sid !== undefined) expect(sid).toMatch(/^fp:[0-9a-f]{12}$/);
    }
  });
});

describe('tracing over OTLP http/protobuf, an upstream that is down', () => {
  it('exports error spans (server and client) decoded from protobuf, flushed by SIGTERM; the startup line says tracing is on', async () => {
    const receiver = await startOtlpReceiver();
    const dead = `http://127.0.0.1:${await freePort()}/mcp`;
    // Nothing is exported on its own schedule within the test (spans: 10 min; metrics: 60 s by
    // default): whatever arrives was flushed by the shutdown.
    const proxy = await startProxy(dead, {
      ...otelEnv(receiver, 'http/protobuf'),
      OTEL_BSP_SCHEDULE_DELAY: '600000',
      UPSTREAM_RETRY_MS: '0',
    });
    const context = callerContext();
    const answer = await post(
      proxy.url,
      { 'content-type': 'application/json', accept: 'application/json, text/event-stream', traceparent: context.traceparent },
      {
        jsonrpc: '2.0',
        id: 'down-1',
        method: 'tools/list',
      },
    );
    expect(answer.status).toBeGreaterThanOrEqual(500);
    expect(receiver.spans()).toEqual([]);
    await proxy.stop();
    const startup = proxy
      .output()
      .split('\n')
      .find((line) => line.includes('mcp-session-proxy listening'));
    expect(startup).toMatch(/"tracing":"on \(http\/protobuf to http:\/\/127\.0\.0\.1:\d+\/v1\/traces/);
    expect(receiver.contentTypes()).toContain('application/x-protobuf');
    const trace = inTrace(receiver.spans(), context.traceId);
    const server = one(trace, (s) => s.kind === SERVER);
    expect(server.parentSpanId).toBe(context.spanId);
    expect(server.status).toBe(ERROR);
    expect(server.attributes['error.type']).toMatch(/^upstream_unavailable|replay_failed$/);
    const failed = trace.filter((s) => s.kind === CLIENT);
    expect(failed.length).toBeGreaterThan(0);
    for (const span of failed) {
      expect(span.status).toBe(ERROR);
      expect(span.attributes['error.type']).toBeTypeOf('string');
    }
    expect(receiver.metricNames()).toEqual(expect.arrayContaining(['mcp.server.operation.duration', 'mcp.client.operation.duration']));
    await receiver.close();
  });

  it('without an exporter, tracing is off and says so', async () => {
    const dead = `http://127.0.0.1:${await freePort()}/mcp`;
    const proxy = await startProxy(dead, {});
    await proxy.stop();
    expect(proxy.output()).toMatch(/"tracing":"off"/);
  });
});

describe('tracing an MRTR exchange (a 2026-07-28 call whose legacy tool asks the client)', () => {
  it('the retry that continues the parked exchange has an mrtr round span under its server span', async () => {
    const receiver = await startOtlpReceiver();
    const upstream = await startFixture('sdk', { mrtr: true });
    const proxy = await startProxy(upstream.mcpUrl, otelEnv(receiver, 'http/json'));
    const first = callerContext();
    const second = callerContext();
    const meta = (traceparent: string) => ({
      ...envelope({ 'io.modelcontextprotocol/clientCapabilities': { elicitation: {} } }),
      traceparent,
    });
    const asked = await post(proxy.url, modernHeaders('tools/call', 'ask-name'), {
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'ask-name', arguments: {}, _meta: meta(first.traceparent) },
    });
    const result = asked.messages.at(-1)!.result as { resultType: string; inputRequests: Record<string, unknown>; requestState: string };
    expect(result.resultType).toBe('input_required');
    const [key] = Object.keys(result.inputRequests);
    const done = await post(proxy.url, modernHeaders('tools/call', 'ask-name'), {
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: {
        name: 'ask-name',
        arguments: {},
        inputResponses: { [key!]: { action: 'accept', content: { name: 'Traced' } } },
        requestState: result.requestState,
        _meta: meta(second.traceparent),
      },
    });
    expect(done.messages.at(-1)).toMatchObject({ id: 2, result: { resultType: 'complete' } });
    await proxy.stop();
    const spans = receiver.spans();
    const firstServer = one(inTrace(spans, first.traceId), (s) => s.kind === SERVER);
    expect(firstServer.parentSpanId).toBe(first.spanId);
    const trace = inTrace(spans, second.traceId);
    const server = one(trace, (s) => s.kind === SERVER);
    expect(server.parentSpanId).toBe(second.spanId);
    const round = one(childrenOf(trace, server), (s) => s.name === 'mrtr round');
    expect(round.attributes).toMatchObject({ 'mcp.method.name': 'tools/call', 'mcp_session_proxy.mrtr.round': 'resume' });
    // The first round has its span too.
    const firstRound = one(childrenOf(inTrace(spans, first.traceId), firstServer), (s) => s.name === 'mrtr round');
    expect(firstRound.attributes).toMatchObject({ 'mcp.method.name': 'tools/call', 'mcp_session_proxy.mrtr.round': 'first' });
    await receiver.close();
  });
});

describe('tracing in front of a 2026-07-28-only upstream', () => {
  it("a 2025 client on a held session and a 2026-07-28 client passed through: server and client spans in the callers' traces", async () => {
    const receiver = await startOtlpReceiver();
    const upstream = await startModernFixture({ legacy: 'reject' });
    const proxy = await startProxy(upstream.mcpUrl, otelEnv(receiver, 'http/json'));
    const held = callerContext();
    const c = await connect(proxy.url, 'held', { traceparent: held.traceparent });
    expect(await callText(c, 'echo', { text: 'held' })).toBe('held');
    const passed = callerContext();
    const answer = await post(proxy.url, modernHeaders('tools/call', 'echo'), {
      jsonrpc: '2.0',
      id: 'passed-1',
      method: 'tools/call',
      params: { name: 'echo', arguments: { text: 'passed' }, _meta: { ...envelope(), traceparent: passed.traceparent } },
    });
    expect(answer.messages.at(-1)).toMatchObject({ id: 'passed-1', result: { content: [{ text: 'passed' }] } });
    await proxy.stop();
    for (const context of [held, passed]) {
      const trace = inTrace(receiver.spans(), context.traceId);
      const server = one(trace, (s) => s.kind === SERVER && s.name === 'tools/call echo');
      expect(server.parentSpanId).toBe(context.spanId);
      one(childrenOf(trace, server), (s) => s.kind === CLIENT && s.name === 'tools/call echo');
    }
    await receiver.close();
  });
});

/** Wait until the proxy's /metrics shows `series` (a name with its labels) counted at least once. */
async function metricUntil(proxy: Proxy, series: string): Promise<void> {
  for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
    const text = await (await fetch(`${proxy.origin}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(series + ' '));
    if (line !== undefined && Number(line.slice(series.length + 1)) >= 1) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`${series} never counted`);
}

describe('tracing what no flow serves', () => {
  it('requests refused at the gate or while their body is read, and the pass-through routes, have server spans', async () => {
    const receiver = await startOtlpReceiver();
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl, { ...otelEnv(receiver, 'http/json'), BODY_LIMIT_BYTES: '1024' });
    const refused = callerContext();
    const put = await fetch(proxy.url, { method: 'PUT', headers: { traceparent: refused.traceparent } });
    expect(put.status).toBe(405);
    await put.text();
    const tooLarge = callerContext();
    const big = await post(
      proxy.url,
      { 'content-type': 'application/json', accept: 'application/json, text/event-stream', traceparent: tooLarge.traceparent },
      { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { padding: 'x'.repeat(4096) } },
    );
    expect(big.status).toBe(413);
    // A client that leaves mid-body: its server span ends with the request all the same.
    const left = callerContext();
    const socket = connectSocket(proxy.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(
      `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\ncontent-type: application/json\r\n` +
        `accept: application/json, text/event-stream\r\ntraceparent: ${left.traceparent}\r\ncontent-length: 900\r\n\r\n{"jsonrpc":`,
    );
    await new Promise((resolve) => setImmediate(resolve));
    socket.destroy();
    await metricUntil(proxy, 'mcp_session_proxy_request_duration_seconds_count{method="POST",outcome="aborted"}');
    const passed = callerContext();
    const metadata = await fetch(`${proxy.origin}/.well-known/oauth-protected-resource`, { headers: { traceparent: passed.traceparent } });
    await metadata.text();
    await proxy.stop();
    const spans = receiver.spans();
    for (const [context, status] of [
      [refused, 405],
      [tooLarge, 413],
    ] as const) {
      const server = one(inTrace(spans, context.traceId), (s) => s.kind === SERVER);
      expect(server.parentSpanId).toBe(context.spanId);
      expect(server.attributes['http.response.status_code']).toBe(status);
      expect(server.attributes['error.type']).toBeTypeOf('string');
      expect(server.status).toBe(ERROR);
    }
    const abandoned = one(inTrace(spans, left.traceId), (s) => s.kind === SERVER);
    expect(abandoned.parentSpanId).toBe(left.spanId);
    expect(abandoned.status).toBe(ERROR);
    const route = one(inTrace(spans, passed.traceId), (s) => s.kind === SERVER);
    expect(route.parentSpanId).toBe(passed.spanId);
    expect(route.name).toBe('GET');
    expect(route.attributes['http.response.status_code']).toBe(metadata.status);
    await receiver.close();
  });
});

describe('ratio sampling (traceidratio 0.5) of requests that come without a context', () => {
  it('a recorded trace keeps the trace id the ratio selected, and every trace id sent upstream agrees with the decision', async () => {
    const receiver = await startOtlpReceiver();
    const upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl, {
      ...otelEnv(receiver, 'http/json'),
      OTEL_TRACES_SAMPLER: 'traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.5',
    });
    const calls = 24;
    for (let i = 0; i < calls; i++) {
      const answer = await post(proxy.url, modernHeaders('tools/call', 'echo'), {
        jsonrpc: '2.0',
        id: `ratio-${i}`,
        method: 'tools/call',
        params: { name: 'echo', arguments: { text: `ratio ${i}` }, _meta: envelope() },
      });
      expect(answer.messages[0]).toMatchObject({ result: { content: [{ text: `ratio ${i}` }] } });
    }
    await proxy.stop();
    const ratio = new TraceIdRatioBasedSampler(0.5);
    const selected = (traceId: string) => ratio.shouldSample(ROOT_CONTEXT, traceId).decision === SamplingDecision.RECORD_AND_SAMPLED;

    const roots = receiver.spans().filter((s) => s.kind === SERVER && s.attributes['mcp.method.name'] === 'tools/call');
    expect(roots.every((s) => s.parentSpanId === '')).toBe(true);
    // 24 calls at 0.5: none recorded, or all, has a chance of 2^-24.
    expect(roots.length).toBeGreaterThan(0);
    expect(roots.length).toBeLessThan(calls);
    expect(roots.filter((s) => !selected(s.traceId)).map((s) => s.traceId)).toEqual([]);

    const sent = (await upstream.stats()).traceparents.filter((t) => t.method === 'tools/call' && t.header !== null);
    expect(sent).toHaveLength(calls);
    for (const { header } of sent) {
      const [, traceId, , flags] = header!.split('-');
      expect({ traceId, sampled: flags === '01' }).toEqual({ traceId, sampled: selected(traceId!) });
    }
    await receiver.close();
  });
});

describe('an upstream exchange whose caller left mid-stream', () => {
  let receiver: OtlpReceiver;
  let upstream: Fixture;
  let proxy: Proxy;
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    upstream = await startFixture('sdk');
    proxy = await startProxy(upstream.mcpUrl, otelEnv(receiver, 'http/json'));
  });
  afterAll(async () => {
    await upstream.release();
    await proxy.stop();
    await receiver.close();
  });

  // The client span ends with the exchange's body, however it ends: here it is cut (the caller
  // left after the first progress event, so the proxy aborts the upstream request), and its end is
  // only an error on the body, never its last byte.
  it('still ends its client span, under the server span', async () => {
    const caller = callerContext();
    const c = await connect(proxy.url, 'quitter');
    const controller = new AbortController();
    const res = await fetch(proxy.url, {
      method: 'POST',
      signal: controller.signal,
      headers: { ...sessionHeaders(c), traceparent: caller.traceparent },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: { name: 'gated-progress', arguments: { steps: 2 }, _meta: { progressToken: 'p' } },
      }),
    });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const first = new TextDecoder().decode((await res.body!.getReader().read()).value);
    expect(first).toContain('notifications/progress');
    controller.abort();
    const spans = await receiver.waitForSpans((all) => inTrace(all, caller.traceId).filter((s) => s.kind !== INTERNAL).length >= 2);
    const server = one(inTrace(spans, caller.traceId), (s) => s.kind === SERVER);
    expect(server.name).toBe('tools/call gated-progress');
    const client = one(childrenOf(spans, server), (s) => s.kind === CLIENT);
    expect(client.name).toBe('tools/call gated-progress');
    expect(client.attributes['http.response.status_code']).toBe(200);
    await c.close();
  });
});
