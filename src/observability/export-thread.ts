/**
 * The exporters the SDK's span processor and metric reader are given on the main thread: each
 * serialises its batch with the SDK's serialiser and moves the body to the export worker
 * (export-worker.ts), which sends it. Why a thread: see there.
 *
 * The worker does not keep the process alive, except while an answer is awaited (a shutdown's
 * last export). If it dies, what was waiting fails, and so does every export after.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import {
  JsonMetricsSerializer,
  JsonTraceSerializer,
  ProtobufMetricsSerializer,
  ProtobufTraceSerializer,
  type ISerializer,
} from '@opentelemetry/otlp-transformer';
import type { PushMetricExporter, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { Worker } from 'node:worker_threads';
import type { ExportReply, ExportRequest, ExportWorkerData, Signal } from './export-messages.js';
import type { OtlpProtocol } from './otel-settings.js';

export interface ExportThread {
  readonly spans: SpanExporter;
  readonly metrics: PushMetricExporter;
}

type Unsent<T> = T extends unknown ? Omit<T, 'id'> : never;

// The worker's file beside this one: compiled (.js), or the source the unit tests run (.ts).
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './export-worker.ts' : './export-worker.js', import.meta.url);

export function startExportThread(traces: OtlpProtocol | undefined, metrics: OtlpProtocol | undefined): ExportThread {
  const data: ExportWorkerData = { traces, metrics };
  const worker = new Worker(WORKER_URL, { workerData: data });
  worker.unref();
  const pending = new Map<number, (reply: ExportReply) => void>();
  let nextId = 0;
  let gone: string | undefined;

  const settle = (reply: ExportReply) => {
    const done = pending.get(reply.id);
    if (done === undefined) return;
    pending.delete(reply.id);
    if (pending.size === 0) worker.unref();
    done(reply);
  };
  const failAll = (why: string) => {
    gone ??= why;
    for (const id of [...pending.keys()]) settle({ id, ok: false, error: why });
  };
  worker.on('message', settle);
  worker.on('error', (error: Error) => failAll(`the export thread failed: ${error.message}`));
  worker.on('exit', (code) => failAll(`the export thread exited (${code})`));

  const ask = (request: Unsent<ExportRequest>): Promise<ExportReply> =>
    new Promise((resolve) => {
      const id = nextId++;
      if (gone !== undefined) return resolve({ id, ok: false, error: gone });
      if (pending.size === 0) worker.ref();
      pending.set(id, resolve);
      worker.postMessage({ ...request, id });
    });

  /** Serialise `items` on this thread, send them from the worker. */
  function send<T>(signal: Signal, serializer: ISerializer<T, unknown>, items: T, count: number, done: (result: ExportResult) => void) {
    let bytes = serializer.serializeRequest(items);
    if (bytes === undefined) return done({ code: ExportResultCode.FAILED, error: new Error('nothing to send') });
    // Copied, never moved: moving (transferring) an ArrayBuffer detaches it, and the first detach
    // in a process invalidates V8's ArrayBufferDetaching protector, deoptimising every function
    // compiled on the assumption that none is (about 150 of the request path's at once; the 1%
    // setting of bench/tracing-cpu.ts paid 0.04-0.06 for it). The copy is a memcpy. postMessage
    // copies a view's whole buffer (and shares a shared one): a view on part of a buffer (the
    // protobuf writer's, a pooled Buffer, whose slice() would not copy) is copied out first.
    if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength || !(bytes.buffer instanceof ArrayBuffer))
      bytes = new Uint8Array(bytes);
    void ask({ kind: 'export', signal, bytes, items: count }).then((reply) =>
      done(reply.ok ? { code: ExportResultCode.SUCCESS } : { code: ExportResultCode.FAILED, error: new Error(reply.error) }),
    );
  }
  const control = async (kind: 'flush' | 'shutdown', signal: Signal) => {
    const reply = await ask({ kind, signal });
    if (!reply.ok && gone === undefined) throw new Error(reply.error);
  };
  // The worker ends when each signal in use has shut its exporter down (once; again is a no-op).
  const open = new Set<Signal>([
    ...(traces === undefined ? [] : ['traces' as const]),
    ...(metrics === undefined ? [] : ['metrics' as const]),
  ]);
  const shutdown = async (signal: Signal) => {
    if (!open.delete(signal)) return;
    try {
      await control('shutdown', signal);
    } finally {
      if (open.size === 0) await worker.terminate();
    }
  };

  const spanSerializer = traces === 'http/json' ? JsonTraceSerializer : ProtobufTraceSerializer;
  const metricSerializer = metrics === 'http/json' ? JsonMetricsSerializer : ProtobufMetricsSerializer;
  return {
    spans: {
      export: (spans: ReadableSpan[], done) => send('traces', spanSerializer, spans, spans.length, done),
      forceFlush: () => control('flush', 'traces'),
      shutdown: () => shutdown('traces'),
    },
    metrics: {
      export: (data: ResourceMetrics, done) => send('metrics', metricSerializer, data, dataPoints(data), done),
      forceFlush: () => control('flush', 'metrics'),
      shutdown: () => shutdown('metrics'),
    },
  };
}

const dataPoints = (data: ResourceMetrics): number =>
  data.scopeMetrics.reduce((n, scope) => n + scope.metrics.reduce((m, metric) => m + metric.dataPoints.length, 0), 0);
