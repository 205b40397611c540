/**
 * Which MCP era a POST belongs to, and the validation a 2026-07-28 server applies to a modern one.
 *
 * Mirrors the TypeScript SDK v2 server (`createMcpHandler` 2.4.0: `classifyInboundRequest`, then
 * `serveModern`, then dispatch's method-not-found), so a modern client sees from the proxy the same
 * status, code, message and `data` it would see from a modern server. Body-primary: a message is
 * modern iff `params._meta` holds the protocol-version key; the `MCP-Protocol-Version` header is
 * only a cross-check (and decides for claim-less notifications).
 *
 * Pure: no I/O, never throws on any input (property-tested). Legacy traffic is not judged here: it
 * goes on to `classifyBody` in protocol.ts exactly as before, batches and all.
 */
import type { JsonRpcId, ProxyErrorReason } from '../errors.js';
import { isObject, PROTOCOL_VERSION_HEADER } from './protocol.js';

export const MODERN_PROTOCOL_VERSION = '2026-07-28';
/** What this proxy serves on the modern side (the v2 server's `SUPPORTED_MODERN_PROTOCOL_VERSIONS`). */
const SUPPORTED_MODERN_VERSIONS: readonly string[] = [MODERN_PROTOCOL_VERSION];

export const ENVELOPE = {
  protocolVersion: 'io.modelcontextprotocol/protocolVersion',
  clientCapabilities: 'io.modelcontextprotocol/clientCapabilities',
  clientInfo: 'io.modelcontextprotocol/clientInfo',
  logLevel: 'io.modelcontextprotocol/logLevel',
  serverInfo: 'io.modelcontextprotocol/serverInfo',
  subscriptionId: 'io.modelcontextprotocol/subscriptionId',
} as const;

// Node lower-cases incoming header names.
export const MCP_METHOD_HEADER = 'mcp-method';
export const MCP_NAME_HEADER = 'mcp-name';

/**
 * The three routing headers as the client sent them (before OWS trimming, which happens here).
 * A header Node delivers as several lines is joined with ", " (what Fetch's `Headers.get`, and so
 * the v2 server, sees): use {@link routingHeadersOf}. An empty value is present, not absent.
 */
export interface RoutingHeaders {
  readonly protocolVersion: string | undefined;
  readonly method: string | undefined;
  readonly name: string | undefined;
}

/** The routing headers out of Node's header object (names already lower-cased by Node). */
export function routingHeadersOf(headers: Readonly<Record<string, string | string[] | undefined>>): RoutingHeaders {
  const one = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value.join(', ') : value);
  return {
    protocolVersion: one(headers[PROTOCOL_VERSION_HEADER]),
    method: one(headers[MCP_METHOD_HEADER]),
    name: one(headers[MCP_NAME_HEADER]),
  };
}

export type LoggingLevel = 'debug' | 'info' | 'notice' | 'warning' | 'error' | 'critical' | 'alert' | 'emergency';
// RFC 5424 severities, least severe first.
const LOGGING_LEVELS: readonly LoggingLevel[] = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

export function isLoggingLevel(value: unknown): value is LoggingLevel {
  return typeof value === 'string' && (LOGGING_LEVELS as readonly string[]).includes(value);
}

/** Whether a `notifications/message` at `level` passes a request's `logLevel` threshold. */
export function severityAtLeast(level: LoggingLevel, threshold: LoggingLevel): boolean {
  return LOGGING_LEVELS.indexOf(level) >= LOGGING_LEVELS.indexOf(threshold);
}

/** The validated per-request `_meta` envelope of a modern request. */
export interface Envelope {
  readonly protocolVersion: string;
  readonly clientCapabilities: Record<string, unknown>;
  readonly clientInfo: { name: string; version: string; [k: string]: unknown } | undefined;
  /** Absent: the request wants no `notifications/message` at all. */
  readonly logLevel: LoggingLevel | undefined;
}

