/**
 * Span names and attributes of the OpenTelemetry semantic conventions for MCP, read from messages
 * the flows already parsed or built (bodies are never parsed again for tracing).
 */
import type { Attributes } from '@opentelemetry/api';
import { isObject } from '../mcp/protocol.js';

// The attribute names of the conventions, spelled here: the semantic-conventions package exports only some as constants yet.
export const A = {
  method: 'mcp.method.name',
  protocolVersion: 'mcp.protocol.version',
  sessionId: 'mcp.session.id',
  requestId: 'jsonrpc.request.id',
  toolName: 'gen_ai.tool.name',
  promptName: 'gen_ai.prompt.name',
  operationName: 'gen_ai.operation.name',
  errorType: 'error.type',
  clientAddress: 'client.address',
  clientPort: 'client.port',
  httpStatus: 'http.response.status_code',
  replayed: 'mcp_session_proxy.replayed',
} as const;

const MAX_METHOD = 128;
const MAX_NAME = 256;
const MAX_VERSION = 32;

/** The method of a JSON-RPC message, if it is one (bounded: it labels a metric series). */
export function methodOf(message: unknown): string | undefined {
  if (!isObject(message) || typeof message.method !== 'string' || message.method.length > MAX_METHOD) return undefined;
  return message.method;
}

/** An MCP-Protocol-Version header, if it is a plausible one (bounded, as above). */
export function versionOf(header: string | string[] | undefined): string | undefined {
  return typeof header === 'string' && header.length <= MAX_VERSION ? header : undefined;
}

/**
 * The span name of a JSON-RPC message (conventions: `{mcp.method.name} {target}`), its MCP
 * attributes written into `attributes`; `fallback` (the HTTP method) when it is none.
 */
export function describe(message: unknown, fallback: string, attributes: Attributes): string {
  if (Array.isArray(message)) return 'batch';
  const method = methodOf(message);
  if (method === undefined) return fallback;
  const { id, params } = message as { id?: unknown; params?: unknown };
  attributes[A.method] = method;
  if (typeof id === 'string' || typeof id === 'number') attributes[A.requestId] = String(id);
  const name = isObject(params) && typeof params.name === 'string' && params.name.length <= MAX_NAME ? params.name : undefined;
  if (method === 'tools/call' && name !== undefined) {
    attributes[A.toolName] = name;
    attributes[A.operationName] = 'execute_tool';
    return `${method} ${name}`;
  }
  if (method === 'prompts/get' && name !== undefined) {
    attributes[A.promptName] = name;
    return `${method} ${name}`;
  }
  return method;
}
