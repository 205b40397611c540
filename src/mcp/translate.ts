/**
 * Translation between a modern (2026-07-28) request and its answer, and the legacy wire of a pooled
 * upstream session that several callers share. Pure: no I/O, never throws on any input
 * (property-tested). Every rewrite here mirrors what the TypeScript SDK v2 server's encoder does to
 * results (its `encodeContract.ts` / `codec.ts`), so a modern client cannot tell the bridge from a
 * native 2026 server by the shape of what it reads.
 */
import type { JsonRpcId } from '../errors.js';
import { ENVELOPE, MODERN_PROTOCOL_VERSION, severityAtLeast, type LoggingLevel } from './era.js';
import { forEachEvent } from './initialize-result.js';
import { undeclaredCapability } from './input-required.js';
import { isEventStream, isJsonRpcMessage, isObject, parseJson } from './protocol.js';

/** The `_meta` prefix MCP reserves; on a modern request it carries the per-request envelope. */
const RESERVED_META_PREFIX = 'io.modelcontextprotocol/';
const SERVER_INFO_META_KEY = ENVELOPE.serverInfo;

/** Results that carry `ttlMs` and `cacheScope` (the spec's `CacheableResult` extenders). */
const CACHEABLE_METHODS: ReadonlySet<string> = new Set([
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'server/discover',
]);
// Nothing may be cached by a client we cannot vouch for: the upstream said nothing about
// lifetimes, and a pooled session answers many principals. Same defaults as the v2 SDK server.
const DEFAULT_TTL_MS = 0;
const DEFAULT_CACHE_SCOPE = 'private';

/** Legacy "resource not found"; 2026-07-28 reports it as invalid params. */
const LEGACY_RESOURCE_NOT_FOUND = -32002;
const INVALID_PARAMS = -32602;

type Obj = Record<string, unknown>;

/**
 * A modern request as the legacy upstream must see it: the `io.modelcontextprotocol/*` envelope
 * keys leave `_meta` (a dual-era upstream classifies a request as modern by
 * `io.modelcontextprotocol/protocolVersion` alone, and a legacy one has no use for the rest),
 * `id` becomes `upstreamId`, and the progress token becomes `upstreamProgressToken`. Every other
 * `_meta` key (`traceparent`, `tracestate`, `baggage`, …) and every other param travels unchanged;
 * a `_meta` left empty is dropped.
 *
 * The upstream's progress token is exactly `upstreamProgressToken`: a client token is never sent
 * as such, since tokens from different callers may collide on the shared session (the caller
 * passes one iff the request carried `_meta.progressToken`).
 */
export function toLegacyRequest(
  method: string,
  params: Record<string, unknown>,
  upstreamId: string,
  upstreamProgressToken: string | undefined,
): string {
  // Copied member by member (no rest spread, no deletes): this runs for every modern request.
  const legacyParams: Obj = {};
  for (const key in params) {
    if (key !== '_meta' && Object.hasOwn(params, key)) put(legacyParams, key, params[key]);
  }
  const legacyMeta = legacyMetaOf(params._meta, upstreamProgressToken);
  if (legacyMeta !== undefined) legacyParams._meta = legacyMeta;
  return JSON.stringify({ jsonrpc: '2.0', id: upstreamId, method, params: legacyParams });
}

/** `object[key] = value`, as an own member even for `__proto__` (JSON may name one; assignment would set the prototype). */
function put(object: Obj, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  else object[key] = value;
}

function legacyMetaOf(meta: unknown, upstreamProgressToken: string | undefined): Obj | undefined {
  let legacy: Obj | undefined;
  if (isObject(meta)) {
    for (const key in meta) {
      if (!Object.hasOwn(meta, key) || key.startsWith(RESERVED_META_PREFIX) || key === 'progressToken') continue;
      put((legacy ??= {}), key, meta[key]);
    }
  }
  if (upstreamProgressToken !== undefined) (legacy ??= {}).progressToken = upstreamProgressToken;
  return legacy;
}

