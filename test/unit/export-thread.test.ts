/**
 * The export thread (observability/export-thread.ts, export-worker.ts) against a real OTLP/HTTP
 * endpoint on 127.0.0.1: what the worker sends is the body serialised on the main thread, and a
 * refused export comes back as a failed result, not a crash.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { TracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExportThread } from '../../src/observability/export-thread.js';

interface Received {
  readonly path: string;
  readonly contentType: string | undefined;
  readonly body: string;
}

describe('the export thread', () => {
  let server: Server;
  const received: Received[] = [];
  let status = 200;
  const saved = { ...process.env };

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push({ path: req.url ?? '', contentType: req.headers['content-type'], body: Buffer.concat(chunks).toString() });
        res.writeHead(status, { 'content-type': 'application/json' }).end(status === 200 ? '{}' : '{"code":3,"message":"refused"}');
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    // The worker's exporters read their endpoint from the environment it starts with, as the SDK's do.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    process.env = saved;
    server.close();
    await once(server, 'close');
  });

  const finishedSpans = async () => {
    const memory = new InMemorySpanExporter();
    const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: memory })] });
    provider
      .getTracer('export-thread-test')
      .startSpan('tools/call echo', { attributes: { 'mcp.method.name': 'tools/call' } })
      .end();
    await provider.forceFlush();
    const spans = memory.getFinishedSpans();
    expect(spans).toHaveLength(1);
    return spans;
  };
  const exported = (thread: ReturnType<typeof startExportThread>, spans: Awaited<ReturnType<typeof finishedSpans>>) =>
    new Promise<ExportResult>((resolve) => thread.spans.export(spans, resolve));

  it('sends the spans serialised on this thread (http/json) to /v1/traces, and shuts down', async () => {
    const thread = startExportThread('http/json', undefined);
    const spans = await finishedSpans();
    const result = await exported(thread, spans);
    expect(result.code).toBe(ExportResultCode.SUCCESS);
    const sent = received.at(-1)!;
    expect(sent.path).toBe('/v1/traces');
    expect(sent.contentType).toBe('application/json');
    const body = JSON.parse(sent.body) as { resourceSpans: { scopeSpans: { spans: { name: string; traceId: string }[] }[] }[] };
    const span = body.resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
    expect(span.name).toBe('tools/call echo');
    expect(span.traceId).toBe(spans[0]!.spanContext().traceId);
    await thread.spans.shutdown();
  });

  it('a refused export is a failed result; after shutdown, exports fail at once', async () => {
    status = 400;
    const thread = startExportThread('http/protobuf', undefined);
    const refused = await exported(thread, await finishedSpans());
    expect(refused.code).toBe(ExportResultCode.FAILED);
    expect(received.at(-1)!.contentType).toBe('application/x-protobuf');
    await thread.spans.shutdown();
    // Again: nothing to do, and it does not throw.
    await thread.spans.shutdown();
    const after = await exported(thread, await finishedSpans());
    expect(after.code).toBe(ExportResultCode.FAILED);
    expect(after.error?.message).toMatch(/export thread exited/);
    status = 200;
  });
});

/**
 * Moving a buffer to the worker would detach it, and the first detach in a process invalidates
 * V8's ArrayBufferDetaching protector: every function compiled on the assumption that none is
 * gets deoptimised at once, about 150 of the request path's (bench/README.md). A separate Node process
 * with V8's protector tracing on exports through the thread; a control process that does detach
 * shows the trace names it, so the check cannot pass because the trace went quiet.
 */
describe('the export thread and V8', () => {
  const TRACE = 'Invalidating protector cell ArrayBufferDetaching';
  const run = async (script: string) => {
    const child = spawn(process.execPath, ['--trace-protector-invalidation', '--import', 'tsx', '-e', script], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const [code] = (await once(child, 'close')) as [number | null];
    return { code, output };
  };

  it('a detach shows in the trace (the control)', async () => {
    const { code, output } = await run(
      `const b = new Uint8Array(8); structuredClone(b, { transfer: [b.buffer] }); console.log('detached', b.byteLength);`,
    );
    expect(code).toBe(0);
    expect(output).toContain('detached 0');
    expect(output).toContain(TRACE);
  });

  it('exporting spans and metrics detaches no buffer in the process', async () => {
    const script = `
      import { createServer } from 'node:http';
      import { once } from 'node:events';
      import { TracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
      const server = createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end()); });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      process.env.OTEL_EXPORTER_OTLP_ENDPOINT = 'http://127.0.0.1:' + server.address().port;
      const { startExportThread } = await import('./src/observability/export-thread.ts');
      const memory = new InMemorySpanExporter();
      const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: memory })] });
      for (let i = 0; i < 3; i++) provider.getTracer('t').startSpan('tools/call echo').end();
      await provider.forceFlush();
      const thread = startExportThread('http/protobuf', 'http/json');
      for (let i = 0; i < 2; i++) {
        const result = await new Promise((resolve) => thread.spans.export(memory.getFinishedSpans(), resolve));
        console.log('exported', result.code); if (result.error) console.log(String(result.error));
      }
      const metrics = { resource: memory.getFinishedSpans()[0].resource, scopeMetrics: [] };
      const result = await new Promise((resolve) => thread.metrics.export(metrics, resolve));
      console.log('exported', result.code); if (result.error) console.log(String(result.error));
      await thread.spans.shutdown();
      await thread.metrics.shutdown();
      server.close();
    `;
    const { code, output } = await run(script);
    expect(code, output).toBe(0);
    // Three exports, each a success (ExportResultCode.SUCCESS is 0).
    expect(output.match(/^exported 0$/gm), output).toHaveLength(3);
    expect(output).not.toContain(TRACE);
  });
});
