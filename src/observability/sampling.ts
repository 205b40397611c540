/**
 * Sampling is decided once per request, at its server span, by the configured sampler
 * (OTEL_TRACES_SAMPLER{,_ARG}); every span below follows that decision (parent-based), so an
 * unsampled request builds no span at all. The tracer provider gets `followDecision`, which makes
 * the SDK agree: a server span the proxy decided to record is recorded, any other span follows its
 * parent, and a span with no parent (an exchange outside any request) is decided as a root.
 */
import { createContextKey, TraceFlags, trace, type Context, type SpanContext } from '@opentelemetry/api';
import {
  RandomIdGenerator,
  SamplingDecision,
  TraceIdRatioBasedSampler,
  type IdGenerator,
  type Sampler,
  type SamplingResult,
} from '@opentelemetry/sdk-trace';

export interface Sampling {
  /** Whether a request with this parent context (undefined: none came) is recorded; `traceId` is its trace's. */
  decide(parent: SpanContext | undefined, traceId: string): boolean;
  /** For the tracer provider. */
  readonly sampler: Sampler;
  /** The context a recorded root server span starts from (the decision is already made). */
  readonly recordedRoot: Context;
  /**
   * The context a server span `decide` said to record starts from: under the caller's context if
   * one came, marked decided, so that the SDK records it whatever the caller's flag said
   * (always_on, traceidratio: they do not follow the caller).
   */
  recordedFrom(parent: SpanContext | undefined): Context;
  /** For the tracer provider: the SDK's random ids, but a root span started by `rootOn` takes the trace id given there. */
  readonly ids: IdGenerator;
  /**
   * Start a root span (`start` calls the tracer) on the trace id its decision was made on: the
   * ratio samplers decide on the trace id, so a trace they selected must keep it (another service
   * deciding on the same id with the same ratio then agrees).
   */
  rootOn<T>(traceId: string, start: () => T): T;
}

const RECORDED: SamplingResult = { decision: SamplingDecision.RECORD_AND_SAMPLED };
const DROPPED: SamplingResult = { decision: SamplingDecision.NOT_RECORD };
const DECIDED = createContextKey('mcp-session-proxy sampled at the server span');

export function createSampling(name: string, ratio: number, rootContext: Context): Sampling {
  const byRatio = new TraceIdRatioBasedSampler(ratio);
  const parentBased = name.startsWith('parentbased_');
  const rootKind = parentBased ? name.slice('parentbased_'.length) : name;
  // A root's decision: always, never, or by the trace id (the same for every service using the ratio).
  const root = (traceId: string): boolean =>
    rootKind === 'always_on' ||
    (rootKind === 'traceidratio' && byRatio.shouldSample(rootContext, traceId).decision !== SamplingDecision.NOT_RECORD);
  const decide = (parent: SpanContext | undefined, traceId: string): boolean =>
    parentBased && parent !== undefined ? (parent.traceFlags & TraceFlags.SAMPLED) !== 0 : root(traceId);
  const recordedRoot = rootContext.setValue(DECIDED, true);
  const random = new RandomIdGenerator();
  let decidedTraceId: string | undefined;
  return {
    decide,
    recordedRoot,
    ids: {
      generateSpanId: () => random.generateSpanId(),
      generateTraceId: () => decidedTraceId ?? random.generateTraceId(),
    },
    rootOn(traceId, start) {
      decidedTraceId = traceId;
      try {
        return start();
      } finally {
        decidedTraceId = undefined;
      }
    },
    recordedFrom: (parent) => (parent === undefined ? recordedRoot : trace.setSpanContext(recordedRoot, parent)),
    sampler: {
      shouldSample(context, traceId) {
        if (context.getValue(DECIDED) === true) return RECORDED;
        const parent = trace.getSpanContext(context);
        if (parent !== undefined) return (parent.traceFlags & TraceFlags.SAMPLED) !== 0 ? RECORDED : DROPPED;
        return root(traceId) ? RECORDED : DROPPED;
      },
      toString: () => `${name} decided at the server span`,
    },
  };
}