/** The requests the proxy serves to modern clients (2026-07-28 registry, no tasks extension). */
export type ModernMethod =
  | 'server/discover'
  | 'tools/list'
  | 'tools/call'
  | 'prompts/list'
  | 'prompts/get'
  | 'resources/list'
  | 'resources/templates/list'
  | 'resources/read'
  | 'completion/complete'
  | 'subscriptions/listen';

const MODERN_METHODS: ReadonlySet<string> = new Set<ModernMethod>([
  'server/discover',
  'tools/list',
  'tools/call',
  'prompts/list',
  'prompts/get',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'completion/complete',
  'subscriptions/listen',
]);

function isModernMethod(method: string): method is ModernMethod {
  return MODERN_METHODS.has(method);
}

export type ModernMessage =
  | {
      readonly kind: 'request';
      readonly id: JsonRpcId;
      readonly method: ModernMethod;
      readonly params: Record<string, unknown>;
      readonly envelope: Envelope;
    }
  /** Answered 202 with an empty body. */
  | { readonly kind: 'notification'; readonly method: string; readonly params: Record<string, unknown> | undefined };

/** An error answer: `reason` gives status and code (PROXY_ERRORS); message and data are the v2 server's. */
export interface EraRefusal {
  readonly reason: ProxyErrorReason;
  readonly message: string;
  readonly data: Record<string, unknown> | undefined;
  readonly id: JsonRpcId | null;
}

export type EraDecision =
  | { readonly era: 'legacy' }
  | { readonly era: 'modern'; readonly message: ModernMessage }
  | { readonly era: 'refused'; readonly refusal: EraRefusal };

type Obj = Record<string, unknown>;

const LEGACY: EraDecision = { era: 'legacy' };

