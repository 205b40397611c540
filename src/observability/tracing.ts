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
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
import { detectResources, envDetector, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader, type MetricProducer, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, TracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isObject } from '../mcp/protocol.js';
import type { Tracked } from '../http/tracking.js';
import type { Fingerprint, UpstreamSessionId } from '../session/ids.js';
import { toProxyError, type UpstreamClient } from '../upstream/client.js';
import { tracedClient } from './client-spans.js';
import { createDurations, type DurationHistogram } from './durations.js';
import { startExportThread } from './export-thread.js';
import type { TelemetrySettings } from './otel-settings.js';
import { createSampling, type Sampling } from './sampling.js';
import { A, describe, methodOf, versionOf } from './span-attributes.js';
import {
  formatTraceparent,
  isSampled,
  newIds,
  parentContext,
  parseTraceparent,
  remember,
  TRACEPARENT,
  TRACESTATE,
} from './trace-context.js';

/** Where a context travels: a request's headers, or an upstream exchange's. */
export type Carrier = Record<string, string | string[] | undefined>;

export interface Tracing {
  /** False: every other member is a pass-through, and call sites skip them altogether. */
  readonly on: boolean;
  /**
   * Run a request's flow under its server span, deciding there whether the request is recorded.
   * `message` is the parsed POST body (undefined for GET, DELETE, OPTIONS and requests refused
   * before their body was read); the span ends when the answer is over. The request's context is
   * left in its own `traceparent` header, where every upstream exchange made for it finds it.
   */
  serve<T>(req: IncomingMessage, res: ServerResponse, tracked: Tracked, message: unknown, flow: () => T): T;
  /**
   * Run `work` under an internal span (a replay, a pool miss, a sealed id reopened), the child of
   * the context in `headers`; `work` gets the headers to send, carrying the step's own context,
   * and that context (a traceparent) when the step is recorded.
   */
  step<T>(name: StepName, attributes: Attributes, headers: Carrier, work: StepWork<T>): Promise<T>;
  /** Whether the request of `headers` is recorded (call sites then build what only a span needs). */
  recorded(headers: Carrier): boolean;
  /** A zero-length internal span under the context in `headers` (an MRTR round's kind). */
  mark(name: StepName, attributes: Attributes, headers: Carrier): void;
  /**
   * The request of `headers` waits for `waited`, work another request started (a replay, traced
   * in that request's trace as `linked`, a traceparent): a span for the wait, linked to it.
   */
  wait<T>(name: StepName, headers: Carrier, linked: string | undefined, waited: Promise<T>): Promise<T>;
  /**
   * A JSON object's text (the params of a message the proxy writes itself, a replayed initialize)
   * with the context of `headers` in its `_meta`, when the request is recorded: each exchange puts
   * its own there. Textual: the params are not parsed for it.
   */
  inParams(params: string, headers: Carrier): string;
  /** The upstream client with a client span around each exchange of a recorded request. */
  client(upstream: UpstreamClient): UpstreamClient;
  /** Export what is pending and stop (shutdown). */
  shutdown(): Promise<void>;
}

export type StepName = 'replay initialize' | 'pool miss' | 'sealed id reopen' | 'mrtr round' | 'replay wait';
export type StepWork<T> = (headers: Carrier, traced: string | undefined) => Promise<T>;

export const NO_TRACING: Tracing = {
  on: false,
  serve: (_req, _res, _tracked, _message, flow) => flow(),
  step: (_name, _attributes, headers, work) => work(headers, undefined),
  recorded: () => false,
  mark: () => undefined,
  wait: (_name, _headers, _linked, waited) => waited,
  inParams: (params) => params,
  client: (upstream) => upstream,
  shutdown: async () => undefined,
};

export interface TracingDeps {
  readonly settings: TelemetrySettings;
  readonly fingerprint: Fingerprint;
  readonly upstreamUrl: URL;
  readonly serviceVersion: string;
}

