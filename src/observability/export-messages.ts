/**
 * What the main thread and the export worker (export-worker.ts) say to each other. An export is
 * its OTLP request body, serialised on the main thread by the SDK's serialiser and copied to the
 * worker (never moved: see export-thread.ts), which sends it.
 */
import type { OtlpProtocol } from './otel-settings.js';

export type Signal = 'traces' | 'metrics';

export interface ExportWorkerData {
  readonly traces: OtlpProtocol | undefined;
  readonly metrics: OtlpProtocol | undefined;
}

/** One export: the request body, and how many spans or data points it holds (the exporter's own metrics count them). */
export interface Serialised {
  readonly bytes: Uint8Array;
  readonly items: number;
}

export type ExportRequest =
  | ({ readonly id: number; readonly kind: 'export'; readonly signal: Signal } & Serialised)
  | { readonly id: number; readonly kind: 'flush' | 'shutdown'; readonly signal: Signal };

export type ExportReply = { readonly id: number; readonly ok: true } | { readonly id: number; readonly ok: false; readonly error: string };
