/**
 * `input_required` (2026-07-28 MRTR) answered for a 2025-era client whose session the proxy hosts, the pure
 * part: reading the upstream's input_required result into the server→client requests to send,
 * which client capability each one needs, and the retry's params. No I/O; never throws on any
 * input (property-tested).
 *
 *   upstream: {resultType:"input_required", inputRequests:{key:{method,params}}, requestState?}
 *   client:   one JSON-RPC request per key (elicitation/create, sampling/createMessage, roots/list)
 *             on the SSE answer to its own request; it POSTs the responses on its session
 *   upstream: the original request again, new id, params.inputResponses {key: result} and the
 *             requestState exactly as received
 */
import { isInputRequestMethod, undeclaredCapability } from './input-required.js';
import { isObject } from './protocol.js';

type Obj = Record<string, unknown>;

/** Rounds of input one client request may take: the v2 client's `inputRequired.maxRounds` default. */
export const HOSTED_INPUT_MAX_ROUNDS = 10;

/** One question for the client: the key the upstream gave it, and the request to send. */
export interface InputAsk {
  readonly key: string;
  readonly method: string;
  readonly params: Obj | undefined;
}

export type InputRound =
  | { readonly kind: 'ask'; readonly asks: readonly InputAsk[]; readonly requestState: string | undefined }
  | { readonly kind: 'invalid'; readonly message: string };

/** Whether a result is the 2026-07-28 `input_required` kind. */
export function isInputRequired(result: unknown): result is Obj {
  return isObject(result) && result.resultType === 'input_required';
}

/**
 * The questions of an input_required result. Invalid: no inputRequests and no requestState, an
 * entry that is not `{method, params?}`, a method the client could not be asked, a non-string
 * requestState.
 */
export function inputRoundOf(result: Obj): InputRound {
  const { inputRequests, requestState } = result;
  if (requestState !== undefined && typeof requestState !== 'string') return { kind: 'invalid', message: 'requestState is not a string' };
  if (inputRequests !== undefined && !isObject(inputRequests)) return { kind: 'invalid', message: 'inputRequests is not an object' };
  const asks: InputAsk[] = [];
  for (const [key, entry] of Object.entries(inputRequests ?? {})) {
    if (!isObject(entry) || typeof entry.method !== 'string')
      return { kind: 'invalid', message: 'an inputRequests entry is not a request' };
    if (!isInputRequestMethod(entry.method))
      return { kind: 'invalid', message: `inputRequests asks for ${entry.method.slice(0, 64)}, which clients cannot be asked` };
    if (entry.params !== undefined && !isObject(entry.params))
      return { kind: 'invalid', message: 'an inputRequests entry has params that are not an object' };
    asks.push({ key, method: entry.method, params: entry.params });
  }
  if (asks.length === 0 && requestState === undefined) return { kind: 'invalid', message: 'neither inputRequests nor requestState' };
  return { kind: 'ask', asks, requestState };
}

/** The first capability a question needs that the client did not declare at initialize. */
export function missingCapabilityOf(asks: readonly InputAsk[], capabilities: Obj): string | undefined {
  for (const ask of asks) {
    const missing = undeclaredCapability(ask.method, capabilities);
    if (missing !== undefined) return missing;
  }
  return undefined;
}

/** The original params with this round's answers and the upstream's requestState, as it gave it. */
export function retryParams(original: unknown, responses: Obj, requestState: string | undefined): Obj {
  const params: Obj = {};
  if (isObject(original))
    for (const [key, value] of Object.entries(original)) if (key !== 'inputResponses' && key !== 'requestState') params[key] = value;
  params.inputResponses = responses;
  if (requestState !== undefined) params.requestState = requestState;
  return params;
}

/** The id of the n-th request the proxy sends a hosted session's client (unique per session). */
export function askIdOf(n: number): string {
  return `mcp-session-proxy-ask-${n}`;
}

/** The id of the n-th retry the proxy sends upstream for a client's request. */
export function retryIdOf(clientId: string | number, round: number): string {
  return `mcp-session-proxy-retry-${round}-${String(clientId)}`;
}

/** A JSON-RPC error answer to the client's request, with a stable `data.reason`. */
export function inputError(id: string | number, code: number, message: string, reason: string, data?: Obj): Obj {
  return { jsonrpc: '2.0', id, error: { code, message, data: { reason, ...data } } };
}

/**
 * A client's JSON-RPC response to one of the proxy's questions: its id, and the result or the
 * error. Undefined for anything else.
 */
export function clientResponseOf(
  message: unknown,
): { id: string; result: Obj } | { id: string; error: { code: number; message: string } } | undefined {
  if (!isObject(message) || 'method' in message || typeof message.id !== 'string') return undefined;
  if (isObject(message.result)) return { id: message.id, result: message.result };
  if (isObject(message.error)) {
    const { code, message: text } = message.error;
    return {
      id: message.id,
      error: {
        code: typeof code === 'number' && Number.isInteger(code) ? code : -32603,
        message: typeof text === 'string' ? text : 'error',
      },
    };
  }
  return undefined;
}