/** What the answer translation needs to know about the request it answers. */
export interface AnswerContext {
  /** The modern request's method. */
  readonly method: string;
  /** The id the client used. */
  readonly clientId: JsonRpcId;
  /** The id sent upstream. */
  readonly upstreamId: string;
  readonly clientProgressToken: string | number | undefined;
  readonly upstreamProgressToken: string | undefined;
  /** From the request's envelope; undefined drops every `notifications/message`. */
  readonly logLevel: LoggingLevel | undefined;
  /** From the upstream InitializeResult; stamped into each result's `_meta`. */
  readonly serverInfo: Record<string, unknown> | undefined;
  /**
   * From the request's envelope. When given, a server→client request needing a capability the
   * client did not declare is marked `missingCapability` (the client gets -32021).
   */
  readonly clientCapabilities?: Record<string, unknown>;
}

export type Translated =
  /** Send this to the client. */
  | { readonly kind: 'forward'; readonly message: Record<string, unknown> }
  /** The response to the caller's request, already written as JSON text (the fast path: spliceAnswer). */
  | { readonly kind: 'answer'; readonly text: string }
  /** Nothing for the client. */
  | { readonly kind: 'drop' }
  /**
   * A server→client request (elicitation/create, sampling/createMessage, roots/list, ping, …):
   * a modern client cannot take one on a stream, so the caller answers the upstream with a
   * JSON-RPC error for this id. `missingCapability`: the request needs a client capability the
   * modern client did not declare, so its own request fails with -32021 (a 2026-07-28 server
   * "MUST NOT rely on capabilities the client has not declared").
   */
  | { readonly kind: 'refuse-upstream'; readonly id: JsonRpcId; readonly method: string; readonly missingCapability?: string };

const DROP: Translated = { kind: 'drop' };

/**
 * One JSON-RPC message from the upstream's answer, for the modern client. `text`, when given, is
 * the JSON text `message` was parsed from: the common answer is then spliced, not rebuilt.
 */
export function toModernMessage(message: unknown, ctx: AnswerContext, text?: string): Translated {
  if (!isJsonRpcMessage(message)) return DROP;
  const { method } = message;
  if (typeof method === 'string') {
    // isJsonRpcMessage has checked that an id, when present, is a string or a finite number.
    if ('id' in message) return serverRequestFor(message.id as JsonRpcId, method, ctx.clientCapabilities);
    if (method === 'notifications/progress') return progressFor(message, ctx);
    if (method === 'notifications/message') return logFor(message, ctx.logLevel);
    // list_changed, resources/updated, cancelled…: a modern client hears those on
    // subscriptions/listen, never on a request's stream.
    return DROP;
  }
  // A response. One to another caller's request (the session is shared) is none of this client's.
  if (message.id !== ctx.upstreamId) return DROP;
  if ('error' in message) return { kind: 'forward', message: { ...message, id: ctx.clientId, error: modernError(message.error as Obj) } };
  if (text !== undefined && needsOnlyResultType(message.result, ctx.method)) {
    const spliced = spliceAnswer(message, text, ctx.upstreamId, ctx.clientId, modernMembersOf(ctx.serverInfo));
    if (spliced !== undefined) return { kind: 'answer', text: spliced };
  }
  const result = isObject(message.result) ? modernResult(message.result, ctx) : message.result;
  return { kind: 'forward', message: { ...message, id: ctx.clientId, result } };
}

function serverRequestFor(id: JsonRpcId, method: string, declared: Record<string, unknown> | undefined): Translated {
  // No envelope (a sessionless 2025 caller): nothing declared to check against.
  const missing = declared === undefined ? undefined : undeclaredCapability(method, declared);
  return missing === undefined
    ? { kind: 'refuse-upstream', id, method }
    : { kind: 'refuse-upstream', id, method, missingCapability: missing };
}

function progressFor(message: Obj, ctx: SessionlessContext): Translated {
  const params = message.params as Obj | undefined;
  if (
    params === undefined ||
    ctx.upstreamProgressToken === undefined ||
    ctx.clientProgressToken === undefined ||
    params.progressToken !== ctx.upstreamProgressToken
  ) {
    return DROP;
  }
  return { kind: 'forward', message: { ...message, params: { ...params, progressToken: ctx.clientProgressToken } } };
}

function logFor(message: Obj, threshold: LoggingLevel | undefined): Translated {
  // 2026-07-28: without a logLevel in the request's envelope the server must not log to it.
  if (threshold === undefined) return DROP;
  const level = (message.params as Obj | undefined)?.level;
  // An unknown level ranks below every threshold (severityAtLeast finds it nowhere).
  return typeof level === 'string' && severityAtLeast(level as LoggingLevel, threshold) ? { kind: 'forward', message } : DROP;
}