function own(object: Obj, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

/**
 * The v2 server's `isModernProtocolVersion`: a plain string comparison, so any value that sorts
 * after '2026-07-28' (`'foo'`, `'v999.0.0'`, `'2027'`) names a modern revision. Mirrored on purpose:
 * clients and the conformance suite see the same answers as from a v2 server.
 */
function namesModern(version: string): boolean {
  return version >= MODERN_PROTOCOL_VERSION;
}

/** RFC 9110 optional whitespace (SP, HTAB) around a field value; the v2 server strips it too. */
function stripOws(value: string): string {
  return value.replace(/^[ \t]+|[ \t]+$/g, '');
}

// ---------------------------------------------------------------------------------------------
// Mcp-Name: `=?base64?<base64 of UTF-8>?=` sentinel

const BASE64_PREFIX = '=?base64?';
const BASE64_SUFFIX = '?=';
// RFC 4648 with required padding: the v2 server refuses anything else inside the sentinel.
const CANONICAL_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The value an `Mcp-Name` header names: OWS-trimmed, then the base64 sentinel decoded (UTF-8).
 * Values without the sentinel come back as they are; undefined when the sentinel's payload is not
 * canonical base64 or not UTF-8.
 */
export function decodeMcpName(raw: string): string | undefined {
  const value = stripOws(raw);
  if (!(value.startsWith(BASE64_PREFIX) && value.endsWith(BASE64_SUFFIX))) return value;
  const payload = value.slice(BASE64_PREFIX.length, value.length - BASE64_SUFFIX.length);
  if (!CANONICAL_BASE64.test(payload)) return undefined;
  try {
    // fatal: reject bytes that are not UTF-8 (the v2 server's TextDecoder options, BOM handling included).
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(payload, 'base64'));
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The shapes the v2 server accepts as a request or a notification (its zod guards, `.strict()`).

function isRequestId(value: unknown): value is JsonRpcId {
  return typeof value === 'string' || (typeof value === 'number' && Number.isSafeInteger(value));
}

const REQUEST_KEYS: ReadonlySet<string> = new Set(['jsonrpc', 'id', 'method', 'params']);
const NOTIFICATION_KEYS: ReadonlySet<string> = new Set(['jsonrpc', 'method', 'params']);

/** `params` and `params._meta` as the v2 guards admit them (`progressToken`, related-task). */
function isBaseParams(params: unknown): boolean {
  if (params === undefined) return true;
  if (!isObject(params)) return false;
  if (!Object.hasOwn(params, '_meta')) return true;
  const meta = params._meta;
  if (!isObject(meta)) return false;
  if (Object.hasOwn(meta, 'progressToken') && !isRequestId(meta.progressToken)) return false;
  const related = own(meta, 'io.modelcontextprotocol/related-task');
  if (related !== undefined && !(isObject(related) && typeof related.taskId === 'string')) return false;
  return true;
}

function messageShape(body: Obj): 'request' | 'notification' | undefined {
  if (body.jsonrpc !== '2.0' || typeof body.method !== 'string' || !isBaseParams(own(body, 'params'))) {
    return undefined;
  }
  const keys = Object.keys(body);
  if (Object.hasOwn(body, 'id')) {
    return isRequestId(body.id) && keys.every((key) => REQUEST_KEYS.has(key)) ? 'request' : undefined;
  }
  return keys.every((key) => NOTIFICATION_KEYS.has(key)) ? 'notification' : undefined;
}

// ---------------------------------------------------------------------------------------------
// The per-request `_meta` envelope, validated like the v2 server's `validateEnvelopeMeta`: missing
// required keys first (in this order), then the zod schema's issues in its key order, each as
// `{ key: dotted path, problem: zod's message }`. Only the first issue is ever reported.

interface EnvelopeIssue {
  readonly key: string;
  readonly problem: string;
}

const REQUIRED_ENVELOPE_KEYS = [ENVELOPE.protocolVersion, ENVELOPE.clientCapabilities] as const;

/** zod's name for what it received. */
function received(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number' && Number.isNaN(value)) return 'NaN';
  return typeof value;
}

/**
 * A zod check of one value: undefined when it passes, else where (relative to the value) and what.
 * The path is built only on failure, from the failing key outwards: checking a valid envelope on
 * every request allocates nothing.
 */
type Check = (value: unknown) => Found | undefined;

interface Found {
  /** Keys from the checked value down to the failing one; parents prepend theirs. */
  readonly path: string[];
  readonly problem: string;
}

function found(problem: string): Found {
  return { path: [], problem };
}

function at(key: string, inner: Found | undefined): Found | undefined {
  inner?.path.unshift(key);
  return inner;
}

function toIssue({ path, problem }: Found): EnvelopeIssue {
  return { key: path.length === 0 ? '_meta' : path.join('.'), problem };
}

function invalidType(expected: string, value: unknown): Found {
  return found(`Invalid input: expected ${expected}, received ${received(value)}`);
}

const string: Check = (value) => (typeof value === 'string' ? undefined : invalidType('string', value));
const boolean: Check = (value) => (typeof value === 'boolean' ? undefined : invalidType('boolean', value));
// JSON values are always valid `JSONValue`s, so a JSON object is any plain object.
const jsonObject: Check = (value) => (isObject(value) ? undefined : invalidType('record', value));

function optional(check: Check): Check {
  return (value) => (value === undefined ? undefined : check(value));
}

function arrayOf(check: Check): Check {
  return (value) => {
    if (!Array.isArray(value)) return invalidType('array', value);
    for (let index = 0; index < value.length; index++) {
      const failed = check(value[index]);
      if (failed !== undefined) return at(String(index), failed);
    }
    return undefined;
  };
}

function recordOf(check: Check): Check {
  return (value) => {
    if (!isObject(value)) return invalidType('record', value);
    for (const key in value) {
      if (!Object.hasOwn(value, key)) continue;
      const failed = check(value[key]);
      if (failed !== undefined) return at(key, failed);
    }
    return undefined;
  };
}

function oneOf(values: readonly string[]): Check {
  const expected = values.map((v) => JSON.stringify(v)).join('|');
  return (value) =>
    typeof value === 'string' && values.includes(value) ? undefined : found(`Invalid option: expected one of ${expected}`);
}

/** A zod object: its keys checked in shape order, unknown keys allowed. */
function object(shape: Readonly<Record<string, Check>>): Check {
  const entries = Object.entries(shape);
  return (value) => {
    if (!isObject(value)) return invalidType('object', value);
    for (const [key, check] of entries) {
      const failed = check(own(value, key));
      if (failed !== undefined) return at(key, failed);
    }
    return undefined;
  };
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const progressToken: Check = (value) => {
  if (typeof value === 'string') return undefined;
  if (typeof value === 'number' && Number.isInteger(value)) {
    // zod's int check on the one union member of the right type: its own message, not the union's.
    if (value > MAX_SAFE) return found(`Too big: expected int to be <=${MAX_SAFE}`);
    if (value < -MAX_SAFE) return found(`Too small: expected int to be >=-${MAX_SAFE}`);
    return undefined;
  }
  return found('Invalid input');
};

const icon = object({
  src: string,
  mimeType: optional(string),
  sizes: optional(arrayOf(string)),
  theme: optional(oneOf(['light', 'dark'])),
});

const implementation = object({
  name: string,
  title: optional(string),
  icons: optional(arrayOf(icon)),
  version: string,
  websiteUrl: optional(string),
  description: optional(string),
});

// Elicitation is an intersection of an object and a record; both halves want a plain object.
const elicitationShape = object({
  form: optional(object({ applyDefaults: optional(boolean) })),
  url: optional(jsonObject),
});
const elicitation: Check = (value) => (isObject(value) ? elicitationShape(value) : invalidType('object', value));

const clientCapabilities = object({
  experimental: optional(recordOf(jsonObject)),
  sampling: optional(object({ context: optional(jsonObject), tools: optional(jsonObject) })),
  elicitation: optional(elicitation),
  roots: optional(object({ listChanged: optional(boolean) })),
  extensions: optional(recordOf(jsonObject)),
});

const ENVELOPE_SHAPE: Readonly<Record<string, Check>> = {
  progressToken: optional(progressToken),
  [ENVELOPE.protocolVersion]: string,
  [ENVELOPE.clientInfo]: optional(implementation),
  [ENVELOPE.clientCapabilities]: clientCapabilities,
  [ENVELOPE.logLevel]: optional(oneOf(LOGGING_LEVELS)),
};

const ENVELOPE_CHECKS = Object.entries(ENVELOPE_SHAPE);

function missingEnvelopeKeys(meta: Obj): string[] {
  return REQUIRED_ENVELOPE_KEYS.filter((key) => !Object.hasOwn(meta, key));
}

/** The first problem with an envelope, or undefined when it is valid. */
function firstEnvelopeIssue(meta: Obj): EnvelopeIssue | undefined {
  const missing = REQUIRED_ENVELOPE_KEYS.find((key) => !Object.hasOwn(meta, key));
  if (missing !== undefined) return { key: missing, problem: 'missing' };
  for (const [key, check] of ENVELOPE_CHECKS) {
    const value = own(meta, key);
    if (value === undefined) continue; // a missing required key was reported above
    const failed = check(value);
    if (failed !== undefined) return toIssue(at(key, failed)!);
  }
  return undefined;
}

function metaOf(params: unknown): Obj | undefined {
  if (!isObject(params)) return undefined;
  const meta = own(params, '_meta');
  return isObject(meta) ? meta : undefined;
}

/** The era claim: the protocol-version key in `params._meta`, whatever its value. */
function hasClaim(params: unknown): boolean {
  const meta = metaOf(params);
  return meta !== undefined && Object.hasOwn(meta, ENVELOPE.protocolVersion);
}

function claimedVersion(params: unknown): string | undefined {
  const value = metaOf(params)?.[ENVELOPE.protocolVersion];
  return typeof value === 'string' ? value : undefined;
}

/** Only a valid envelope naming a modern revision takes `initialize` off the legacy handshake. */
function hasValidModernClaim(params: unknown): boolean {
  const meta = metaOf(params);
  const claimed = claimedVersion(params);
  return meta !== undefined && claimed !== undefined && namesModern(claimed) && firstEnvelopeIssue(meta) === undefined;
}

function envelopeOf(meta: Obj): Envelope {
  // Called only after firstEnvelopeIssue(meta) === undefined, so the casts restate what was checked.
  return {
    protocolVersion: meta[ENVELOPE.protocolVersion] as string,
    clientCapabilities: meta[ENVELOPE.clientCapabilities] as Obj,
    clientInfo: own(meta, ENVELOPE.clientInfo) as Envelope['clientInfo'],
    logLevel: own(meta, ENVELOPE.logLevel) as LoggingLevel | undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// Refusals, with the v2 server's texts

function refuse(reason: ProxyErrorReason, message: string, data: Obj | undefined, id: JsonRpcId | null): EraDecision {
  return { era: 'refused', refusal: { reason, message, data, id } };
}

/** -32020: `header` is what the client sent (or '(missing)'), `body` the explanation. */
function mismatch(header: string, body: string, id: JsonRpcId | null): EraDecision {
  return refuse(
    'MODERN_HEADER_MISMATCH',
    `Bad Request: the request headers and body disagree: ${body}`,
    { mismatch: { header, body } },
    id,
  );
}

function unsupportedVersion(requested: string, id: JsonRpcId | null): EraDecision {
  return refuse(
    'MODERN_UNSUPPORTED_VERSION',
    `Unsupported protocol version: ${requested}`,
    { supported: [...SUPPORTED_MODERN_VERSIONS], requested },
    id,
  );
}

function invalidEnvelope(found: EnvelopeIssue, id: JsonRpcId | null): EraDecision {
  return refuse(
    'MODERN_INVALID_ENVELOPE',
    `Invalid _meta envelope for protocol revision 2026-07-28: ${found.key}: ${found.problem}`,
    { envelope: { key: found.key, problem: found.problem } },
    id,
  );
}

/** The body field `Mcp-Name` mirrors, per method (tasks/* included: the v2 server checks them too). */
const MCP_NAME_SOURCE: ReadonlyMap<string, 'name' | 'uri' | 'taskId'> = new Map([
  ['tools/call', 'name'],
  ['prompts/get', 'name'],
  ['resources/read', 'uri'],
  ['tasks/get', 'taskId'],
  ['tasks/update', 'taskId'],
  ['tasks/cancel', 'taskId'],
] as const);

// ---------------------------------------------------------------------------------------------
// The classifier

interface Routing {
  /** OWS-stripped, undefined when absent. */
  readonly version: string | undefined;
  /** OWS-stripped, undefined when absent. */
  readonly method: string | undefined;
  /** As sent: trimmed by decodeMcpName, which the refusal's `mismatch.header` shows. */
  readonly name: string | undefined;
  readonly versionNamesModern: boolean;
}

/**
 * Decide the era of one parsed POST body (`undefined` when it was not JSON).
 *
 * `legacy`: hand the body to `classifyBody` and the session flow, unchanged. `modern`: a request
 * that passed every check a v2 server makes before its handler (except `Mcp-Param-*`, see below),
 * or a notification to answer 202. `refused`: answer the refusal (status and code from
 * PROXY_ERRORS[reason], message, data and id from the refusal).
 */
/**
 * The common case, decided cheaply before anything else (every 2025 request meets it): one message
 * with no era claim in its _meta and no modern MCP-Protocol-Version header is legacy, whatever
 * else it is. Takes the raw header, so the hot path builds no RoutingHeaders.
 */
export function isPlainLegacy(body: unknown, protocolVersion: string | string[] | undefined): boolean {
  if (!isObject(body) || hasClaim(body.params)) return false;
  if (protocolVersion === undefined) return true;
  return typeof protocolVersion === 'string' && !namesModern(stripOws(protocolVersion));
}

export function classifyEra(body: unknown, headers: RoutingHeaders): EraDecision {
  if (isPlainLegacy(body, headers.protocolVersion)) return LEGACY;
  const version = headers.protocolVersion === undefined ? undefined : stripOws(headers.protocolVersion);
  const h: Routing = {
    version,
    method: headers.method === undefined ? undefined : stripOws(headers.method),
    name: headers.name,
    versionNamesModern: version !== undefined && namesModern(version),
  };

  if (Array.isArray(body)) return classifyBatch(body);
  if (!isObject(body)) return LEGACY; // not JSON, or not an object: classifyBody answers
  if (!Object.hasOwn(body, 'method') && (Object.hasOwn(body, 'result') || Object.hasOwn(body, 'error'))) {
    return LEGACY; // a posted response: session traffic
  }
  const shape = messageShape(body);
  if (shape === 'request') return classifyRequest(body, h);
  if (shape === 'notification') return classifyNotification(body, h);
  // Not a message the v2 server accepts. When nothing about it is modern, the legacy path judges it
  // as it always has; when it claims the modern era, answer what a v2 server answers.
  if (hasClaim(own(body, 'params')) || h.versionNamesModern) {
    return refuse(
      'MODERN_INVALID_MESSAGE',
      'Bad Request: the request body is not a valid JSON-RPC message',
      undefined,
      typeof body.method === 'string' && (typeof body.id === 'string' || typeof body.id === 'number') ? body.id : null,
    );
  }
  return LEGACY;
}

/**
 * Modern requests are single-message POSTs: one modern element refuses the whole batch, wherever
 * it stands. (The v2 server stops at the first bad element, so a batch with an invalid element
 * before the modern one gets its "invalid message" text there: same 400 and -32600. Refusing on
 * any modern element keeps a modern message from ever reaching a legacy upstream.) Everything
 * else about batches, empty ones included, is classifyBody's.
 */
function classifyBatch(batch: readonly unknown[]): EraDecision {
  const modern = batch.some((element) => isObject(element) && hasClaim(own(element, 'params')));
  if (!modern) return LEGACY;
  return refuse(
    'MODERN_BATCH',
    'Bad Request: JSON-RPC batches may not contain requests for protocol revision 2026-07-28 or later',
    undefined,
    null,
  );
}

function classifyRequest(body: Obj, h: Routing): EraDecision {
  const id = body.id as JsonRpcId;
  const method = body.method as string;
  const params = own(body, 'params');

  // R1: initialize is the legacy handshake, unless a valid modern envelope says otherwise (then it
  // is a modern request for a method that does not exist: 404 below).
  if (method === 'initialize' && !hasValidModernClaim(params)) {
    if (h.versionNamesModern) {
      return mismatch(
        h.version as string,
        'an initialize request (legacy handshake) was sent with a modern MCP-Protocol-Version header',
        id,
      );
    }
    return LEGACY;
  }

  const meta = metaOf(params);
  if (meta === undefined || !Object.hasOwn(meta, ENVELOPE.protocolVersion)) {
    // R5: a modern header promises an envelope the body does not carry.
    if (h.versionNamesModern) {
      const missingKeys = meta === undefined ? ['_meta'] : missingEnvelopeKeys(meta);
      return refuse(
        'MODERN_INVALID_ENVELOPE',
        `Invalid params: the MCP-Protocol-Version header names protocol revision ${h.version as string}, but the ` +
          `request is missing the required per-request envelope key(s): ${missingKeys.join(', ')}`,
        { envelope: { missing: missingKeys } },
        id,
      );
    }
    return LEGACY; // R6
  }

  // R2: a claim is validated, never ignored.
  const found = firstEnvelopeIssue(meta);
  if (found !== undefined) return invalidEnvelope(found, id);
  const envelope = envelopeOf(meta);
  const claimed = envelope.protocolVersion;

  // R3, R4: headers that are there must agree with the body.
  if (h.version !== undefined && h.version !== claimed) {
    return mismatch(
      h.version,
      `the body envelope names protocol version ${claimed} but the MCP-Protocol-Version header names ${h.version}`,
      id,
    );
  }
  if (h.method !== undefined && h.method !== method) {
    return mismatch(h.method, `the body names method ${method} but the Mcp-Method header names ${h.method}`, id);
  }

  // M1: before the presence checks, so a client on the wrong revision learns what is supported.
  if (!SUPPORTED_MODERN_VERSIONS.includes(claimed)) return unsupportedVersion(claimed, id);

  // M2, M3: required on every modern request.
  if (h.version === undefined) {
    return mismatch(
      '(missing)',
      `the body envelope names protocol version ${claimed} but the required MCP-Protocol-Version header is absent`,
      id,
    );
  }
  if (h.method === undefined) {
    return mismatch('(missing)', `the body names method ${method} but the required Mcp-Method header is absent`, id);
  }

  // M4–M6: Mcp-Name mirrors params.name / params.uri / params.taskId.
  const field = MCP_NAME_SOURCE.get(method);
  if (field !== undefined) {
    const raw = own(params as Obj, field);
    const bodyValue = typeof raw === 'string' ? raw : undefined;
    if (h.name === undefined) {
      if (bodyValue !== undefined) {
        return mismatch('(missing)', `the body carries params.${field}="${bodyValue}" but the required Mcp-Name header is absent`, id);
      }
    } else {
      const header = stripOws(h.name);
      const decoded = decodeMcpName(header);
      if (decoded === undefined) {
        return mismatch(header, 'the Mcp-Name header carries an invalid Base64 sentinel value', id);
      }
      if (bodyValue !== undefined && decoded !== bodyValue) {
        return mismatch(header, `the body carries params.${field}="${bodyValue}" but the Mcp-Name header names "${decoded}"`, id);
      }
    }
  }

  // M7 (client capabilities) never fires at the entry: no method requires one up front.
  // M9 (Mcp-Param-* against the tool's x-mcp-header declarations) is not checked here: it needs
  // the tool's inputSchema, which only the upstream's tools/list knows.

  // M10: removed methods (initialize, ping, logging/setLevel, resources/subscribe, tasks/*, …) and
  // unknown ones. The proxy serves a fixed set whatever the upstream offers.
  if (!isModernMethod(method)) return refuse('MODERN_METHOD_NOT_FOUND', 'Method not found', undefined, id);

  return { era: 'modern', message: { kind: 'request', id, method, params: params as Obj, envelope } };
}

function classifyNotification(body: Obj, h: Routing): EraDecision {
  const method = body.method as string;
  const rawParams = own(body, 'params');
  const params = isObject(rawParams) ? rawParams : undefined;
  let revision: string;

  if (hasClaim(params)) {
    // Body-primary like a request, but only the claim itself is validated.
    const claimed = claimedVersion(params);
    if (claimed === undefined) {
      const value = metaOf(params)?.[ENVELOPE.protocolVersion];
      return invalidEnvelope(toIssue(at(ENVELOPE.protocolVersion, invalidType('string', value))!), null);
    }
    if (h.version !== undefined && h.version !== claimed) {
      return mismatch(
        h.version,
        `the notification envelope names protocol version ${claimed} but the MCP-Protocol-Version header names ${h.version}`,
        null,
      );
    }
    if (namesModern(claimed) && h.method !== undefined && h.method !== method) {
      return notificationMethodMismatch(method, h.method);
    }
    revision = claimed;
  } else if (h.versionNamesModern) {
    // Without a claim the header decides for a notification.
    if (h.method !== undefined && h.method !== method) return notificationMethodMismatch(method, h.method);
    revision = h.version as string;
  } else {
    return LEGACY;
  }

  // M1 applies to notifications too (a claim naming 2025-11-25 ends here); M2–M6 do not.
  if (!SUPPORTED_MODERN_VERSIONS.includes(revision)) return unsupportedVersion(revision, null);
  return { era: 'modern', message: { kind: 'notification', method, params } };
}

function notificationMethodMismatch(method: string, header: string): EraDecision {
  return mismatch(header, `the notification body names method ${method} but the Mcp-Method header names ${header}`, null);
}
