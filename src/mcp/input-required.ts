/**
 * MRTR (2026-07-28 multi round-trip requests) over a legacy upstream, the pure part: which requests
 * may answer `input_required`, the key a legacy server→client request gets in `inputRequests`,
 * reading a retry's `inputResponses` / `requestState`, matching an upstream question with an answer
 * the client already gave, and the `input_required` result itself. No I/O; never throws on any
 * input (property-tested).
 *
 * Keys are deterministic: the same question (method and params) gets the same key on every run of
 * the same request, so a re-run (another replica, an expired parked exchange) can answer it from
 * `inputResponses` the client sent for an earlier run. A legacy server may name the key itself with
 * `params._meta["mcp-session-proxy/inputKey"]` (a fixture convention, docs/flows/pooled.md); otherwise the
 * key is derived from a digest of method and params.
 */
import { createHash } from 'node:crypto';
import { isObject } from './protocol.js';

/** Requests whose answer may be `input_required` (2026-07-28 `EXTENDED_RESULT_TYPE_METHODS`). */
export const INPUT_REQUIRED_METHODS: ReadonlySet<string> = new Set(['tools/call', 'prompts/get', 'resources/read']);

/** Server→client requests that become `inputRequests`, and the client capability each needs. */
export const INPUT_REQUEST_CAPABILITY: Readonly<Record<string, string>> = {
  'elicitation/create': 'elicitation',
  'sampling/createMessage': 'sampling',
  'roots/list': 'roots',
};

/** Where a legacy server may name the `inputRequests` key of its question (then stripped). */
export const INPUT_KEY_META = 'mcp-session-proxy/inputKey';
// Keys are the client's map keys and end up in our sealed state: short and plain.
const KEY_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const GENERATED_KEY_DIGEST_CHARS = 12;
const SHORT_NAMES: Readonly<Record<string, string>> = {
  'elicitation/create': 'elicitation',
  'sampling/createMessage': 'sampling',
  'roots/list': 'roots',
};

type Obj = Record<string, unknown>;

export function isInputRequestMethod(method: string): boolean {
  return Object.hasOwn(INPUT_REQUEST_CAPABILITY, method);
}

/**
 * The client capability a server→client request needs that `declared` (a client's capabilities:
 * a 2026-07-28 envelope's, or a 2025 initialize's) does not hold, or undefined when it needs none
 * or the client declared it. A capability is declared by an object (`{}` or richer), as both
 * eras' schemas spell it. The one decision for every way a question reaches the proxy (a request's
 * own stream, a session's standing GET stream, a hosted session's `input_required` round): a
 * 2026-07-28 server "MUST NOT rely on capabilities the client has not declared" and answers -32021
 * with `data.requiredCapabilities` (errors.ts `missingCapabilityError`).
 */
export function undeclaredCapability(method: string, declared: Readonly<Obj>): string | undefined {
  if (!isInputRequestMethod(method)) return undefined;
  const capability = INPUT_REQUEST_CAPABILITY[method]!;
  return isObject(declared[capability]) ? undefined : capability;
}

/** JSON with object keys sorted at every level: equal values give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  if (isObject(value)) {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  const text = JSON.stringify(value);
  // undefined, functions, symbols: not JSON; NaN / Infinity already become null.
  return text === undefined ? 'null' : text;
}

/** A short digest of `method` + params, the identity of a question or of a request. */
export function digestOf(method: string, params: unknown): string {
  return createHash('sha256').update(method).update('\0').update(canonicalJson(params)).digest('base64url').slice(0, 22);
}

/** Params without the key hint (and without a `_meta` left empty by removing it). */
export function withoutKeyHint(params: unknown): Obj {
  if (!isObject(params)) return {};
  const meta = params._meta;
  if (!isObject(meta) || !(INPUT_KEY_META in meta)) return params;
  const { [INPUT_KEY_META]: _hint, ...rest } = meta;
  const { _meta: _old, ...others } = params;
  return Object.keys(rest).length === 0 ? others : { ...others, _meta: rest };
}

/** One legacy server→client request, as the proxy tracks it within one run of a request. */
export interface Question {
  readonly key: string;
  readonly method: string;
  /** As the client will see them (key hint removed). */
  readonly params: Obj;
  /** digestOf(method, params): what a later answer is matched with. */
  readonly digest: string;
}

/**
 * The question for a server request, keyed: the server's hint when it names a usable key, else
 * `<kind>-<digest>`; a key already `taken` in this run gets `-2`, `-3`, … (same order, same keys).
 */
