/**
 * The loss classifier: did the upstream refuse a message because it no longer knows our session?
 *
 * Only then is it safe to replay initialize and retry, because the upstream did not process the
 * message. A JSON-RPC error inside a 2xx (a tool failing, an unknown method) is an answer the
 * upstream produced after processing the request, so it is never a loss. Pure and total.
 */
import { parseJson } from './protocol.js';

/**
 * Why an upstream session is being re-established: the loss that was seen, a sealed id reopened,
 * or the client session re-authenticated under new credentials (session/reauthenticate.ts).
 */
export type ReplayReason = LossSignal | 'reopened' | 'reauthenticated';

/** Names of the built-in patterns below. */
export type DefaultPatternName =
  | 'session_not_found'
  | 'no_valid_session_id'
  | 'missing_session_id'
  | 'session_id_required'
  | 'server_not_initialized'
  | 'initialization_incomplete'
  | 'session_invalid';

/** Short, fixed names: they appear in logs and metric labels, so they never hold request data. */
export type LossPatternName = DefaultPatternName | `custom_${number}`;

export interface LossPattern {
  readonly name: LossPatternName;
  readonly pattern: RegExp;
}

export interface LossRules {
  /** Statuses that mean "unknown session" whatever the body says (the spec's 404). */
  readonly lossStatuses: ReadonlySet<number>;
  /** Statuses whose body is checked against the patterns (servers that answer 400 and friends). */
  readonly patternStatuses: ReadonlySet<number>;
  readonly patterns: readonly LossPattern[];
}

/** The messages real servers send for a missing or lost session (see DESIGN.md §1). */
export const DEFAULT_LOSS_PATTERNS: readonly (LossPattern & { readonly name: DefaultPatternName })[] = [
  // TypeScript SDK 404 -32001, python-sdk 2.x 404.
  { name: 'session_not_found', pattern: /session not found/i },
  // python-sdk (older) and @modelcontextprotocol/server-everything.
  { name: 'no_valid_session_id', pattern: /no valid session id/i },
  // python-sdk / FastMCP when no id was sent.
  { name: 'missing_session_id', pattern: /missing session id/i },
  // TypeScript SDK when no id was sent.
  { name: 'session_id_required', pattern: /mcp-session-id header is required/i },
  // TypeScript SDK: a fresh server process that never saw initialize.
  { name: 'server_not_initialized', pattern: /server not initiali[sz]ed/i },
  // python-sdk: a request reached a session whose handshake did not complete.
  { name: 'initialization_incomplete', pattern: /before initiali[sz]ation was complete/i },
  // Gateways and hand-written servers.
  {
    name: 'session_invalid',
    pattern: /\b(invalid|unknown|expired|terminated) session\b|\bsession (id )?(is )?(invalid|unknown|expired|terminated)\b/i,
  },
];

export const DEFAULT_LOSS_STATUSES: readonly number[] = [404];
// 401 and 503 have been seen for lost sessions; they count only with a session message.
export const DEFAULT_PATTERN_STATUSES: readonly number[] = [400, 401, 403, 409, 410, 422, 503];

export const DEFAULT_LOSS_RULES: LossRules = {
  lossStatuses: new Set(DEFAULT_LOSS_STATUSES),
  patternStatuses: new Set(DEFAULT_PATTERN_STATUSES),
  patterns: DEFAULT_LOSS_PATTERNS,
};

/** Why a response counts as a loss: `status_404` or the pattern's name. Safe for logs and labels. */
export type LossSignal = `status_${number}` | LossPatternName;

/** Whether the body of a response with this status must be read to classify it. */
export function mayBeLoss(status: number, rules: LossRules): boolean {
  return rules.lossStatuses.has(status) || rules.patternStatuses.has(status);
}

/** Longest body text matched against the patterns; loss messages are short. */
export const MAX_CLASSIFIED_BODY_CHARS = 4096;

/**
 * Classify a non-2xx upstream answer. `body` is the response text (JSON-RPC error or plain text).
 * Returns the loss signal, or undefined when the upstream's answer must reach the client as is.
 *
 * `bareStatusIsLoss`: false for GET, because servers without a GET stream often answer a plain
 * 404 where the spec says 405; there a loss status counts only with a loss message.
 */
export function classifyLoss(status: number, body: string, rules: LossRules, bareStatusIsLoss = true): LossSignal | undefined {
  if (bareStatusIsLoss && rules.lossStatuses.has(status)) return `status_${status}`;
  if (!rules.patternStatuses.has(status) && !rules.lossStatuses.has(status)) return undefined;
  const message = errorMessageOf(body);
  for (const { name, pattern } of rules.patterns) {
    if (pattern.test(message)) return name;
  }
  return undefined;
}

/** The JSON-RPC error message when the body is one (or a batch of them), else the raw text. */
export function errorMessageOf(body: string): string {
  const text = body.length > MAX_CLASSIFIED_BODY_CHARS ? body.slice(0, MAX_CLASSIFIED_BODY_CHARS) : body;
  const parsed = parseJson(text);
  if (parsed === undefined) return text;
  const first: unknown = Array.isArray(parsed) ? parsed[0] : parsed;
  if (typeof first === 'object' && first !== null) {
    const error = (first as { error?: unknown }).error;
    if (typeof error === 'object' && error !== null) {
      const message = (error as { message?: unknown }).message;
      if (typeof message === 'string') return message;
    }
  }
  return text;
}
