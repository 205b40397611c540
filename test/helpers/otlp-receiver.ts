/**
 * A real OTLP/HTTP receiver on 127.0.0.1 for the tracing tests: it accepts what the official
 * exporters send (/v1/traces and /v1/metrics, http/json or http/protobuf), decodes the spans and
 * metric names, keeps every raw body (for the privacy audit) and answers 200 as a collector does.
 * http/protobuf is decoded by a minimal wire-format reader over the OTLP trace schema (below):
 * nothing in node_modules decodes requests.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';

export type AttributeValue = string | number | boolean;

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  readonly kind: number;
  readonly attributes: Record<string, AttributeValue>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  readonly status: number;
  readonly service: string | undefined;
  /** The spans this one links to. */
  readonly links: { readonly traceId: string; readonly spanId: string }[];
}

export interface OtlpReceiver {
  /** The base URL, as OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly url: string;
  spans(): ReceivedSpan[];
  /** Names of every metric received. */
  metricNames(): string[];
  /** Every request body as text (JSON) or latin1 (protobuf): what the audit searches. */
  rawBodies(): string[];
  /** Content types of the export requests, in order. */
  contentTypes(): string[];
  /** Resolves once `done` holds for the spans received (checked at each export). */
  waitForSpans(done: (spans: ReceivedSpan[]) => boolean): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const metrics: string[] = [];
  const bodies: string[] = [];
  const types: string[] = [];
  const waiters = new Set<() => void>();
  const server = createServer((req, res) => {
    void read(req).then((body) => {
      const type = req.headers['content-type'] ?? '';
      types.push(type);
      const json = type.startsWith('application/json');
      bodies.push(body.toString(json ? 'utf8' : 'latin1'));
      if (req.url === '/v1/traces') spans.push(...(json ? spansOfJson(JSON.parse(body.toString())) : spansOfProtobuf(body)));
      if (req.url === '/v1/metrics') metrics.push(...(json ? metricNamesOfJson(JSON.parse(body.toString())) : metricNamesOfProtobuf(body)));
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
      res.end(json ? '{}' : '');
      for (const waiter of [...waiters]) waiter();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    spans: () => [...spans],
    metricNames: () => [...new Set(metrics)],
    rawBodies: () => [...bodies],
    contentTypes: () => [...types],
    waitForSpans: (done) =>
      new Promise((resolve) => {
        const check = () => {
          if (!done(spans)) return;
          waiters.delete(check);
          resolve([...spans]);
        };
        waiters.add(check);
        check();
      }),
    close: async () => {
      server.close();
      server.closeAllConnections();
      await once(server, 'close');
    },
  };
}

async function read(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

type JsonValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
type JsonKeyValue = { key: string; value: JsonValue };

function valueOfJson(value: JsonValue): AttributeValue {
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  return value.boolValue ?? '';
}

function attributesOfJson(list: JsonKeyValue[] | undefined): Record<string, AttributeValue> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, valueOfJson(kv.value)]));
}