export function questionOf(method: string, rawParams: unknown, taken: ReadonlySet<string>): Question {
  const hint = isObject(rawParams) && isObject(rawParams._meta) ? rawParams._meta[INPUT_KEY_META] : undefined;
  const params = withoutKeyHint(rawParams);
  const digest = digestOf(method, params);
  const base =
    typeof hint === 'string' && KEY_PATTERN.test(hint)
      ? hint
      : `${SHORT_NAMES[method] ?? 'input'}-${digest.slice(0, GENERATED_KEY_DIGEST_CHARS)}`;
  let key = base;
  for (let n = 2; taken.has(key); n++) key = `${base}-${n}`;
  return { key, method, params, digest };
}

/** What the client has said so far, for one request across its rounds. */
export interface Knowledge {
  /** Questions asked in earlier rounds: key → digest (from the sealed state). */
  readonly asked: Readonly<Record<string, string>>;
  /** Answers given in earlier rounds, to asked questions: key → result (from the sealed state). */
  readonly answers: Readonly<Record<string, Obj>>;
  /** This round's `inputResponses` (already checked to be objects). */
  readonly responses: Readonly<Record<string, Obj>>;
}

export const NO_KNOWLEDGE: Knowledge = { asked: {}, answers: {}, responses: {} };

/**
 * The client's answer to `question`, if it gave one: this round's response under its key, or an
 * earlier round's answer. Under a key asked before, only the same question (same digest) matches:
 * a re-run that asks something else under that key asks again.
 */
export function answerFor(question: Question, knowledge: Knowledge): Obj | undefined {
  const { key, digest } = question;
  const asked = Object.hasOwn(knowledge.asked, key) ? knowledge.asked[key] : undefined;
  if (asked !== undefined && asked !== digest) return undefined;
  if (Object.hasOwn(knowledge.responses, key)) return knowledge.responses[key];
  return asked !== undefined && Object.hasOwn(knowledge.answers, key) ? knowledge.answers[key] : undefined;
}

/**
 * What the next state carries: every question asked so far (earlier ones and `pending`), and every
 * answer given so far to one of them (this round's responses win over earlier ones).
 */
export function nextKnowledge(knowledge: Knowledge, pending: readonly Question[]): Pick<Knowledge, 'asked' | 'answers'> {
  const asked: Record<string, string> = { ...knowledge.asked };
  for (const q of pending) asked[q.key] = q.digest;
  const answers: Record<string, Obj> = {};
  for (const key of Object.keys(asked)) {
    const given = Object.hasOwn(knowledge.responses, key)
      ? knowledge.responses[key]
      : Object.hasOwn(knowledge.answers, key)
        ? knowledge.answers[key]
        : undefined;
    if (given !== undefined) answers[key] = given;
  }
  return { asked, answers };
}

/** A retry's MRTR params, read. */
export type RetryParams =
  | {
      readonly kind: 'ok';
      /** The params for the upstream: without `inputResponses` and `requestState`. */
      readonly params: Obj;
      readonly responses: Readonly<Record<string, Obj>>;
      readonly requestState: string | undefined;
    }
  | { readonly kind: 'invalid'; readonly field: 'inputResponses' | 'requestState' };

// A sealed state of ours is far shorter; anything longer is not one.
export const MAX_REQUEST_STATE_LENGTH = 256 * 1024;

/** `inputResponses` must map keys to result objects; `requestState` must be a string. */
export function readRetryParams(params: Obj): RetryParams {
  if (!('inputResponses' in params) && !('requestState' in params)) return { kind: 'ok', params, responses: {}, requestState: undefined };
  const { inputResponses, requestState, ...rest } = params;
  if (requestState !== undefined && (typeof requestState !== 'string' || requestState.length > MAX_REQUEST_STATE_LENGTH)) {
    return { kind: 'invalid', field: 'requestState' };
  }
  const responses: Record<string, Obj> = {};
  if (inputResponses !== undefined) {
    if (!isObject(inputResponses)) return { kind: 'invalid', field: 'inputResponses' };
    for (const [key, value] of Object.entries(inputResponses)) {
      if (!isObject(value)) return { kind: 'invalid', field: 'inputResponses' };
      responses[key] = value;
    }
  }
  return { kind: 'ok', params: rest, responses, requestState };
}

/** What a requestState is bound to: the method and its params, without the per-request `_meta`. */
export function requestDigestOf(method: string, params: Obj): string {
  const { _meta: _meta, ...rest } = params;
  return digestOf(method, rest);
}

/** The 2026-07-28 `input_required` result for these questions. */
export function inputRequiredResult(
  questions: readonly Question[],
  requestState: string,
  serverInfo: Obj | undefined,
  serverInfoKey: string,
): Obj {
  const inputRequests: Obj = {};
  for (const q of questions) inputRequests[q.key] = { method: q.method, params: q.params };
  const result: Obj = { resultType: 'input_required', inputRequests, requestState };
  if (serverInfo !== undefined) result._meta = { [serverInfoKey]: serverInfo };
  return result;
}
