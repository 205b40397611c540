/**
 * The one table of errors the proxy itself answers with. Every error a client can see from the
 * proxy is a JSON-RPC error body built here, with the HTTP status beside it and a stable
 * `data.reason` that scripts and dashboards can match on (messages may be reworded, reasons not).
 */
import type { IncomingHttpHeaders } from 'node:http';

export interface ProxyErrorSpec {
  readonly status: number;
  /** JSON-RPC error code: the standard ones where they fit, the MCP SDK's where clients know them. */
  readonly code: number;
  readonly message: string;
}

export const PROXY_ERRORS = {
  PARSE_ERROR: { status: 400, code: -32700, message: 'Parse error: the body is not valid JSON' },
  INVALID_REQUEST: {
    status: 400,
    code: -32600,
    message: 'Invalid Request: the body is not a JSON-RPC 2.0 message or batch',
  },
  EMPTY_BATCH: { status: 400, code: -32600, message: 'Invalid Request: empty batch' },
  INITIALIZE_IN_BATCH: {
    status: 400,
    code: -32600,
    message: 'Invalid Request: initialize must not be part of a batch',
  },
  INITIALIZE_WITH_SESSION: {
    status: 400,
    code: -32600,
    message: 'Bad Request: initialize must not carry an Mcp-Session-Id; send it without one to start a new session',
  },
  // Same code and text as the TypeScript SDK's server transport, so clients see familiar errors.
  SESSION_REQUIRED: { status: 400, code: -32000, message: 'Bad Request: Mcp-Session-Id header is required' },
  // 404 is what the spec tells clients to answer with a fresh initialize.
  SESSION_NOT_FOUND: { status: 404, code: -32001, message: 'Session not found' },
  PAYLOAD_TOO_LARGE: { status: 413, code: -32600, message: 'Payload Too Large: the body exceeds the configured limit' },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    code: -32000,
    message: 'Unsupported Media Type: Content-Type must be application/json',
  },
  ORIGIN_NOT_ALLOWED: { status: 403, code: -32000, message: 'Forbidden: Origin not allowed' },
  // DNS rebinding: a foreign name resolved to this address (http/gate.ts).
  HOST_NOT_ALLOWED: { status: 403, code: -32000, message: 'Forbidden: Host not allowed' },
  // The body stalled for longer than --body-timeout-ms; the connection is closed after this answer.
  REQUEST_TIMEOUT: { status: 408, code: -32000, message: 'Request Timeout: the request body stopped arriving, or arrived too slowly' },
  METHOD_NOT_ALLOWED: { status: 405, code: -32000, message: 'Method Not Allowed: use GET, POST or DELETE' },
  UPSTREAM_UNAVAILABLE: { status: 502, code: -32000, message: 'Bad Gateway: the upstream MCP server is unreachable' },
  // Sent inside an SSE answer (as an event, for each request still waiting) when it breaks off.
  UPSTREAM_CUT: {
    status: 502,
    code: -32000,
    message: 'Bad Gateway: the upstream connection broke before the answer was complete',
  },
  NOT_MCP_ENDPOINT: {
    status: 404,
    code: -32000,
    message: "Not Found: the upstream MCP endpoint is only reachable through the proxy's MCP path",
  },
  UPSTREAM_TIMEOUT: { status: 504, code: -32000, message: 'Gateway Timeout: the upstream MCP server did not answer in time' },
  UPSTREAM_BAD_SESSION_ID: {
    status: 502,
    code: -32000,
    message: 'Bad Gateway: the upstream sent an unusable Mcp-Session-Id',
  },
  UPSTREAM_BAD_INITIALIZE: {
    status: 502,
    code: -32000,
    message: 'Bad Gateway: the upstream answered initialize with something that is not an InitializeResult',
  },
  // A rewritten request (2026-07-28 or sessionless caller) whose answer held no response for it.
  UPSTREAM_BAD_ANSWER: {
    status: 502,
    code: -32000,
    message: 'Bad Gateway: the upstream answered without a response to the request',
  },
  REPLAY_FAILED: {
    status: 502,
    code: -32000,
    message: 'Bad Gateway: the upstream could not re-establish the session',
  },
  SHUTTING_DOWN: { status: 503, code: -32000, message: 'Service Unavailable: the proxy is shutting down' },
  INTERNAL_ERROR: { status: 500, code: -32603, message: 'Internal error in mcp-session-proxy' },
  // Never sent: the client went away. Named so logs and metrics can tell it from real failures.
  CLIENT_CLOSED: { status: 499, code: -32000, message: 'Client closed the request' },
  // Refusals of 2026-07-28 (modern) requests, with the TypeScript SDK v2 server's statuses and codes
  // (src/mcp/era.ts). The refusal carries the v2 server's specific message and data; these
  // messages are the generic fallbacks.
  MODERN_INVALID_MESSAGE: {
    status: 400,
    code: -32600,
    message: 'Bad Request: the request body is not a valid JSON-RPC message',
  },
  MODERN_BATCH: {
    status: 400,
    code: -32600,
    message: 'Bad Request: JSON-RPC batches may not contain requests for protocol revision 2026-07-28 or later',
  },
  MODERN_HEADER_MISMATCH: { status: 400, code: -32020, message: 'Bad Request: the request headers and body disagree' },
  MODERN_INVALID_ENVELOPE: {
    status: 400,
    code: -32602,
    message: 'Invalid _meta envelope for protocol revision 2026-07-28',
  },
  MODERN_UNSUPPORTED_VERSION: { status: 400, code: -32022, message: 'Unsupported protocol version' },
  // The upstream asked for something (sampling, elicitation, roots) the client did not declare.
  MODERN_MISSING_CAPABILITY: { status: 400, code: -32021, message: 'Missing required client capabilities' },
  // 404 for removed and unknown methods: the status a v2 server gives its dispatch's -32601.
  MODERN_METHOD_NOT_FOUND: { status: 404, code: -32601, message: 'Method not found' },
  // A subscriptions/listen without a valid `params.notifications`. Status 200: the v2 server's
  // listen router answers its -32602 in band, as a handler's error, not as a transport refusal.
  MODERN_INVALID_PARAMS: { status: 200, code: -32602, message: 'Invalid params' },
  // Too many open subscriptions/listen streams (LISTEN_MAX_STREAMS): the v2 server's code and words, in band.
  LISTEN_LIMIT: { status: 200, code: -32603, message: 'Subscription limit reached' },
  // A subscriptions/listen whose Accept rules out the event stream it is answered with (the
  // python server's 406; the words are the TypeScript SDK transport's for a GET stream).
  LISTEN_NOT_ACCEPTABLE: { status: 406, code: -32000, message: 'Not Acceptable: Client must accept text/event-stream' },
  // A 2025-era session in front of a 2026-07-28-only upstream (which has no GET stream, and takes
  // one message per request).
  HELD_NO_EVENT_STREAM: {
    status: 405,
    code: -32000,
    message: 'Method Not Allowed: no event stream for this session (the upstream speaks MCP 2026-07-28 only)',
  },
  HELD_BATCH: {
    status: 400,
    code: -32600,
    message: 'Invalid Request: batches cannot be sent on to an MCP 2026-07-28 upstream; send one message per request',
  },
  // MRTR retries (flows/pooled/mrtr/mrtr.ts). In-band (HTTP 200) as a v2 server's handler-level -32602 is; the
  // message is the v2 server's frozen one for a requestState that fails verification.
  MRTR_INVALID_STATE: { status: 200, code: -32602, message: 'Invalid or expired requestState' },
  MRTR_INVALID_PARAMS: { status: 200, code: -32602, message: 'Invalid params: inputResponses or requestState is malformed' },
} as const satisfies Record<string, ProxyErrorSpec>;

