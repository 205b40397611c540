/**
 * Traces and the OTel MCP metrics (issue 14), instrumented by hand: no auto-instrumentation (it
 * would patch node:http and undici, doubling every span and costing on the hot path).
 *
 * Off (no exporter configured) this is NO_TRACING: call sites test `tracing.on` first, so the hot
 * path allocates no span, no context and awaits nothing more. On, it follows the OpenTelemetry
 * semantic conventions for MCP:
 *
 *   server span  `{mcp.method.name} {target}`  one per request on the MCP endpoint; its parent is
 *                the caller's context from `params._meta.traceparent` (the MCP carrier), else the
 *                HTTP `traceparent` header; none: a new trace
 *   client span  one per upstream HTTP exchange, under whatever is active (the server span, or a
 *                step below); its context goes upstream as `traceparent`/`tracestate` headers and,
 *                in bodies the proxy wrote itself, as `params._meta.traceparent`/`tracestate`
 *   steps        `replay initialize`, `pool miss` (a pooled session's opening), `sealed id reopen`,
 *                `mrtr round`: internal spans, so a recovered call is one trace
 *
 * Privacy: `mcp.session.id` is the session's log fingerprint (session/ids.ts), never an id; no
 * header value, token or cookie is put on a span; resource URIs and arguments are not recorded.
 */
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Histogram,
  type Span,
  type TextMapGetter,
  type Tracer,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPMetricExporter as JsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
} from '@opentelemetry/sdk-trace';
import { LRUCache } from 'lru-cache';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { isObject } from '../mcp/protocol.js';
import type { Tracked } from '../http/tracking.js';
import { readUpstreamId, type Fingerprint, type UpstreamSessionId } from '../session/ids.js';
import { toProxyError, type UpstreamClient, type UpstreamRequest, type UpstreamResponse } from '../upstream/client.js';
import type { TelemetrySettings } from './otel-settings.js';

export interface Tracing {
  /** False: every other member is a pass-through, and call sites skip them altogether. */
  readonly on: boolean;
  /**
   * Run a request's flow under its server span. `message` is the parsed POST body (undefined for
   * GET, DELETE, OPTIONS); the span ends when the answer is over.
   */
  serve<T>(req: IncomingMessage, res: ServerResponse, tracked: Tracked, message: unknown, flow: () => T): T;
  /** Run `work` under an internal span: a replay, a pool miss, a sealed id reopened. */
  step<T>(name: StepName, attributes: Attributes, work: () => Promise<T>): Promise<T>;
  /** A zero-length internal span under the active one (an MRTR round's kind). */
  mark(name: StepName, attributes: Attributes): void;
  /** The upstream client with a client span around each exchange and the context injected. */
  client(upstream: UpstreamClient): UpstreamClient;
  /** Export what is pending and stop (shutdown). */
  shutdown(): Promise<void>;
}

export type StepName = 'replay initialize' | 'pool miss' | 'sealed id reopen' | 'mrtr round';

export const NO_TRACING: Tracing = {
  on: false,
  serve: (_req, _res, _tracked, _message, flow) => flow(),
  step: (_name, _attributes, work) => work(),
  mark: () => undefined,
  client: (upstream) => upstream,
  shutdown: async () => undefined,
};

export interface TracingDeps {
  readonly settings: TelemetrySettings;
  readonly fingerprint: Fingerprint;
  readonly upstreamUrl: URL;
  readonly serviceVersion: string;
}

// The attribute names of the conventions (semantic-conventions exports only some as constants yet).
const A = {
  method: 'mcp.method.name',
  protocolVersion: 'mcp.protocol.version',
  sessionId: 'mcp.session.id',
  requestId: 'jsonrpc.request.id',
  toolName: 'gen_ai.tool.name',
  promptName: 'gen_ai.prompt.name',
  operationName: 'gen_ai.operation.name',
  errorType: 'error.type',
  networkProtocol: 'network.protocol.name',
  networkProtocolVersion: 'network.protocol.version',
  networkTransport: 'network.transport',
  serverAddress: 'server.address',
  serverPort: 'server.port',
  clientAddress: 'client.address',
  clientPort: 'client.port',
  httpMethod: 'http.request.method',
  httpStatus: 'http.response.status_code',
  replayed: 'mcp_session_proxy.replayed',
} as const;

