/**
 * `subscriptions/listen` (2026-07-28) over a legacy upstream session's GET stream: the pure part.
 * Which filter a request asks for, which subset the upstream can honour, which upstream
 * notification goes to which listener and how it is tagged, and what a listener hears when the
 * upstream stream had to be re-established. Mirrors the TypeScript SDK v2 server's listen router
 * (`listenRouter.ts`: `parseListenFilter`, `honoredSubset`, `listenFilterAccepts`,
 * `stampSubscriptionId`, the graceful-close result), so a modern client cannot tell the bridge
 * from a native 2026 server by what it reads. No I/O; never throws on any input (property-tested).
 */
import type { JsonRpcId } from '../errors.js';
import { ENVELOPE } from './era.js';
import { isJsonRpcMessage, isObject } from './protocol.js';
import { isInputRequestMethod } from './input-required.js';

type Obj = Record<string, unknown>;

/** What a listener asked for, or (after {@link honouredSubset}) what it gets. */
export interface SubscriptionFilter {
  readonly toolsListChanged?: true;
  readonly promptsListChanged?: true;
  readonly resourcesListChanged?: true;
  /** Present only when non-empty. */
  readonly resourceSubscriptions?: readonly string[];
}

/** The list types a list-changed notification can name. */
export type ListKind = 'tools' | 'prompts' | 'resources';

const FILTER_KEYS = ['toolsListChanged', 'promptsListChanged', 'resourcesListChanged'] as const;
const KIND_OF_FLAG: Readonly<Record<(typeof FILTER_KEYS)[number], ListKind>> = {
  toolsListChanged: 'tools',
  promptsListChanged: 'prompts',
  resourcesListChanged: 'resources',
};
const LIST_CHANGED_METHOD: Readonly<Record<ListKind, string>> = {
  tools: 'notifications/tools/list_changed',
  prompts: 'notifications/prompts/list_changed',
  resources: 'notifications/resources/list_changed',
};
const KIND_OF_METHOD: ReadonlyMap<string, ListKind> = new Map(
  (Object.entries(LIST_CHANGED_METHOD) as [ListKind, string][]).map(([kind, method]) => [method, kind]),
);
const RESOURCE_UPDATED = 'notifications/resources/updated';

/** The v2 server's words for a listen request without a valid `params.notifications`. */
export const INVALID_FILTER_MESSAGE = "Invalid params: 'notifications' is required and must be a valid SubscriptionFilter";

/**
 * The most resources one listen (or one hosted session) may subscribe to: each URI is a request to
 * the upstream, so a body naming a hundred thousand would be a hundred thousand requests. More is
 * refused as invalid params.
 */
export const MAX_RESOURCE_SUBSCRIPTIONS = 1000;

/**
 * The filter of a listen request's params, or undefined when `notifications` is absent or not a
 * SubscriptionFilter (the v2 server's zod schema: optional booleans and an optional array of
 * strings; unknown keys are ignored). `false` and absent flags both mean "not asked for".
 */
export function parseListenFilter(params: unknown): SubscriptionFilter | undefined {
  if (!isObject(params)) return undefined;
  const notifications = Object.hasOwn(params, 'notifications') ? params.notifications : undefined;
  if (!isObject(notifications)) return undefined;
  const filter: { -readonly [K in keyof SubscriptionFilter]: SubscriptionFilter[K] } = {};
  for (const key of FILTER_KEYS) {
    const value = Object.hasOwn(notifications, key) ? notifications[key] : undefined;
    if (value !== undefined && typeof value !== 'boolean') return undefined;
    if (value === true) filter[key] = true;
  }
  const uris = Object.hasOwn(notifications, 'resourceSubscriptions') ? notifications.resourceSubscriptions : undefined;
  if (uris !== undefined) {
    if (!Array.isArray(uris) || uris.length > MAX_RESOURCE_SUBSCRIPTIONS || !uris.every((uri) => typeof uri === 'string')) return undefined;
    // One subscription per URI, however often it is named.
    if (uris.length > 0) filter.resourceSubscriptions = [...new Set(uris)];
  }
  return filter;
}

/**
 * What the upstream can deliver of `requested`, from its InitializeResult capabilities: a list
 * type only if the upstream declares `listChanged` for it, resource subscriptions only if it
 * declares `resources.subscribe` (the v2 server's `honoredSubset` against its own capabilities).
 */
export function honouredSubset(requested: SubscriptionFilter, capabilities: unknown): SubscriptionFilter {
  const caps = isObject(capabilities) ? capabilities : {};
  const flag = (feature: string, name: string) => {
    const declared = caps[feature];
    return isObject(declared) && declared[name] === true;
  };
  const honoured: { -readonly [K in keyof SubscriptionFilter]: SubscriptionFilter[K] } = {};
  for (const key of FILTER_KEYS) {
    if (requested[key] === true && flag(KIND_OF_FLAG[key], 'listChanged')) honoured[key] = true;
  }
  if (requested.resourceSubscriptions !== undefined && requested.resourceSubscriptions.length > 0 && flag('resources', 'subscribe')) {
    honoured.resourceSubscriptions = [...requested.resourceSubscriptions];
  }
  return honoured;
}

