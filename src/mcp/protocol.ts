/**
 * MCP Streamable HTTP facts the proxy relies on, and the classification of a POST body.
 * Pure: no I/O, never throws on any input (property-tested).
 */
import type { JsonRpcId, ProxyErrorReason } from '../errors.js';

// Node lower-cases incoming header names, and undici hands upstream headers back lower-cased.
export const SESSION_HEADER = 'mcp-session-id';
export const PROTOCOL_VERSION_HEADER = 'mcp-protocol-version';
export const LAST_EVENT_ID_HEADER = 'last-event-id';

/** What a client expects when it sends a POST (spec: both media types are listed). */
export const POST_ACCEPT = 'application/json, text/event-stream';

/** Whether an Accept header admits an event stream (an absent one admits anything). */
export function acceptsEventStream(accept: string | undefined): boolean {
  if (accept === undefined) return true;
  return accept
    .split(',')
    .map((range) => range.split(';', 1)[0]!.trim().toLowerCase())
    .some((type) => type === 'text/event-stream' || type === 'text/*' || type === '*/*');
}

/**
 * An auth challenge (the MCP authorization spec: 401 with `WWW-Authenticate`, or 403 for a scope
 * the token lacks): it reaches every client as the upstream sent it, whatever the flow, because
 * the client's OAuth flow (discovery, refresh) starts from exactly that answer.
 */
export function isAuthChallenge(status: number): boolean {
  return status === 401 || status === 403;
}

/**
 * The largest upstream JSON-RPC message the proxy reads whole: a JSON answer it rewrites, one SSE
 * event. MCP messages are small (a tool's result is the big one); bigger than this, the upstream
 * is broken or hostile, and the answer fails rather than hold the memory.
 */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** JSON text (a request body, an SSE event's data) parsed, or undefined when it is not JSON. */
export function parseJson(text: string | Buffer): unknown {
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(typeof text === 'string' ? text : text.toString()) as unknown;
  } catch {
    return undefined;
  }
}

/** Ids of the requests in a POST body (a message or a batch): the answers the client waits for. */
export function requestIdsOf(body: unknown): JsonRpcId[] {
  const messages = Array.isArray(body) ? body : [body];
  const ids: JsonRpcId[] = [];
  for (const message of messages) {
    if (isJsonRpcMessage(message) && 'method' in message && isId(message.id)) ids.push(message.id);
  }
  return ids;
}

/** Whether a Content-Type names an SSE stream (as opposed to one JSON body). */
export function isEventStream(contentType: string | string[] | undefined): boolean {
  return typeof contentType === 'string' && contentType.toLowerCase().startsWith('text/event-stream');
}

export type ClassifiedBody =
  /** A lone initialize request: starts a new session. `params` is kept verbatim for replay. */
  | { readonly kind: 'initialize'; readonly id: JsonRpcId; readonly params: object }
  /** The client's lone notifications/initialized, which completes the handshake. */
  | { readonly kind: 'initialized'; readonly id: null }
  /** Anything else that is valid: requests, notifications, responses, or a batch of them. */
  | { readonly kind: 'messages'; readonly id: JsonRpcId | null }
  | { readonly kind: 'invalid'; readonly reason: ProxyErrorReason; readonly id: JsonRpcId | null };

type Obj = Record<string, unknown>;

/** A JSON object (not null, not an array). */
export function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isId(value: unknown): value is JsonRpcId {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
}

/** JSON-RPC 2.0 request, notification or response, as MCP uses them. */
export function isJsonRpcMessage(value: unknown): value is Obj {
  if (!isObject(value) || value.jsonrpc !== '2.0') return false;
  if ('method' in value) {
    if (typeof value.method !== 'string') return false;
    if ('id' in value && !isId(value.id)) return false;
    // params may be left out, but when present it is an object or an array (never null).
    return value.params === undefined || (typeof value.params === 'object' && value.params !== null);
  }
  // A response: exactly one of result / error; error responses may carry id null.
  const hasResult = 'result' in value;
  const hasError = 'error' in value;
  if (hasResult === hasError) return false;
  if (!(isId(value.id) || (hasError && value.id === null))) return false;
  return !hasError || (isObject(value.error) && typeof value.error.code === 'number');
}

function requestIdOf(message: Obj): JsonRpcId | null {
  return 'method' in message && isId(message.id) ? message.id : null;
}

/**
 * Classify a parsed POST body. `undefined` means the body did not parse as JSON.
 * The id returned is the one an error reply should carry (null when there is no single request).
 */
export function classifyBody(body: unknown): ClassifiedBody {
  if (body === undefined) return { kind: 'invalid', reason: 'PARSE_ERROR', id: null };
  if (Array.isArray(body)) {
    // Batches exist only in protocol 2025-03-26; they are judged as a whole.
    if (body.length === 0) return { kind: 'invalid', reason: 'EMPTY_BATCH', id: null };
    for (const message of body) {
      if (!isJsonRpcMessage(message)) return { kind: 'invalid', reason: 'INVALID_REQUEST', id: null };
    }
    for (const message of body as Obj[]) {
      if (message.method === 'initialize') return { kind: 'invalid', reason: 'INITIALIZE_IN_BATCH', id: null };
    }
    return { kind: 'messages', id: null };
  }
  if (!isJsonRpcMessage(body)) {
    const id = isObject(body) && isId(body.id) ? body.id : null;
    return { kind: 'invalid', reason: 'INVALID_REQUEST', id };
  }
  if (body.method === 'initialize') {
    // initialize is a request: it needs an id and its params (protocolVersion, capabilities, clientInfo).
    if (!isId(body.id) || !isObject(body.params)) {
      return { kind: 'invalid', reason: 'INVALID_REQUEST', id: requestIdOf(body) };
    }
    return { kind: 'initialize', id: body.id, params: body.params };
  }
  if (body.method === 'notifications/initialized' && !('id' in body)) return { kind: 'initialized', id: null };
  return { kind: 'messages', id: requestIdOf(body) };
}