const UPSTREAM_LOG_ID_CACHE = 10_000;
const SCOPE = 'mcp-session-proxy';

/** NO_TRACING, unless an exporter is configured. */
export function createTracing(deps: TracingDeps): Tracing {
  const { settings } = deps;
  if (settings.traces === undefined && settings.metrics === undefined) return NO_TRACING;
  const resource = resourceFromAttributes({ 'service.name': 'mcp-session-proxy', 'service.version': deps.serviceVersion }).merge(
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win.
    detectResources({ detectors: [envDetector] }),
  );
  const upstream = {
    address: deps.upstreamUrl.hostname,
    port: Number(deps.upstreamUrl.port || (deps.upstreamUrl.protocol === 'https:' ? 443 : 80)),
  };
  const sampling = createSampling(settings.sampler, settings.samplerRatio, ROOT_CONTEXT);
  const exporters = startExportThread(settings.traces?.protocol, settings.metrics?.protocol);
  const spans = settings.traces === undefined ? undefined : startTraces(settings, exporters.spans, resource, sampling, deps.serviceVersion);
  const durations = createDurations(resource, { name: SCOPE, version: deps.serviceVersion }, upstream);
  const metrics = settings.metrics === undefined ? undefined : startMetrics(settings, exporters.metrics, resource, durations.producer);
  const tracer = spans?.tracer;
  const servers = serverSpans(tracer, sampling, metrics === undefined ? undefined : durations.server);
  const steps = tracer === undefined ? undefined : internalSpans(tracer);
  const upstreamLogId = upstreamLogIds(deps.fingerprint);

  return {
    on: true,
    serve: servers.serve,
    step: (name, attributes, headers, work) =>
      steps === undefined ? work(headers, undefined) : steps.step(name, attributes, headers, work),
    recorded: (headers) => steps !== undefined && isSampled(headers[TRACEPARENT]),
    mark: (name, attributes, headers) => steps?.mark(name, attributes, headers),
    wait: (name, headers, linked, waited) => (steps === undefined ? waited : steps.wait(name, headers, linked, waited)),
    inParams: (params, headers) => (isSampled(headers[TRACEPARENT]) ? withMetaMember(params, TRACEPARENT, headers[TRACEPARENT]) : params),
    client: (inner) =>
      tracedClient(inner, { tracer, durations: metrics === undefined ? undefined : durations.client, sampling, upstreamLogId, upstream }),
    async shutdown() {
      await Promise.allSettled([spans?.provider.shutdown(), metrics?.shutdown()]);
    },
  };
}

function startTraces(settings: TelemetrySettings, exporter: SpanExporter, resource: Resource, sampling: Sampling, version: string) {
  const provider = new TracerProvider({
    resource,
    sampler: sampling.sampler,
    idGenerator: sampling.ids,
    spanProcessors: [new BatchSpanProcessor({ exporter, ...settings.batch })],
  });
  return { provider, tracer: provider.getTracer(SCOPE, version) };
}

/** The OTLP metrics: the duration histograms (durations.ts), through the SDK's periodic reader. */
function startMetrics(
  settings: TelemetrySettings,
  exporter: PushMetricExporter,
  resource: Resource,
  producer: MetricProducer,
): MeterProvider {
  return new MeterProvider({
    resource,
    readers: [
      new PeriodicExportingMetricReader({
        exporter,
        exportIntervalMillis: settings.metricExportIntervalMs,
        metricProducers: [producer],
      }),
    ],
  });
}

/**
 * An HMAC per exchange costs as much as the rest of a client span: fingerprints of the upstream
 * ids in use are kept (in memory only, as the links hold the ids themselves). A plain Map,
 * emptied when full: LRUCache's methods run on every request for the session store, and a second
 * cache of another kind would make their call sites polymorphic.
 */