// The conventions' advice for mcp.*.operation.duration (seconds).
const DURATION_BUCKETS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];
// Bodies are parsed for span names and attributes (and _meta injection) only below this size.
const MAX_PARSED_BODY_BYTES = 1024 * 1024;
const UPSTREAM_LOG_ID_CACHE = 10_000;
const TRACEPARENT = 'traceparent';
const TRACESTATE = 'tracestate';
/**
 * Attributes that go on the duration histograms (bounded values only: no ids). Not the tool and
 * prompt names the conventions recommend: any client can send any name, and each new one would be
 * a new series until the SDK's cardinality limit folds everyone's data into its overflow series.
 * They stay on the spans.
 */
const METRIC_ATTRIBUTES = [
  A.method,
  A.protocolVersion,
  A.errorType,
  A.networkProtocol,
  A.networkTransport,
  A.serverAddress,
  A.serverPort,
] as const;

/** NO_TRACING, unless an exporter is configured. */
export function createTracing(deps: TracingDeps): Tracing {
  const { settings } = deps;
  if (settings.traces === undefined && settings.metrics === undefined) return NO_TRACING;

  const resource = resourceFromAttributes({ 'service.name': 'mcp-session-proxy', 'service.version': deps.serviceVersion }).merge(
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win.
    detectResources({ detectors: [envDetector] }),
  );
  const traces = settings.traces;
  const tracerProvider = new TracerProvider({
    resource,
    // Metrics only: spans are never recorded, but contexts still propagate.
    sampler: traces === undefined ? new AlwaysOffSampler() : samplerOf(settings),
    spanProcessors:
      traces === undefined
        ? []
        : [
            new BatchSpanProcessor({
              exporter: traces.protocol === 'http/json' ? new JsonTraceExporter() : new ProtoTraceExporter(),
              ...settings.batch,
            }),
          ],
  });
  const meterProvider =
    settings.metrics === undefined
      ? undefined
      : new MeterProvider({
          resource,
          readers: [
            new PeriodicExportingMetricReader({
              exporter: settings.metrics.protocol === 'http/json' ? new JsonMetricExporter() : new ProtoMetricExporter(),
              exportIntervalMillis: settings.metricExportIntervalMs,
            }),
          ],
        });
  // Contexts follow the flow across awaits (a replay started by a request is under its span).
  // Only when on: AsyncLocalStorage costs on every async hop.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const propagator = new W3CTraceContextPropagator();
  propagation.setGlobalPropagator(propagator);
  const tracer: Tracer = tracerProvider.getTracer('mcp-session-proxy', deps.serviceVersion);
  const meter = meterProvider?.getMeter('mcp-session-proxy', deps.serviceVersion);
  const histogram = (name: string, description: string): Histogram | undefined =>
    meter?.createHistogram(name, { unit: 's', description, advice: { explicitBucketBoundaries: DURATION_BUCKETS } });
  const serverDuration = histogram(
    'mcp.server.operation.duration',
    'MCP request duration as observed on the receiver (the proxy, for its callers)',
  );
  const clientDuration = histogram(
    'mcp.client.operation.duration',
    'MCP request duration as observed on the sender (the proxy, towards its upstream)',
  );
  // An HMAC per exchange costs as much as the rest of the client span: fingerprints of the upstream
  // ids in use are kept (bounded; in memory only, as the links hold the ids themselves).
  const upstreamLogIds = new LRUCache<string, string>({ max: UPSTREAM_LOG_ID_CACHE });
  const upstreamLogId = (id: UpstreamSessionId): string => {
    let logId = upstreamLogIds.get(id);
    if (logId === undefined) upstreamLogIds.set(id, (logId = deps.fingerprint(id)));
    return logId;
  };
  const upstream = {
    address: deps.upstreamUrl.hostname,
    port: Number(deps.upstreamUrl.port || (deps.upstreamUrl.protocol === 'https:' ? 443 : 80)),
  };

  return {
    on: true,

    serve(req, res, tracked, message, flow) {
      const parent = propagator.extract(ROOT_CONTEXT, carrierOf(message, req), CARRIER_GETTER);
      // Literal keys, one object: spreads and computed keys cost measurably per request.
      const attributes: Attributes = {
        'network.protocol.name': 'http',
        'network.protocol.version': req.httpVersion,
        'network.transport': 'tcp',
      };
      const name = describe(message, req.method ?? 'POST', attributes);
      const version = req.headers['mcp-protocol-version'];
      if (typeof version === 'string' && version.length <= 32) attributes[A.protocolVersion] = version;
      if (req.socket.remoteAddress !== undefined) attributes[A.clientAddress] = req.socket.remoteAddress;
      if (req.socket.remotePort !== undefined) attributes[A.clientPort] = req.socket.remotePort;
      const span = tracer.startSpan(name, { kind: SpanKind.SERVER, attributes, startTime: tracked.startedAt }, parent);
      res.once('close', () => {
        const status = res.headersSent ? res.statusCode : undefined;
        if (tracked.sessionLogId !== null) span.setAttribute(A.sessionId, tracked.sessionLogId);
        if (tracked.replayedFor !== null) span.setAttribute(A.replayed, tracked.replayedFor);
        if (status !== undefined) span.setAttribute(A.httpStatus, status);
        const errorType = tracked.failure?.toLowerCase() ?? (status !== undefined && status >= 500 ? String(status) : undefined);
        if (errorType !== undefined) {
          span.setAttribute(A.errorType, errorType);
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        span.end();
        serverDuration?.record((performance.now() - tracked.startedAt) / 1000, metricAttributes(attributes, errorType));
      });
      return context.with(trace.setSpan(parent, span), flow);
    },

    async step(name, attributes, work) {
      return tracer.startActiveSpan(name, { kind: SpanKind.INTERNAL, attributes }, async (span: Span) => {
        try {
          return await work();
        } catch (error) {
          span.setAttribute(A.errorType, toProxyError(error).reason.toLowerCase());
          span.setStatus({ code: SpanStatusCode.ERROR });
          throw error;
        } finally {
          span.end();
        }
      });
    },

    mark(name, attributes) {
      tracer.startSpan(name, { kind: SpanKind.INTERNAL, attributes }).end();
    },

    client(inner) {
      return {
        probe: (timeoutMs) => inner.probe(timeoutMs),
        close: () => inner.close(),
        async request(request) {
          const started = performance.now();
          const message = parsedBody(request.body);
          const attributes: Attributes = {
            'http.request.method': request.method,
            'network.protocol.name': 'http',
            'network.transport': 'tcp',
            'server.address': upstream.address,
            'server.port': upstream.port,
          };
          const name = describe(message, request.method, attributes);
          const version = request.headers['mcp-protocol-version'];
          if (typeof version === 'string' && version.length <= 32) attributes[A.protocolVersion] = version;
          const upstreamId = readUpstreamId(request.headers['mcp-session-id']);
          if (upstreamId.kind === 'valid') attributes[A.sessionId] = upstreamLogId(upstreamId.id);
          const span = tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes });
          const ctx = trace.setSpan(context.active(), span);
          const traced: UpstreamRequest = { ...request, headers: withContext(request.headers, ctx) };
          if (request.body !== undefined) (traced as { body?: UpstreamRequest['body'] }).body = withMetaContext(request.body, message, ctx);
          let response: UpstreamResponse;
          try {
            response = await inner.request(traced);
          } catch (error) {
            const errorType = toProxyError(error).reason.toLowerCase();
            finish(span, attributes, started, errorType);
            throw error;
          }
          span.setAttribute(A.httpStatus, response.statusCode);
          const errorType = response.statusCode >= 400 ? String(response.statusCode) : undefined;
          // The exchange is over when its body is: an SSE answer lasts as long as its stream.
          whenDone(response.body, () => finish(span, attributes, started, errorType));
          return response;
        },
      };
    },

    async shutdown() {
      await Promise.allSettled([tracerProvider.shutdown(), meterProvider?.shutdown()]);
    },
  };

  function finish(span: Span, attributes: Attributes, started: number, errorType: string | undefined): void {
    if (errorType !== undefined) {
      span.setAttribute(A.errorType, errorType);
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
    clientDuration?.record((performance.now() - started) / 1000, metricAttributes(attributes, errorType));
  }

  /** The headers with this context's traceparent/tracestate instead of the caller's. */
  function withContext(headers: UpstreamRequest['headers'], ctx: Context): UpstreamRequest['headers'] {
    const out = { ...headers };
    delete out[TRACEPARENT];
    delete out[TRACESTATE];
    propagator.inject(ctx, out, { set: (carrier: Record<string, string | string[]>, key, value) => void (carrier[key] = value) });
    return out;
  }

  /**
   * A body the proxy wrote itself (a string) carries the context in params._meta too, as
   * 2026-07-28 and the conventions do. The client's own bytes (a Buffer) go untouched.
   */
  function withMetaContext(body: Buffer | string, message: unknown, ctx: Context): Buffer | string {
    if (typeof body !== 'string' || !isObject(message) || typeof message.method !== 'string') return body;
    const meta: Record<string, string> = {};
    propagator.inject(ctx, meta, { set: (carrier: Record<string, string>, key, value) => void (carrier[key] = value) });
    const params = isObject(message.params) ? message.params : {};
    const previous = isObject(params._meta) ? params._meta : {};
    const { traceparent: _p, tracestate: _s, ...rest } = previous;
    return JSON.stringify({ ...message, params: { ...params, _meta: { ...rest, ...meta } } });
  }
}