function modernError(error: Obj): Obj {
  // Data (a legacy `data.uri`, say) is kept as the upstream sent it.
  return error.code === LEGACY_RESOURCE_NOT_FOUND ? { ...error, code: INVALID_PARAMS } : error;
}

/** A legacy result as a 2026-07-28 result of `ctx.method` (the v2 server encoder's steps, in order). */
function modernResult(result: Obj, ctx: AnswerContext): Obj {
  const modern: Obj = { ...result };
  // 1. Vocabulary 2026-07-28 deleted: tool execution hints (task support) and the tasks capability.
  if (ctx.method === 'tools/list' && Array.isArray(modern.tools)) modern.tools = withoutExecution(modern.tools);
  if (isObject(modern.capabilities) && 'tasks' in modern.capabilities) {
    const { tasks: _tasks, ...capabilities } = modern.capabilities;
    modern.capabilities = capabilities;
  }
  // 2. Every modern result says whether it is complete; a legacy one always is.
  if (modern.resultType === undefined) modern.resultType = 'complete';
  // 3. Cache fields, required by the v2 client on cacheable results (not on input_required ones).
  if (modern.resultType === 'complete' && CACHEABLE_METHODS.has(ctx.method)) {
    if (!isCacheTtl(modern.ttlMs)) modern.ttlMs = DEFAULT_TTL_MS;
    if (modern.cacheScope !== 'public' && modern.cacheScope !== 'private') modern.cacheScope = DEFAULT_CACHE_SCOPE;
  }
  // 4. The server's identity, unless the upstream already gave one; a non-object _meta is the
  //    upstream's bug, left for the client to judge rather than silently replaced.
  const { serverInfo } = ctx;
  if (serverInfo !== undefined) {
    const meta = modern._meta;
    if (meta === undefined) modern._meta = { [SERVER_INFO_META_KEY]: serverInfo };
    else if (isObject(meta) && meta[SERVER_INFO_META_KEY] === undefined) {
      modern._meta = { ...meta, [SERVER_INFO_META_KEY]: serverInfo };
    }
  }
  return modern;
}

/**
 * Whether modernResult would only add `resultType` and the serverInfo `_meta` to this result (the
 * answer to tools/call, prompts/get, completion/complete…): no vocabulary to delete, no cache
 * fields, no `resultType` or `_meta` of the upstream's own.
 */
function needsOnlyResultType(result: unknown, method: string): boolean {
  return (
    isObject(result) &&
    !('resultType' in result) &&
    !('_meta' in result) &&
    !('capabilities' in result) &&
    method !== 'tools/list' &&
    !CACHEABLE_METHODS.has(method)
  );
}

// The serverInfo members stamped into results, serialised once per InitializeResult rather than
// once per answer.
const serverInfoMembers = new WeakMap<object, string>();

function modernMembersOf(serverInfo: Record<string, unknown> | undefined): string {
  if (serverInfo === undefined) return '"resultType":"complete"';
  let members = serverInfoMembers.get(serverInfo);
  if (members === undefined) {
    members = `"resultType":"complete","_meta":{${JSON.stringify(SERVER_INFO_META_KEY)}:${JSON.stringify(serverInfo)}}`;
    serverInfoMembers.set(serverInfo, members);
  }
  return members;
}

/**
 * The common answer, rewritten as text: `message` (parsed from `text`, so `text` is valid JSON) is
 * a response to `upstreamId` whose members are exactly `jsonrpc`, `id` and an object `result`.
 * When `text` spells them compactly (as every SDK's JSON.stringify does), in any order, the
 * result's own text is copied between a new head (the client's id) and `members` put first in
 * it; anything else (whitespace, escaped names) is undefined, for the object path. Parsing,
 * copying and re-serialising the result was about a quarter of a modern call's CPU
 * (bench/README.md); the property test in era-translate.test.ts holds this to the object path.
 * (Duplicate member names, which JSON leaves undefined, are not guarded against.)
 */
