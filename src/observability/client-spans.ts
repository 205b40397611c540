/**
 * The upstream client, traced: a client span per upstream HTTP exchange of a recorded request,
 * and the client duration histogram for every exchange. The parent is the context in the
 * exchange's own `traceparent` header (trace-context.ts): an unsampled one costs a character test
 * and the histogram, nothing else.
 */
import { SpanKind, SpanStatusCode, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import type { Readable } from 'node:stream';
import { readUpstreamId, type UpstreamSessionId } from '../session/ids.js';
import { toProxyError, type UpstreamClient, type UpstreamRequest, type UpstreamResponse } from '../upstream/client.js';
import type { DurationHistogram } from './durations.js';
import type { Sampling } from './sampling.js';
import { A, describe, methodOf, versionOf } from './span-attributes.js';
import { formatTraceparent, isSampled, newIds, parentContext, TRACEPARENT, TRACESTATE } from './trace-context.js';

export interface ClientSpanParts {
  readonly tracer: Tracer | undefined;
  readonly durations: DurationHistogram | undefined;
  readonly sampling: Sampling;
  /** The log fingerprint of an upstream session id (never the id on a span). */
  readonly upstreamLogId: (id: UpstreamSessionId) => string;
  readonly upstream: { readonly address: string; readonly port: number };
}

export function tracedClient(inner: UpstreamClient, parts: ClientSpanParts): UpstreamClient {
  const { tracer, durations, sampling, upstream } = parts;

  /** An exchange no span is recorded for: timed only (no async frame of its own: this is every unsampled exchange). */
  function timed(request: UpstreamRequest, started: number, durations: DurationHistogram): Promise<UpstreamResponse> {
    const method = methodOf(request.rpc);
    const version = versionOf(request.headers['mcp-protocol-version']);
    return inner.request(request).then(
      (response) => {
        const errorType = response.statusCode >= 400 ? String(response.statusCode) : undefined;
        // The exchange is over when its body is: an SSE answer lasts as long as its stream.
        whenDone(response.body, () => durations.record(secondsSince(started), method, version, errorType));
        return response;
      },
      (error: unknown) => {
        durations.record(secondsSince(started), method, version, toProxyError(error).reason.toLowerCase());
        throw error;
      },
    );
  }

  /** An exchange of a recorded trace: its client span, whose context goes upstream instead of the parent's. */
  async function traced(
    request: UpstreamRequest,
    started: number,
    tracer: Tracer,
    parent: string | undefined,
    rootTraceId?: string,
  ): Promise<UpstreamResponse> {
    const attributes: Attributes = {
      'http.request.method': request.method,
      'network.protocol.name': 'http',
      'network.transport': 'tcp',
      'server.address': upstream.address,
      'server.port': upstream.port,
    };
    const name = describe(request.rpc, request.method, attributes);
    const version = versionOf(request.headers['mcp-protocol-version']);
    if (version !== undefined) attributes[A.protocolVersion] = version;
    const upstreamId = readUpstreamId(request.headers['mcp-session-id']);
    if (upstreamId.kind === 'valid') attributes[A.sessionId] = parts.upstreamLogId(upstreamId.id);
    const context = (parent === undefined ? undefined : parentContext(parent, request.headers[TRACESTATE])) ?? sampling.recordedRoot;
    const start = () => tracer.startSpan(name, { kind: SpanKind.CLIENT }, context);
    // Set after the start, not given to it: the SDK checks start attributes twice (for the
    // sampler, then for the span), each check of a value allocating a WeakSet; the sampling
    // decision was made at the server span and reads no attribute.
    const span = (rootTraceId === undefined ? start() : sampling.rootOn(rootTraceId, start)).setAttributes(attributes);
    const own = formatTraceparent(span.spanContext());
    const sent: UpstreamRequest = { ...request, headers: { ...request.headers, [TRACEPARENT]: own } };
    // A body the proxy wrote from a recorded request's message carries its context in
    // params._meta (serve put it there): the exchange's own goes instead, as in the header.
    if (typeof request.body === 'string' && parent !== undefined && request.body.includes(parent)) {
      (sent as { body?: UpstreamRequest['body'] }).body = request.body.replace(parent, own);
    }
    let response: UpstreamResponse;
    try {
      response = await inner.request(sent);
    } catch (error) {
      finish(span, attributes, started, toProxyError(error).reason.toLowerCase());
      throw error;
    }
    span.setAttribute(A.httpStatus, response.statusCode);
    const errorType = response.statusCode >= 400 ? String(response.statusCode) : undefined;
    whenDone(response.body, () => finish(span, attributes, started, errorType));
    return response;
  }

  function finish(span: Span, attributes: Attributes, started: number, errorType: string | undefined): void {
    if (errorType !== undefined) {
      span.setAttribute(A.errorType, errorType);
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
    durations?.record(
      secondsSince(started),
      attributes[A.method] as string | undefined,
      attributes[A.protocolVersion] as string | undefined,
      errorType,
    );
  }

  return {
    probe: (timeoutMs) => inner.probe(timeoutMs),
    close: () => inner.close(),
    request(request) {
      const started = performance.now();
      const parent = request.headers[TRACEPARENT];
      if (tracer !== undefined) {
        if (isSampled(parent)) return traced(request, started, tracer, parent);
        // Outside any request (an eviction's DELETE, the startup era probe): a root, if sampled.
        if (parent === undefined) {
          const { traceId } = newIds();
          if (sampling.decide(undefined, traceId)) return traced(request, started, tracer, undefined, traceId);
        }
      }
      return durations === undefined ? inner.request(request) : timed(request, started, durations);
    },
  };
}

const secondsSince = (started: number) => (performance.now() - started) / 1000;

function whenDone(body: Readable, done: () => void): void {
  if (body.readableEnded || body.destroyed) return done();
  // The last byte read ('end'), or a failure ('error': undici turns a destroy before the end, the
  // caller's or the upstream's, into one). Not 'close', though it comes in both cases: a 'close'
  // listener on undici's bodies, even an empty one, doubled what each scavenge had to keep
  // (3.3 MB against 1.9 MB, 2026-07-28 calls at 1% sampled, --trace-gc-nvp; bench/README.md), for
  // reasons not found.
  let over = false;
  const once = () => {
    if (over) return;
    over = true;
    done();
  };
  body.once('end', once);
  body.once('error', once);
}