/** The sampler OTEL_TRACES_SAMPLER names (SDK 3 takes it in code only). */
export function samplerOf(settings: Pick<TelemetrySettings, 'sampler' | 'samplerRatio'>): Sampler {
  switch (settings.sampler) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(settings.samplerRatio);
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.samplerRatio) });
  }
}

/**
 * The span name of a JSON-RPC message (conventions: `{mcp.method.name} {target}`), its MCP
 * attributes written into `attributes`.
 */
function describe(message: unknown, httpMethod: string, attributes: Attributes): string {
  if (Array.isArray(message)) return 'batch';
  if (!isObject(message) || typeof message.method !== 'string' || message.method.length > 128) return httpMethod;
  const { method, id } = message;
  attributes[A.method] = method;
  if (typeof id === 'string' || typeof id === 'number') attributes[A.requestId] = String(id);
  const name =
    isObject(message.params) && typeof message.params.name === 'string' && message.params.name.length <= 256
      ? message.params.name
      : undefined;
  if (method === 'tools/call' && name !== undefined) {
    attributes[A.toolName] = name;
    attributes[A.operationName] = 'execute_tool';
    return `${method} ${name}`;
  }
  if (method === 'prompts/get' && name !== undefined) {
    attributes[A.promptName] = name;
    return `${method} ${name}`;
  }
  return method;
}