function spliceAnswer(message: Obj, text: string, upstreamId: string, clientId: JsonRpcId, members: string): string | undefined {
  const names = Object.keys(message);
  if (names.length !== 3 || message.jsonrpc !== '2.0') return undefined;
  let head = '{';
  let tail = '';
  let seenResult = false;
  for (const name of names) {
    let member: string;
    if (name === 'result') {
      seenResult = true;
      continue;
    } else if (name === 'jsonrpc') member = '"jsonrpc":"2.0"';
    else if (name === 'id') member = `"id":${JSON.stringify(upstreamId)}`;
    else return undefined;
    if (seenResult) tail += `,${member}`;
    else head += `${member},`;
  }
  head += '"result":';
  tail += '}';
  // The result's text, `{…}`, sits exactly between head and tail.
  const start = head.length;
  const end = text.length - tail.length;
  if (end - start < 2 || text.charCodeAt(start) !== OPEN_BRACE || !text.startsWith(head) || !text.endsWith(tail)) return undefined;
  return withMembers(clientId, members, text.slice(start + 1, end));
}

/**
 * The answer for the client: its id, and the result's text after its opening brace (`…}`, maybe
 * followed by other members of the message) with `members` first.
 */
function withMembers(clientId: JsonRpcId, members: string, inner: string): string {
  // An empty result (`}` right away) takes the members without a separating comma.
  const result = members === '' || inner.charCodeAt(0) === CLOSE_BRACE ? `{${members}${inner}` : `{${members},${inner}`;
  return `{"jsonrpc":"2.0","id":${JSON.stringify(clientId)},"result":${result}}`;
}

/**
 * The common answer rewritten on its text alone, before any parse: a whole JSON body spelled
 * `{"jsonrpc":"2.0","id":<upstream id>,"result":{…}}` or `{"result":{…},"jsonrpc":"2.0","id":<upstream id>}`
 * (what SDK servers write), that names no member the rewrite must look at (`error`, `method`, a
 * second `result`, `jsonrpc` or `id`; for a modern client `resultType`, `_meta`, `capabilities`) even as
 * a string anywhere: anything else is undefined, for the parsing paths. The text is not validated:
 * like every answer to a 2025 client, an upstream's broken JSON reaches the client as broken JSON.
 * Held to the object path by the property test in era-translate.test.ts.
 */
export function splicedJsonAnswer(text: string, ctx: SessionlessContext, modern: AnswerContext | undefined): string | undefined {
  // tools/list and cacheable results get more than resultType and serverInfo: the object path.
  if (modern !== undefined && (modern.method === 'tools/list' || CACHEABLE_METHODS.has(modern.method))) return undefined;
  const id = JSON.stringify(ctx.upstreamId);
  let inner: string | undefined;
  const idFirst = `{"jsonrpc":"2.0","id":${id},"result":{`;
  if (text.startsWith(idFirst) && text.endsWith('}}')) inner = text.slice(idFirst.length, -1);
  else if (text.startsWith(RESULT_FIRST)) {
    const tail = `},"jsonrpc":"2.0","id":${id}}`;
    if (text.endsWith(tail)) inner = text.slice(RESULT_FIRST.length, text.length - tail.length + 1);
  }
  if (inner === undefined || !namesOnlyItsOwn(text, modern !== undefined)) return undefined;
  return withMembers(ctx.clientId, modern === undefined ? '' : modernMembersOf(modern.serverInfo), inner);
}

const RESULT_FIRST = '{"result":{';

function once(text: string, word: string): boolean {
  return text.indexOf(word, text.indexOf(word) + 1) === -1;
}

/** Whether no word the rewrite must look at occurs in the text, apart from the frame's own. */
function namesOnlyItsOwn(text: string, modern: boolean): boolean {
  return (
    once(text, '"result"') &&
    once(text, '"jsonrpc"') &&
    // A result naming an `id` anywhere takes the parsing path: a second top-level one would decide.
    once(text, '"id"') &&
    !text.includes('"error"') &&
    !text.includes('"method"') &&
    !(modern && (text.includes('"resultType"') || text.includes('"_meta"') || text.includes('"capabilities"')))
  );
}

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

