/**
 * Questions on a legacy session's standing stream. A legacy server may ask its client
 * (elicitation/create, sampling/createMessage, roots/list) on the session's GET stream instead of
 * on the answer of the request the question belongs to: the v1 TypeScript SDK does so whenever a
 * tool asks without `relatedRequestId`, as its own examples do. The stream names no request, so
 * the proxy attributes the question to a call on that upstream session:
 *
 *   the in-flight calls on the session whose callers declared the capability the question needs
 *     exactly one  → it is that call's question (as if it had come on the call's own answer)
 *     more than one→ refused to the upstream (`ambiguous`): the proxy does not guess
 *     none         → if exactly one call is in flight (every tools/call, prompts/get and
 *                    resources/read run holds the stream, whatever its caller declared), it is that
 *                    call's question all the same: it fails as at an undeclared question on its own
 *                    answer (-32021 to its client, cancelled upstream, then refused); else refused
 *                    to the upstream (`no_caller`), with the refusal an undeclared capability gets
 *
 * Pure: no I/O.
 */
import type { JsonRpcId } from '../errors.js';
import { INPUT_REQUEST_CAPABILITY, undeclaredCapability } from './input-required.js';

/** An in-flight call that may be asked: what its caller declared in its envelope. */
export interface Asker {
  readonly clientCapabilities: Readonly<Record<string, unknown>> | undefined;
}

/** Why a question on the standing stream went to no call (the metric's label). */
export type UnattributedReason = 'no_caller' | 'ambiguous';

export type Attribution<T extends Asker> =
  | { readonly kind: 'deliver'; readonly to: T }
  | { readonly kind: 'refuse'; readonly reason: UnattributedReason; readonly capability: string };

/**
 * Which call a question on the standing stream belongs to. `method` is a question's method
 * (isInputRequestMethod); `askers` the calls in flight on the session that may be asked.
 */
export function attributeQuestion<T extends Asker>(method: string, askers: Iterable<T>): Attribution<T> {
  const capability = INPUT_REQUEST_CAPABILITY[method] ?? method;
  let found: T | undefined;
  let lone: T | undefined;
  let count = 0;
  for (const asker of askers) {
    if (count++ === 0) lone = asker;
    if (undeclaredCapability(method, asker.clientCapabilities ?? {}) !== undefined) continue;
    if (found !== undefined) return { kind: 'refuse', reason: 'ambiguous', capability };
    found = asker;
  }
  if (found !== undefined) return { kind: 'deliver', to: found };
  // The only call that may be asked did not declare this: the question is its all the same.
  if (count === 1) return { kind: 'deliver', to: lone! };
  return { kind: 'refuse', reason: 'no_caller', capability };
}

/** The upstream's answer to a question on the standing stream that went to no call. */
export function unattributedRefusal(id: JsonRpcId, method: string, refusal: Extract<Attribution<Asker>, { kind: 'refuse' }>): string {
  const message =
    refusal.reason === 'no_caller'
      ? `${method} is not available: the client did not declare ${refusal.capability}`
      : `${method} is not available: it came on the session's GET stream while several requests could take it; ` +
        'send it with the request it belongs to (relatedRequestId) (mcp-session-proxy)';
  return JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32601, message } });
}

/** The upstream's answer to a question attributed to a call that can no longer take it (its answer is over). */
export function overCallRefusal(id: JsonRpcId, method: string): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    id,
    error: { code: -32000, message: `No answer to ${method}: the request it belongs to is complete (mcp-session-proxy)` },
  });
}
