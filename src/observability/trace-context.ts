/**
 * W3C trace context as the proxy carries it: the `traceparent` value itself. A request's context
 * travels in its own header map (the server span puts its context in the request's
 * `traceparent`, and every upstream header map is copied from the request's), so no
 * AsyncLocalStorage is needed to find it again: on Node 20 one makes every promise of the process
 * pay a hook, sampled or not.
 */
import { randomFillSync } from 'node:crypto';
import { createTraceState, ROOT_CONTEXT, TraceFlags, trace, type Context, type SpanContext } from '@opentelemetry/api';

export const TRACEPARENT = 'traceparent';
export const TRACESTATE = 'tracestate';

// version "-" trace-id "-" parent-id "-" trace-flags (W3C Trace Context level 1, §3.2); a
// higher version may append fields after the flags.
const TRACEPARENT_SHAPE = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-|$)/;
const INVALID_TRACE_ID = '00000000000000000000000000000000';
const INVALID_SPAN_ID = '0000000000000000';

/** The span context a `traceparent` value names; undefined if it is not a valid one. */
export function parseTraceparent(value: unknown, tracestate?: unknown): SpanContext | undefined {
  if (typeof value !== 'string') return undefined;
  const match = TRACEPARENT_SHAPE.exec(value.trim());
  if (match === null) return undefined;
  const [, version, traceId, spanId, flags, rest] = match as unknown as [string, string, string, string, string, string];
  if (version === 'ff' || (version === '00' && rest !== '') || traceId === INVALID_TRACE_ID || spanId === INVALID_SPAN_ID) return undefined;
  const context: SpanContext = { traceId, spanId, traceFlags: parseInt(flags, 16) & TraceFlags.SAMPLED, isRemote: true };
  return typeof tracestate === 'string' && tracestate !== '' ? { ...context, traceState: createTraceState(tracestate) } : context;
}

// The last parent asked for, and its OTel context: a recorded request's steps and exchanges ask
// for their request's again and again (a 2026-07-28 call: its MRTR round, then its exchange).
let last: { value: string; tracestate: unknown; context: Context } | undefined;

/** The context to start a span under, as the child of the one a `traceparent` names; undefined if it names none. */
export function parentContext(value: string, tracestate: unknown): Context | undefined {
  if (last !== undefined && last.value === value && last.tracestate === tracestate) return last.context;
  const parent = parseTraceparent(value, tracestate);
  return parent === undefined ? undefined : remember(value, tracestate, parent);
}

/** The context for the span whose `traceparent` (and the request's `tracestate`) this is, known without parsing. */
export function remember(value: string, tracestate: unknown, span: SpanContext): Context {
  const context = trace.setSpanContext(ROOT_CONTEXT, span);
  last = { value, tracestate, context };
  return context;
}

export function formatTraceparent(context: Pick<SpanContext, 'traceId' | 'spanId' | 'traceFlags'>): string {
  return `00-${context.traceId}-${context.spanId}-${context.traceFlags & TraceFlags.SAMPLED ? '01' : '00'}`;
}

/**
 * Whether a `traceparent` value is one the proxy wrote for a sampled span, or a caller's with the
 * sampled flag, without parsing it: the unsampled path reads one character.
 */
export function isSampled(value: string | string[] | undefined): value is string {
  if (typeof value !== 'string' || value.length < 55) return false;
  // The flags' low bit is the last hex digit's.
  const digit = value.charCodeAt(54);
  return (digit >= 48 && digit <= 57 ? digit - 48 : digit - 87) % 2 === 1;
}

// Random ids for the traceparent of an unsampled request that came without one, from a pooled
// buffer (a randomFillSync per request would cost more than the rest of its tracing).
const POOL = Buffer.alloc(24 * 256);
let offset = POOL.length;

/** A new trace id and span id (hex), as the SDK makes them. */
export function newIds(): { traceId: string; spanId: string } {
  if (offset === POOL.length) {
    randomFillSync(POOL);
    offset = 0;
  }
  // One hex string for both (slices of it are not copies).
  const hex = POOL.toString('hex', offset, offset + 24);
  offset += 24;
  return { traceId: hex.slice(0, 32), spanId: hex.slice(32) };
}