function isCacheTtl(value: unknown): boolean {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function withoutExecution(tools: unknown[]): unknown[] {
  // Copy only when needed: most tool lists carry no execution hints.
  if (!tools.some((tool) => isObject(tool) && 'execution' in tool)) return tools;
  return tools.map((tool) => {
    if (!isObject(tool) || !('execution' in tool)) return tool;
    const { execution: _execution, ...rest } = tool;
    return rest;
  });
}

/**
 * A whole (buffered) upstream answer, translated by `map`: the JSON text of the response to the
 * caller's request, or undefined when the body held none (garbled, or only others' traffic).
 * Reads one JSON message, an array of them (defensively), or a buffered SSE body; server→client
 * requests in it go to `onRefuse`, notifications are dropped (there is no stream to put them on).
 */
export function answerBodyOf(
  body: string,
  contentType: string | undefined,
  map: MessageMap,
  onRefuse: (id: JsonRpcId, method: string, missingCapability?: string) => void,
): string | undefined {
  let answer: string | undefined;
  const take = (message: unknown, text?: string) => {
    const translated = map(message, text);
    if (translated.kind === 'refuse-upstream') onRefuse(translated.id, translated.method, translated.missingCapability);
    else if (translated.kind === 'answer') answer ??= translated.text;
    else if (translated.kind === 'forward' && !('method' in translated.message)) answer ??= JSON.stringify(translated.message);
  };
  if (isEventStream(contentType)) {
    forEachEvent(body, take);
    return answer;
  }
  // One message (what every server sends), its text kept for the fast path; or a batch.
  const parsed = parseJson(body);
  if (Array.isArray(parsed)) for (const message of parsed) take(message);
  else if (parsed !== undefined) take(parsed, body);
  return answer;
}

/** A translation of one upstream message (toModernMessage, toSessionlessMessage, bound to a context). */
export type MessageMap = (message: unknown, text?: string) => Translated;

/** The text an upstream message becomes for the client, when it is forwarded. */
export function textOf(translated: Translated): string | undefined {
  if (translated.kind === 'answer') return translated.text;
  return translated.kind === 'forward' ? JSON.stringify(translated.message) : undefined;
}

/** What the answer to a sessionless 2025-style request needs: the ids the proxy rewrote. */
export interface SessionlessContext {
  readonly clientId: JsonRpcId;
  readonly upstreamId: string;
  readonly clientProgressToken: string | number | undefined;
  readonly upstreamProgressToken: string | undefined;
}

/**
 * One upstream message for a 2025-style caller without a session: its own response and progress
 * with the ids it sent, its log and other notifications as they are; others' responses dropped;
 * server→client requests refused (the caller has no session to answer them on).
 */
export function toSessionlessMessage(message: unknown, ctx: SessionlessContext, text?: string): Translated {
  if (!isJsonRpcMessage(message)) return DROP;
  const { method } = message;
  if (typeof method === 'string') {
    if ('id' in message) return { kind: 'refuse-upstream', id: message.id as JsonRpcId, method };
    if (method === 'notifications/progress') return progressFor(message, ctx);
    return { kind: 'forward', message };
  }
  if (message.id !== ctx.upstreamId) return DROP;
  if (text !== undefined && isObject(message.result)) {
    const spliced = spliceAnswer(message, text, ctx.upstreamId, ctx.clientId, '');
    if (spliced !== undefined) return { kind: 'answer', text: spliced };
  }
  return { kind: 'forward', message: { ...message, id: ctx.clientId } };
}

/**
 * The `server/discover` result for a legacy upstream, derived from its InitializeResult (the same
 * fields the v2 SDK server reports: only modern versions, its capabilities, instructions,
 * conservative cache fields, its identity in `_meta`).
 */
export function discoverResult(initializeResult: Record<string, unknown>): Record<string, unknown> {
  const { capabilities, instructions, serverInfo } = initializeResult;
  const result: Obj = {
    resultType: 'complete',
    supportedVersions: [MODERN_PROTOCOL_VERSION],
    capabilities: discoverCapabilities(capabilities),
  };
  if (typeof instructions === 'string') result.instructions = instructions;
  result.ttlMs = DEFAULT_TTL_MS;
  result.cacheScope = DEFAULT_CACHE_SCOPE;
  if (isObject(serverInfo)) result._meta = { [SERVER_INFO_META_KEY]: serverInfo };
  return result;
}

function discoverCapabilities(capabilities: unknown): Obj {
  if (!isObject(capabilities)) return {};
  // tasks is vocabulary 2026-07-28 deleted (moved to an extension). Everything else is declared
  // as the upstream declares it: `listChanged` and `resources.subscribe` are delivered through
  // subscriptions/listen (flows/pooled/listen/listen.ts), which honours exactly these flags.
  const { tasks: _tasks, ...modern } = capabilities;
  return modern;
}
