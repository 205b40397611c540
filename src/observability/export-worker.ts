/**
 * The OTLP exporters' HTTP side, on a thread of its own (export-thread.ts starts it and sends it
 * request bodies). Exporting from the main thread cost a 1%-sampled proxy about 8% more CPU per
 * call than tracing off (bench/README.md): the exporters' node:http client objects are of the
 * same classes as the request path's (streams, sockets, outgoing messages), and meeting them
 * made Node's own HTTP and stream code there polymorphic, deoptimised after every export.
 *
 * This is the SDK's own OTLP/HTTP export, configured from the environment as the SDK's exporters
 * are (endpoint, headers, compression, timeout, retries, certificates); only the serialisation
 * happened before, on the main thread, with the SDK's serialisers.
 *
 * This file imports packages only (no relative import but erased types): it runs compiled, or as
 * .ts through Node's type stripping in the unit tests.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import {
  JsonMetricsSerializer,
  JsonTraceSerializer,
  ProtobufMetricsSerializer,
  ProtobufTraceSerializer,
  type ISerializer,
} from '@opentelemetry/otlp-transformer';
import { parentPort, workerData } from 'node:worker_threads';
import type { ExportReply, ExportRequest, ExportWorkerData, Serialised, Signal } from './export-messages.js';
import type { OtlpProtocol } from './otel-settings.js';

const data = workerData as ExportWorkerData;

/** The SDK's OTLP/HTTP exporter for a signal, sending bodies already serialised. */
function exporterFor(signal: Signal, protocol: OtlpProtocol): OTLPExporterBase<Serialised> {
  const json = protocol === 'http/json';
  const traces = signal === 'traces';
  // What the SDK's serialiser for this signal reads answers with (partial success).
  const answers: ISerializer<unknown, unknown> = traces
    ? json
      ? JsonTraceSerializer
      : ProtobufTraceSerializer
    : json
      ? JsonMetricsSerializer
      : ProtobufMetricsSerializer;
  const serializer: ISerializer<Serialised, unknown> = {
    serializeRequest: (request) => request.bytes,
    deserializeResponse: (body) => answers.deserializeResponse(body),
  };
  // As the SDK's OTLPTraceExporter and OTLPMetricExporter build themselves (http and proto packages).
  const options = convertLegacyHttpOptions({}, traces ? 'TRACES' : 'METRICS', traces ? 'v1/traces' : 'v1/metrics', {
    'Content-Type': json ? 'application/json' : 'application/x-protobuf',
  });
  const component = traces ? 'otlp_http_span_exporter' : 'otlp_http_metric_exporter';
  const counted = { name: traces ? ('span' as const) : ('metric_data_point' as const), countItems: (request: Serialised) => request.items };
  return new OTLPExporterBase(createOtlpHttpExportDelegate(options, serializer, component, counted, undefined));
}

const exporters: Record<Signal, OTLPExporterBase<Serialised> | undefined> = {
  traces: data.traces === undefined ? undefined : exporterFor('traces', data.traces),
  metrics: data.metrics === undefined ? undefined : exporterFor('metrics', data.metrics),
};

async function handle(request: ExportRequest): Promise<ExportReply> {
  const exporter = exporters[request.signal];
  if (exporter === undefined) return { id: request.id, ok: false, error: `no ${request.signal} exporter` };
  if (request.kind === 'flush') await exporter.forceFlush();
  else if (request.kind === 'shutdown') await exporter.shutdown();
  else if (request.kind === 'export') {
    const result = await new Promise<ExportResult>((resolve) => exporter.export(request, resolve));
    if (result.code !== ExportResultCode.SUCCESS) return { id: request.id, ok: false, error: result.error?.message ?? 'export failed' };
  }
  return { id: request.id, ok: true };
}

parentPort!.on('message', (request: ExportRequest) => {
  handle(request).then(
    (reply) => parentPort!.postMessage(reply),
    (error: unknown) =>
      parentPort!.postMessage({ id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) }),
  );
});
