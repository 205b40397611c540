/**
 * The TypeScript SDK v2 client (`@modelcontextprotocol/client`), unmodified, in `auto` version
 * negotiation: it probes with `server/discover`, and a legacy upstream behind the proxy makes it
 * fall back to the 2025 handshake. Through the proxy it must then get everything a v1 client
 * gets: a stable session, calls, and recovery when the upstream forgets its sessions.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { describe, expect, it } from 'vitest';
import { useFixtureAndProxy } from '../helpers/fixture-and-proxy.js';

async function connectAuto(url: string, name: string) {
  const client = new Client({ name, version: '2.4.0' }, { capabilities: {}, versionNegotiation: { mode: 'auto' } });
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  return { client, transport };
}

async function echo(client: Client, text: string): Promise<string> {
  const result = await client.callTool({ name: 'echo', arguments: { text } });
  const first = (result.content as Array<{ type: string; text?: string }>)[0];
  return first?.text ?? '';
}

describe('TypeScript SDK v2 client in auto mode, through the proxy, in front of a legacy upstream', () => {
  const env = useFixtureAndProxy('strict');

  it('falls back to the 2025 handshake, keeps one proxy session, and survives the upstream forgetting it', async () => {
    const { client, transport } = await connectAuto(env.proxy.url, 'v2-auto');
    const id = transport.sessionId;
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await echo(client, 'one')).toBe('one');

    await env.upstream.drop();
    expect(await echo(client, 'two')).toBe('two');
    expect(transport.sessionId).toBe(id);

    const stats = await env.upstream.stats();
    // The client's own initialize, then exactly one replay after the drop.
    expect(stats.initializes['v2-auto']).toBe(2);
    expect(stats.requestsBeforeInitialized).toBe(0);
    expect(stats.foreignIds).toEqual([]);
    await client.close();
  });
});
