/**
 * subscriptions/listen's pure part (mcp/subscriptions.ts): the filter a request asks for, the
 * subset a legacy upstream can honour, which upstream message reaches which listener and how it
 * is tagged, the gap signal, and the ack and final result as the v2 server words them.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  acknowledgement,
  feedEventOf,
  gapNotifications,
  honouredSubset,
  listenResult,
  notificationFor,
  MAX_RESOURCE_SUBSCRIPTIONS,
  parseListenFilter,
} from '../../src/mcp/subscriptions.js';

const SID = 'io.modelcontextprotocol/subscriptionId';
// Shapes near the valid ones, so the property reaches past the first checks.
const flag = fc.oneof(fc.boolean(), fc.jsonValue());
const paramsish = fc.oneof(
  fc.jsonValue(),
  fc.record(
    {
      notifications: fc.oneof(
        fc.jsonValue(),
        fc.record(
          {
            toolsListChanged: flag,
            promptsListChanged: flag,
            resourcesListChanged: flag,
            resourceSubscriptions: fc.oneof(fc.array(fc.string()), fc.jsonValue()),
          },
          { requiredKeys: [] },
        ),
      ),
    },
    { requiredKeys: [] },
  ),
);
const capabilitiesish = fc.oneof(
  fc.jsonValue(),
  fc.record(
    {
      tools: fc.record({ listChanged: flag }),
      prompts: fc.jsonValue(),
      resources: fc.record({ listChanged: flag, subscribe: flag }, { requiredKeys: [] }),
    },
    { requiredKeys: [] },
  ),
);
const ALL_CAPS = { tools: { listChanged: true }, prompts: { listChanged: true }, resources: { listChanged: true, subscribe: true } };

describe('parseListenFilter: the SubscriptionFilter of params.notifications', () => {
  it('refuses more resource subscriptions than one listen may make (each is an upstream request)', () => {
    const uris = (n: number) => Array.from({ length: n }, (_, i) => `test://r/${i}`);
    expect(
      parseListenFilter({ notifications: { resourceSubscriptions: uris(MAX_RESOURCE_SUBSCRIPTIONS) } })?.resourceSubscriptions,
    ).toHaveLength(MAX_RESOURCE_SUBSCRIPTIONS);
    expect(parseListenFilter({ notifications: { resourceSubscriptions: uris(MAX_RESOURCE_SUBSCRIPTIONS + 1) } })).toBeUndefined();
  });

  it('keeps the flags asked for (true) and the URIs, once each', () => {
    expect(
      parseListenFilter({ notifications: { toolsListChanged: true, promptsListChanged: false, resourceSubscriptions: ['a', 'b', 'a'] } }),
    ).toEqual({
      toolsListChanged: true,
      resourceSubscriptions: ['a', 'b'],
    });
    expect(parseListenFilter({ notifications: {} })).toEqual({});
    expect(parseListenFilter({ notifications: { resourceSubscriptions: [] } })).toEqual({});
    // Unknown keys are ignored, as zod's object schema does.
    expect(parseListenFilter({ notifications: { toolsListChanged: true, future: 1 } })).toEqual({ toolsListChanged: true });
  });

  it('refuses a missing or malformed filter (the caller answers -32602)', () => {
    for (const params of [undefined, null, {}, { notifications: null }, { notifications: [] }, { notifications: 'all' }]) {
      expect(parseListenFilter(params)).toBeUndefined();
    }
    expect(parseListenFilter({ notifications: { toolsListChanged: 'yes' } })).toBeUndefined();
    expect(parseListenFilter({ notifications: { resourceSubscriptions: 'test://x' } })).toBeUndefined();
    expect(parseListenFilter({ notifications: { resourceSubscriptions: ['ok', 3] } })).toBeUndefined();
  });
});

describe('honouredSubset: only what the upstream declares', () => {
  it('honours list types with listChanged and resource subscriptions with resources.subscribe', () => {
    const asked = { toolsListChanged: true, promptsListChanged: true, resourcesListChanged: true, resourceSubscriptions: ['u'] } as const;
    expect(honouredSubset(asked, ALL_CAPS)).toEqual(asked);
    expect(honouredSubset(asked, { tools: { listChanged: true }, resources: { listChanged: true } })).toEqual({
      toolsListChanged: true,
      resourcesListChanged: true,
    });
    expect(honouredSubset(asked, { tools: {}, prompts: { listChanged: 'true' }, resources: { subscribe: true } })).toEqual({
      resourceSubscriptions: ['u'],
    });
    expect(honouredSubset(asked, undefined)).toEqual({});
  });
});

describe('which upstream message reaches which listener', () => {
  it('list changes go to listeners of that list, updates to subscribers of that URI, tagged with their subscription id', () => {
    const tools = feedEventOf({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
    expect(notificationFor(tools, { toolsListChanged: true }, 'listen:1')).toEqual({
      jsonrpc: '2.0',
      method: 'notifications/tools/list_changed',
      params: { _meta: { [SID]: 'listen:1' } },
    });
    expect(notificationFor(tools, { promptsListChanged: true }, 'listen:1')).toBeUndefined();

    const updated = feedEventOf({
      jsonrpc: '2.0',
      method: 'notifications/resources/updated',
      params: { uri: 'u', title: 't', _meta: { k: 1 } },
    });
    expect(notificationFor(updated, { resourceSubscriptions: ['u'] }, 7)).toEqual({
      jsonrpc: '2.0',
      method: 'notifications/resources/updated',
      params: { uri: 'u', title: 't', _meta: { k: 1, [SID]: 7 } },
    });
    expect(notificationFor(updated, { resourceSubscriptions: ['v'] }, 7)).toBeUndefined();
    expect(notificationFor(updated, { resourcesListChanged: true }, 7)).toBeUndefined();
  });

  it('questions go to the call they belong to, other server requests are refused, everything else dropped', () => {
    expect(feedEventOf({ jsonrpc: '2.0', id: 4, method: 'roots/list' })).toEqual({
      kind: 'question',
      id: 4,
      method: 'roots/list',
      params: undefined,
    });
    const params = { message: 'Name?', requestedSchema: {} };
    expect(feedEventOf({ jsonrpc: '2.0', id: 5, method: 'elicitation/create', params })).toEqual({
      kind: 'question',
      id: 5,
      method: 'elicitation/create',
      params,
    });
    expect(feedEventOf({ jsonrpc: '2.0', id: 6, method: 'ping' })).toEqual({ kind: 'refuse', id: 6, method: 'ping' });
    for (const message of [
      { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'x' } },
      { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } },
      { jsonrpc: '2.0', method: 'notifications/resources/updated', params: {} },
      { jsonrpc: '2.0', id: 1, result: {} },
      'garbage',
      undefined,
    ]) {
      expect(feedEventOf(message)).toEqual({ kind: 'drop' });
    }
  });

  it('a gap is signalled as a change of every list listened to and an update of every resource subscribed', () => {
    expect(
      gapNotifications({ toolsListChanged: true, resourcesListChanged: true, resourceSubscriptions: ['a', 'b'] }, 's').map((n) => [
        n.method,
        (n.params as { uri?: string }).uri,
      ]),
    ).toEqual([
      ['notifications/tools/list_changed', undefined],
      ['notifications/resources/list_changed', undefined],
      ['notifications/resources/updated', 'a'],
      ['notifications/resources/updated', 'b'],
    ]);
  });

  it('words the ack and the graceful result as the v2 server does', () => {
    expect(acknowledgement(3, { toolsListChanged: true })).toEqual({
      jsonrpc: '2.0',
      method: 'notifications/subscriptions/acknowledged',
      params: { notifications: { toolsListChanged: true }, _meta: { [SID]: 3 } },
    });
    expect(listenResult('x', { name: 'n', version: '1' })).toEqual({
      jsonrpc: '2.0',
      id: 'x',
      result: { resultType: 'complete', _meta: { [SID]: 'x', 'io.modelcontextprotocol/serverInfo': { name: 'n', version: '1' } } },
    });
  });

  it('never throws, on any params, capabilities or upstream message', () => {
    fc.assert(
      fc.property(paramsish, capabilitiesish, fc.jsonValue(), (params, capabilities, message) => {
        const filter = parseListenFilter(params) ?? {};
        const honoured = honouredSubset(filter, capabilities);
        // The honoured subset never holds more than was asked.
        for (const key of Object.keys(honoured)) expect(filter).toHaveProperty(key);
        notificationFor(feedEventOf(message), honoured, 1);
        notificationFor(feedEventOf({ jsonrpc: '2.0', method: 'notifications/resources/updated', params: message }), honoured, 1);
        gapNotifications(honoured, 1);
      }),
    );
  });
});