function spansOfJson(request: {
  resourceSpans?: { resource?: { attributes?: JsonKeyValue[] }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[];
}): ReceivedSpan[] {
  return (request.resourceSpans ?? []).flatMap((rs) => {
    const service = attributesOfJson(rs.resource?.attributes)['service.name'];
    return (rs.scopeSpans ?? []).flatMap((ss) =>
      (ss.spans ?? []).map((s) => ({
        traceId: String(s.traceId),
        spanId: String(s.spanId),
        parentSpanId: typeof s.parentSpanId === 'string' ? s.parentSpanId : '',
        name: String(s.name),
        kind: Number(s.kind),
        attributes: attributesOfJson(s.attributes as JsonKeyValue[]),
        status: Number((s.status as { code?: number } | undefined)?.code ?? 0),
        service: typeof service === 'string' ? service : undefined,
        links: ((s.links ?? []) as { traceId?: unknown; spanId?: unknown }[]).map((l) => ({
          traceId: String(l.traceId),
          spanId: String(l.spanId),
        })),
      })),
    );
  });
}

function metricNamesOfJson(request: { resourceMetrics?: { scopeMetrics?: { metrics?: { name: string }[] }[] }[] }): string[] {
  return (request.resourceMetrics ?? []).flatMap((rm) => (rm.scopeMetrics ?? []).flatMap((sm) => (sm.metrics ?? []).map((m) => m.name)));
}

// --- protobuf: the wire format (varint, fixed64, length-delimited, fixed32) and the OTLP fields used.

type Field = { readonly number: number; readonly wire: number; readonly value: bigint | Buffer };

function fieldsOf(buffer: Buffer): Field[] {
  const fields: Field[] = [];
  let at = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = buffer[at++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (at < buffer.length) {
    const key = Number(varint());
    const number = key >> 3;
    const wire = key & 7;
    if (wire === 0) fields.push({ number, wire, value: varint() });
    else if (wire === 1) {
      fields.push({ number, wire, value: buffer.subarray(at, at + 8) });
      at += 8;
    } else if (wire === 2) {
      const length = Number(varint());
      fields.push({ number, wire, value: buffer.subarray(at, at + length) });
      at += length;
    } else if (wire === 5) {
      fields.push({ number, wire, value: buffer.subarray(at, at + 4) });
      at += 4;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
  return fields;
}

const bytesOf = (fields: Field[], number: number): Buffer[] =>
  fields.filter((f) => f.number === number && f.wire === 2).map((f) => f.value as Buffer);
const firstBytes = (fields: Field[], number: number): Buffer | undefined => bytesOf(fields, number)[0];
const firstVarint = (fields: Field[], number: number): number => {
  const field = fields.find((f) => f.number === number && f.wire === 0);
  return field === undefined ? 0 : Number(field.value);
};

/** AnyValue: string_value 1, bool_value 2, int_value 3, double_value 4. */
function valueOfProtobuf(buffer: Buffer): AttributeValue {
  const [field] = fieldsOf(buffer);
  if (field === undefined) return '';
  if (field.number === 1) return (field.value as Buffer).toString();
  if (field.number === 2) return (field.value as bigint) !== 0n;
  if (field.number === 3) return Number(BigInt.asIntN(64, field.value as bigint));
  if (field.number === 4) return (field.value as Buffer).readDoubleLE(0);
  return '';
}

/** repeated KeyValue { key 1, value 2 }. */
function attributesOfProtobuf(list: Buffer[]): Record<string, AttributeValue> {
  return Object.fromEntries(
    list.map((kv) => {
      const fields = fieldsOf(kv);
      return [firstBytes(fields, 1)?.toString() ?? '', valueOfProtobuf(firstBytes(fields, 2) ?? Buffer.alloc(0))];
    }),
  );
}

/**
 * ExportTraceServiceRequest { resource_spans 1 } → ResourceSpans { resource 1 { attributes 1 },
 * scope_spans 2 } → ScopeSpans { spans 2 } → Span { trace_id 1, span_id 2, parent_span_id 4,
 * name 5, kind 6, attributes 9, links 13 { trace_id 1, span_id 2 }, status 15 { code 3 } }.
 */
function spansOfProtobuf(body: Buffer): ReceivedSpan[] {
  return bytesOf(fieldsOf(body), 1).flatMap((resourceSpans) => {
    const rs = fieldsOf(resourceSpans);
    const resource = firstBytes(rs, 1);
    const service = resource === undefined ? undefined : attributesOfProtobuf(bytesOf(fieldsOf(resource), 1))['service.name'];
    return bytesOf(rs, 2).flatMap((scopeSpans) =>
      bytesOf(fieldsOf(scopeSpans), 2).map((span) => {
        const s = fieldsOf(span);
        const status = firstBytes(s, 15);
        return {
          traceId: firstBytes(s, 1)?.toString('hex') ?? '',
          spanId: firstBytes(s, 2)?.toString('hex') ?? '',
          parentSpanId: firstBytes(s, 4)?.toString('hex') ?? '',
          name: firstBytes(s, 5)?.toString() ?? '',
          kind: firstVarint(s, 6),
          attributes: attributesOfProtobuf(bytesOf(s, 9)),
          status: status === undefined ? 0 : firstVarint(fieldsOf(status), 3),
          service: typeof service === 'string' ? service : undefined,
          links: bytesOf(s, 13).map((link) => {
            const l = fieldsOf(link);
            return { traceId: firstBytes(l, 1)?.toString('hex') ?? '', spanId: firstBytes(l, 2)?.toString('hex') ?? '' };
          }),
        };
      }),
    );
  });
}

/** ExportMetricsServiceRequest { resource_metrics 1 } → { scope_metrics 2 } → { metrics 2 } → Metric { name 1 }. */
function metricNamesOfProtobuf(body: Buffer): string[] {
  return bytesOf(fieldsOf(body), 1).flatMap((rm) =>
    bytesOf(fieldsOf(rm), 2).flatMap((sm) => bytesOf(fieldsOf(sm), 2).map((metric) => firstBytes(fieldsOf(metric), 1)?.toString() ?? '')),
  );
}