export type ProxyErrorReason = keyof typeof PROXY_ERRORS;

export type JsonRpcId = string | number;

/** Extra facts a client may use (never secrets): the upstream's HTTP status, for instance. */
export interface ErrorDetail {
  readonly upstreamStatus?: number;
  /** A more specific message than the table's (the v2 server's exact texts for modern refusals). */
  readonly message?: string | undefined;
  /** Fields for `error.data` that clients read (`supported`, `requested`, `mismatch`, `envelope`). */
  readonly data?: Record<string, unknown> | undefined;
}

/** Thrown inside the request flow; the route's error handler turns it into the body below. */
export class ProxyError extends Error {
  readonly reason: ProxyErrorReason;
  readonly detail: ErrorDetail | undefined;
  constructor(reason: ProxyErrorReason, options: { detail?: ErrorDetail; cause?: unknown } = {}) {
    super(PROXY_ERRORS[reason].message, { cause: options.cause });
    this.name = 'ProxyError';
    this.reason = reason;
    this.detail = options.detail;
  }
  get status(): number {
    return PROXY_ERRORS[this.reason].status;
  }
}

/** -32021, as the v2 SDK server words it; `requiredCapabilities` is a ClientCapabilities object. */
export function missingCapabilityError(capability: string): ProxyError {
  return new ProxyError('MODERN_MISSING_CAPABILITY', {
    detail: { message: `Missing required client capabilities: ${capability}`, data: { requiredCapabilities: { [capability]: {} } } },
  });
}

export function errorBody(reason: ProxyErrorReason, id: JsonRpcId | null = null, detail?: ErrorDetail): string {
  const spec = PROXY_ERRORS[reason];
  const text = detail?.message ?? spec.message;
  const message = detail?.upstreamStatus === undefined ? text : `${text} (upstream status ${detail.upstreamStatus})`;
  const data =
    detail?.upstreamStatus === undefined ? { reason, ...detail?.data } : { reason, upstreamStatus: detail.upstreamStatus, ...detail.data };
  return JSON.stringify({
    jsonrpc: '2.0',
    id,
    error: { code: spec.code, message, data },
  });
}

/**
 * An upstream answer that must reach the client unchanged instead of a proxy error: an auth
 * challenge (401/403 with WWW-Authenticate) met while replaying initialize, so the client's
 * OAuth flow can start and the call can be retried with a fresh token.
 */
export class UpstreamAnswer extends Error {
  constructor(
    readonly status: number,
    readonly headers: IncomingHttpHeaders,
    readonly body: Buffer,
  ) {
    super(`upstream answered ${status}`);
    this.name = 'UpstreamAnswer';
  }
}
