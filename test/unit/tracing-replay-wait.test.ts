/**
 * A message that waits for a replay another message started (issue 21): its trace shows the wait,
 * linked to the replay in the other's trace. The link runs against the in-memory upstream, whose
 * gate holds the replay until the second message waits; spans go to a real OTLP receiver.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TELEMETRY_OFF } from '../../src/observability/otel-settings.js';
import { createTracing, type Tracing } from '../../src/observability/tracing.js';
import { createFingerprint } from '../../src/session/ids.js';
import { Cancellation, type UpstreamHeaders } from '../../src/upstream/client.js';
import { openLink, type Outgoing } from '../../src/upstream/link.js';
import { fakeLinkDeps, FakeUpstream } from '../helpers/fake-upstream.js';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.js';

const INIT_PARAMS = '{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}';

function sampled(): { traceId: string; spanId: string; traceparent: string } {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

function call(id: number, traceparent: string): Outgoing {
  const headers: UpstreamHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', traceparent };
  const message = { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo' } };
  return {
    headers,
    body: Buffer.from(JSON.stringify(message)),
    message,
    initialized: false,
    versionFromLink: false,
    cancel: new Cancellation(),
    replayed: undefined,
  };
}

describe('a message waiting for the replay another started', () => {
  let receiver: OtlpReceiver;
  let tracing: Tracing;
  const saved = { ...process.env };

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    // The SDK's exporters read their endpoint from the environment, as in production.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
    tracing = createTracing({
      settings: { ...TELEMETRY_OFF, traces: { protocol: 'http/json', endpoint: `${receiver.url}/v1/traces` } },
      fingerprint: createFingerprint(),
      upstreamUrl: new URL('http://127.0.0.1:1/mcp'),
      serviceVersion: 'test',
    });
  });
  afterAll(async () => {
    process.env = saved;
    await receiver?.close();
  });

  it("shows a 'replay wait' span in its own trace, linked to the replay span of the other's", async () => {
    const upstream = new FakeUpstream();
    const { deps } = fakeLinkDeps(tracing.client(upstream));
    const linkDeps = { ...deps, tracing };
    const { link } = await openLink(linkDeps, {
      initParams: INIT_PARAMS,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: Buffer.from(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":${INIT_PARAMS}}`),
      requestId: 0,
      cancel: new Cancellation(),
    });
    const initialized = await link!.send({
      ...call(0, sampled().traceparent),
      body: '{"jsonrpc":"2.0","method":"notifications/initialized"}',
      initialized: true,
    });
    initialized?.response.body.resume();
    upstream.forgetAll();
    const replay = upstream.gate((s) => s.rpcMethod === 'initialize');
    const starter = sampled();
    const waiter = sampled();
    const first = link!.send(call(1, starter.traceparent));
    await replay.reached();
    const second = link!.send(call(2, waiter.traceparent));
    replay.release();
    for (const answer of await Promise.all([first, second])) {
      expect(answer?.response.statusCode).toBe(200);
      if (answer !== undefined && !Buffer.isBuffer(answer.payload)) answer.payload.resume();
    }
    await tracing.shutdown();
    const spans = receiver.spans();
    const replaySpan = spans.filter((s) => s.traceId === starter.traceId && s.name === 'replay initialize');
    expect(replaySpan).toHaveLength(1);
    const waits = spans.filter((s) => s.name === 'replay wait');
    expect(waits.map((s) => [s.traceId, s.parentSpanId])).toEqual([[waiter.traceId, waiter.spanId]]);
    expect(waits[0]!.links).toEqual([{ traceId: starter.traceId, spanId: replaySpan[0]!.spanId }]);
    // The message that started the replay does not wait for itself.
    expect(spans.filter((s) => s.traceId === starter.traceId && s.name === 'replay wait')).toEqual([]);
  });
});