export function isEmptyFilter(filter: SubscriptionFilter): boolean {
  return Object.keys(filter).length === 0;
}

/** The list types a filter listens to. */
export function listKindsOf(filter: SubscriptionFilter): ListKind[] {
  return FILTER_KEYS.filter((key) => filter[key] === true).map((key) => KIND_OF_FLAG[key]);
}

/** A notification stamped with the listener's subscription id (a copy; `params._meta` merged). */
function stamped(method: string, params: Obj | undefined, subscriptionId: JsonRpcId): Obj {
  const meta = isObject(params?._meta) ? params._meta : {};
  return { jsonrpc: '2.0', method, params: { ...params, _meta: { ...meta, [ENVELOPE.subscriptionId]: subscriptionId } } };
}

/** The first message of a listen stream: what is honoured, stamped (as the v2 server does). */
export function acknowledgement(subscriptionId: JsonRpcId, honoured: SubscriptionFilter): Obj {
  return stamped('notifications/subscriptions/acknowledged', { notifications: honoured }, subscriptionId);
}

/** The last message of a listen stream that ends gracefully (the proxy shutting down, the upstream session ended). */
export function listenResult(subscriptionId: JsonRpcId, serverInfo: Record<string, unknown> | undefined): Obj {
  const meta: Obj = { [ENVELOPE.subscriptionId]: subscriptionId };
  if (serverInfo !== undefined) meta[ENVELOPE.serverInfo] = serverInfo;
  return { jsonrpc: '2.0', id: subscriptionId, result: { resultType: 'complete', _meta: meta } };
}

/** A message from the upstream's GET stream, as the notification feed sees it. */
export type FeedEvent =
  | { readonly kind: 'list-changed'; readonly list: ListKind; readonly params: Obj | undefined }
  | { readonly kind: 'resource-updated'; readonly uri: string; readonly params: Obj }
  /** A question (elicitation, sampling, roots): for the call it belongs to (mcp/standing-questions.ts). */
  | { readonly kind: 'question'; readonly id: JsonRpcId; readonly method: string; readonly params: unknown }
  /** Any other server→client request: no listener can answer it, the upstream gets an error. */
  | { readonly kind: 'refuse'; readonly id: JsonRpcId; readonly method: string }
  /** Anything else (logs and progress unrelated to any request, responses, garbage). */
  | { readonly kind: 'drop' };

const DROP: FeedEvent = { kind: 'drop' };

export function feedEventOf(message: unknown): FeedEvent {
  if (!isJsonRpcMessage(message)) return DROP;
  const { method } = message;
  if (typeof method !== 'string') return DROP;
  if ('id' in message) {
    const id = message.id as JsonRpcId;
    return isInputRequestMethod(method) ? { kind: 'question', id, method, params: message.params } : { kind: 'refuse', id, method };
  }
  const params = isObject(message.params) ? message.params : undefined;
  const list = KIND_OF_METHOD.get(method);
  if (list !== undefined) return { kind: 'list-changed', list, params };
  if (method === RESOURCE_UPDATED && typeof params?.uri === 'string') return { kind: 'resource-updated', uri: params.uri, params };
  return DROP;
}

/** What one listener hears of a feed event: the stamped notification, or nothing. */
export function notificationFor(event: FeedEvent, honoured: SubscriptionFilter, subscriptionId: JsonRpcId): Obj | undefined {
  switch (event.kind) {
    case 'list-changed':
      if (!listKindsOf(honoured).includes(event.list)) return undefined;
      return stamped(LIST_CHANGED_METHOD[event.list], event.params, subscriptionId);
    case 'resource-updated':
      if (honoured.resourceSubscriptions?.includes(event.uri) !== true) return undefined;
      return stamped(RESOURCE_UPDATED, event.params, subscriptionId);
    default:
      return undefined;
  }
}

/**
 * What a listener hears after the upstream stream was re-established (the upstream restarted, or
 * forgot the session): anything could have changed meanwhile unheard, so every list it listens to
 * is said to have changed, and every resource it subscribed to to have been updated. The client
 * re-lists and re-reads; nothing it relies on is missed.
 */
export function gapNotifications(honoured: SubscriptionFilter, subscriptionId: JsonRpcId): Obj[] {
  const notes = listKindsOf(honoured).map((list) => stamped(LIST_CHANGED_METHOD[list], undefined, subscriptionId));
  for (const uri of honoured.resourceSubscriptions ?? []) notes.push(stamped(RESOURCE_UPDATED, { uri }, subscriptionId));
  return notes;
}

/** The answer to a server→client request that arrived on the GET stream: nobody can take it. */
export function feedRequestRefusal(id: JsonRpcId, method: string): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    id,
    error: {
      code: -32601,
      message: `${method} is not available: the proxy's clients listen through subscriptions/listen and cannot answer requests`,
    },
  });
}

export function resourceRequest(method: 'resources/subscribe' | 'resources/unsubscribe', id: string, uri: string): string {
  return JSON.stringify({ jsonrpc: '2.0', id, method, params: { uri } });
}
