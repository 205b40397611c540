/**
 * A 2025-era client's GET stream in front of a 2026-07-28-only upstream: served from an upstream
 * subscriptions/listen. The official v1 SDK Client opens its GET stream itself after initialize;
 * list changes and updates of resources it subscribed to reach it without 2026 `_meta` keys,
 * across a filter change and an upstream restart.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { expectNoSecretsInLogs } from '../helpers/log-audit.js';
import { killAll, startModernFixture, startProxy } from '../helpers/processes.js';

afterAll(killAll);

/** Notifications as the client received them, and a way to wait for the next of a kind. */
function inbox(client: Client) {
  const received: { method: string; params?: unknown }[] = [];
  const waiting: { method: string; resolve: () => void }[] = [];
  const take = (n: { method: string; params?: unknown }) => {
    received.push(n);
    for (const w of waiting.filter((w) => w.method === n.method)) {
      waiting.splice(waiting.indexOf(w), 1);
      w.resolve();
    }
  };
  client.setNotificationHandler(ToolListChangedNotificationSchema, (n) => take(n));
  client.setNotificationHandler(ResourceListChangedNotificationSchema, (n) => take(n));
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => take(n));
  return {
    received,
    /** Resolves when `count` notifications of `method` have been received in all. */
    until(method: string, count: number): Promise<void> {
      const have = () => received.filter((n) => n.method === method).length;
      if (have() >= count) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const check = { method, resolve: () => (have() >= count ? resolve() : waiting.push(check)) };
        waiting.push(check);
      });
    },
  };
}

describe('the GET stream of a held session', () => {
  it('carries list changes and subscribed resource updates from subscriptions/listen, across an upstream restart', async () => {
    let upstream = await startModernFixture({ legacy: 'reject' });
    const logFile = join(mkdtempSync(join(tmpdir(), 'held-stream-')), 'proxy.log');
    const proxy = await startProxy(upstream.mcpUrl, { LOG_LEVEL: 'trace', UPSTREAM_ERA: 'modern' }, '0', logFile);
    const client = new Client({ name: 'listening-client', version: '1.0.0' }, { capabilities: {} });
    const notes = inbox(client);
    const transport = new StreamableHTTPClientTransport(new URL(proxy.url));
    await client.connect(transport);
    const sessionId = transport.sessionId!;
    // Advertised from discover, and now served.
    expect(client.getServerCapabilities()).toMatchObject({
      tools: { listChanged: true },
      resources: { subscribe: true, listChanged: true },
    });
    // The client's own GET stream became a listen upstream (every list-changed kind, no URIs yet).
    await expect
      .poll(async () => (await upstream.stats()).listens)
      .toEqual([{ toolsListChanged: true, promptsListChanged: true, resourcesListChanged: true }]);
    // The client's stream opens (its headers go out) only once the upstream acknowledged the listen.
    const openStreams = async () => {
      const text = await (await fetch(`${proxy.origin}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith('mcp_session_proxy_open_sse_streams '));
      return line === undefined ? 0 : Number(line.split(' ')[1]);
    };
    await expect.poll(openStreams).toBe(1);

    await client.callTool({ name: 'change_tools', arguments: {} });
    await notes.until('notifications/tools/list_changed', 1);
    // Without the 2026 subscriptionId.
    expect(notes.received[0]).toEqual({ method: 'notifications/tools/list_changed' });

    // resources/subscribe: answered by the proxy once the new listen (with the URI) is in force.
    await client.subscribeResource({ uri: 'test://watched' });
    expect((await upstream.stats()).methods).not.toContain('resources/subscribe');
    expect((await upstream.stats()).listens.at(-1)).toEqual({
      toolsListChanged: true,
      promptsListChanged: true,
      resourcesListChanged: true,
      resourceSubscriptions: ['test://watched'],
    });
    await client.callTool({ name: 'touch', arguments: { uri: 'test://watched' } });
    await notes.until('notifications/resources/updated', 1);
    expect(notes.received.filter((n) => n.method === 'notifications/resources/updated')).toEqual([
      { method: 'notifications/resources/updated', params: { uri: 'test://watched' } },
    ]);
    // Not subscribed: not heard (the update would come before the list change after it).
    await client.callTool({ name: 'touch', arguments: { uri: 'test://other' } });
    await client.callTool({ name: 'change_resources', arguments: {} });
    await notes.until('notifications/resources/list_changed', 1);
    expect(notes.received.filter((n) => n.method === 'notifications/resources/updated')).toHaveLength(1);

    // The upstream restarts under the open stream: the proxy listens again (backoff) and tells the
    // client what it may have missed; the client's stream itself never broke.
    const before = { tools: 1, resources: 1, updated: 1 };
    await upstream.stop();
    upstream = await startModernFixture({ legacy: 'reject', port: upstream.port });
    await notes.until('notifications/tools/list_changed', before.tools + 1);
    await notes.until('notifications/resources/list_changed', before.resources + 1);
    await notes.until('notifications/resources/updated', before.updated + 1);
    expect((await upstream.stats()).listens).toEqual([
      { toolsListChanged: true, promptsListChanged: true, resourcesListChanged: true, resourceSubscriptions: ['test://watched'] },
    ]);
    await client.callTool({ name: 'change_tools', arguments: {} });
    await notes.until('notifications/tools/list_changed', before.tools + 2);

    // unsubscribe: the listen goes on without the URI.
    await client.unsubscribeResource({ uri: 'test://watched' });
    expect((await upstream.stats()).listens.at(-1)).toEqual({
      toolsListChanged: true,
      promptsListChanged: true,
      resourcesListChanged: true,
    });

    await client.close();
    await proxy.stop();
    expectNoSecretsInLogs([readFileSync(logFile, 'utf8')], [sessionId]);
  });
});