function parsedBody(body: UpstreamRequest['body']): unknown {
  if (body === undefined) return undefined;
  if ((typeof body === 'string' ? body.length : body.byteLength) > MAX_PARSED_BODY_BYTES) return undefined;
  try {
    return JSON.parse(body.toString());
  } catch {
    return undefined;
  }
}

/** Where the caller's context is: params._meta (the MCP carrier) if it has one, else the HTTP headers. */
function carrierOf(message: unknown, req: IncomingMessage): Record<string, unknown> {
  if (
    isObject(message) &&
    isObject(message.params) &&
    isObject(message.params._meta) &&
    typeof message.params._meta[TRACEPARENT] === 'string'
  ) {
    return message.params._meta;
  }
  return req.headers;
}

const CARRIER_GETTER: TextMapGetter<Record<string, unknown>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const value = carrier[key];
    return typeof value === 'string' || Array.isArray(value) ? (value as string | string[]) : undefined;
  },
};

function metricAttributes(attributes: Attributes, errorType: string | undefined): Attributes {
  const out: Attributes = {};
  for (const key of METRIC_ATTRIBUTES) if (attributes[key] !== undefined) out[key] = attributes[key];
  if (errorType !== undefined) out[A.errorType] = errorType;
  return out;
}

function whenDone(body: Readable, done: () => void): void {
  if (body.destroyed || body.readableEnded) return done();
  let called = false;
  const once = () => {
    if (called) return;
    called = true;
    done();
  };
  body.once('end', once);
  body.once('close', once);
  body.once('error', once);
}