function upstreamLogIds(fingerprint: Fingerprint): (id: UpstreamSessionId) => string {
  const cache = new Map<string, string>();
  return (id) => {
    let logId = cache.get(id);
    if (logId === undefined) {
      if (cache.size >= UPSTREAM_LOG_ID_CACHE) cache.clear();
      cache.set(id, (logId = fingerprint(id)));
    }
    return logId;
  };
}

/**
 * Server spans: the one sampling decision per request. Unsampled, a request gets no span, no
 * attribute object and no context object: its `traceparent` header is made to carry the decision
 * (the caller's context with the sampled flag clear, or new ids when none came), and its duration
 * goes to the histogram.
 */
function serverSpans(tracer: Tracer | undefined, sampling: Sampling, durations: DurationHistogram | undefined) {
  return {
    serve: <T>(req: IncomingMessage, res: ServerResponse, tracked: Tracked, message: unknown, flow: () => T): T => {
      const meta = metaOf(message);
      const { headers } = req;
      // The caller's context: params._meta's if it has one, else the HTTP headers'.
      const inMeta = meta !== undefined && typeof meta[TRACEPARENT] === 'string';
      const carried = inMeta ? meta[TRACEPARENT] : headers[TRACEPARENT];
      const parent = carried === undefined ? undefined : parseTraceparent(carried, inMeta ? meta[TRACESTATE] : headers[TRACESTATE]);
      const ids = parent ?? newIds();
      if (tracer !== undefined && sampling.decide(parent, ids.traceId)) {
        record(
          req,
          res,
          tracked,
          message,
          meta,
          // A new trace keeps the id decided on (under a caller's context, `ids` is the caller's).
          sampling.rootOn(ids.traceId, () =>
            tracer.startSpan('', { kind: SpanKind.SERVER, startTime: tracked.startedAt }, sampling.recordedFrom(parent)),
          ),
        );
      } else {
        headers[TRACEPARENT] = unsampled(parent, carried as string, ids);
        if (durations !== undefined) {
          const method = methodOf(message);
          const version = versionOf(headers['mcp-protocol-version']);
          tracked.onClose = (status) => durations.record(secondsSince(tracked.startedAt), method, version, errorTypeOf(tracked, status));
        }
      }
      return flow();
    },
  };

  /** A recorded request: its server span, and its context where its exchanges find it. */
  function record(
    req: IncomingMessage,
    res: ServerResponse,
    tracked: Tracked,
    message: unknown,
    meta: Record<string, unknown> | undefined,
    span: Span,
  ): void {
    // Literal keys, one object: spreads and computed keys cost measurably per request.
    const attributes: Attributes = {
      'network.protocol.name': 'http',
      'network.protocol.version': req.httpVersion,
      'network.transport': 'tcp',
    };
    span.updateName(describe(message, req.method ?? 'POST', attributes));
    const version = versionOf(req.headers['mcp-protocol-version']);
    if (version !== undefined) attributes[A.protocolVersion] = version;
    if (req.socket.remoteAddress !== undefined) attributes[A.clientAddress] = req.socket.remoteAddress;
    if (req.socket.remotePort !== undefined) attributes[A.clientPort] = req.socket.remotePort;
    span.setAttributes(attributes);
    const own = formatTraceparent(span.spanContext());
    req.headers[TRACEPARENT] = own;
    if (meta !== undefined) {
      // Bodies the proxy writes from this message carry it in params._meta (each exchange puts its own there).
      meta[TRACEPARENT] = own;
      if (typeof meta[TRACESTATE] === 'string' && typeof req.headers[TRACESTATE] !== 'string') req.headers[TRACESTATE] = meta[TRACESTATE];
    }
    // Its steps and exchanges find their parent here without parsing `own` again (keyed as they
    // will ask: with the request's tracestate, which may have come from _meta just above).
    remember(own, req.headers[TRACESTATE], span.spanContext());
    tracked.onClose = (status) => {
      if (tracked.sessionLogId !== null) span.setAttribute(A.sessionId, tracked.sessionLogId);
      if (tracked.replayedFor !== null) span.setAttribute(A.replayed, tracked.replayedFor);
      if (status !== null) span.setAttribute(A.httpStatus, status);
      const errorType = errorTypeOf(tracked, status);
      if (errorType !== undefined) {
        span.setAttribute(A.errorType, errorType);
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
      durations?.record(secondsSince(tracked.startedAt), attributes[A.method] as string | undefined, version, errorType);
    };
  }
}

/** The traceparent an unsampled request passes on: the caller's with the sampled flag clear, or new ids'. */
function unsampled(parent: SpanContext | undefined, carried: string, ids: { traceId: string; spanId: string }): string {
  if (parent === undefined) return `00-${ids.traceId}-${ids.spanId}-00`;
  return isSampled(carried) ? formatTraceparent({ ...parent, traceFlags: 0 }) : carried;
}

function errorTypeOf(tracked: Tracked, status: number | null): string | undefined {
  return tracked.failure?.toLowerCase() ?? (status !== null && status >= 500 ? String(status) : undefined);
}

/** Internal spans under a request's context, for the requests that are recorded. */
function internalSpans(tracer: Tracer) {
  /** The parent context in `headers`, if the request is recorded. */
  const recordedParent = (headers: Carrier) => {
    const value = headers[TRACEPARENT];
    return isSampled(value) ? parentContext(value, headers[TRACESTATE]) : undefined;
  };
  // Attributes set after the start, as on client spans (client-spans.ts says why).
  const start = (name: string, parent: Context, attributes: Attributes, links?: Link[]) =>
    tracer.startSpan(name, { kind: SpanKind.INTERNAL, ...(links === undefined ? {} : { links }) }, parent).setAttributes(attributes);
  const fail = (span: Span, error: unknown) => {
    span.setAttribute(A.errorType, toProxyError(error).reason.toLowerCase());
    span.setStatus({ code: SpanStatusCode.ERROR });
  };
  return {
    async step<T>(name: StepName, attributes: Attributes, headers: Carrier, work: StepWork<T>): Promise<T> {
      const parent = recordedParent(headers);
      if (parent === undefined) return work(headers, undefined);
      const span = start(name, parent, attributes);
      const own = formatTraceparent(span.spanContext());
      try {
        return await work({ ...headers, [TRACEPARENT]: own }, own);
      } catch (error) {
        fail(span, error);
        throw error;
      } finally {
        span.end();
      }
    },
    mark(name: StepName, attributes: Attributes, headers: Carrier): void {
      const parent = recordedParent(headers);
      if (parent !== undefined) start(name, parent, attributes).end();
    },
    async wait<T>(name: StepName, headers: Carrier, linked: string | undefined, waited: Promise<T>): Promise<T> {
      const parent = recordedParent(headers);
      if (parent === undefined) return waited;
      const other = parseTraceparent(linked);
      const span = start(name, parent, {}, other === undefined ? undefined : [{ context: other }]);
      try {
        return await waited;
      } catch (error) {
        fail(span, error);
        throw error;
      } finally {
        span.end();
      }
    },
  };
}

/**
 * The params of a replayed initialize with the replay's context in `_meta`, the client's other
 * `_meta` members kept (its traceparent/tracestate replaced). Replays are rare: parsed here.
 */
function withMetaMember(params: string, key: string, value: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(params);
  } catch {
    return params;
  }
  if (!isObject(parsed)) return params;
  const { traceparent: _p, tracestate: _s, ...rest } = isObject(parsed._meta) ? parsed._meta : {};
  return JSON.stringify({ ...parsed, _meta: { ...rest, [key]: value } });
}

/** `params._meta`, when the caller's context may be there (the MCP carrier, as 2026-07-28 and the conventions put it). */
function metaOf(message: unknown): Record<string, unknown> | undefined {
  return isObject(message) && isObject(message.params) && isObject(message.params._meta) ? message.params._meta : undefined;
}

const secondsSince = (started: number) => (performance.now() - started) / 1000;
