/** The official SDK client over Streamable HTTP, unmodified, as users run it. */
import { expect } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

export interface Connected {
  readonly client: Client;
  readonly transport: StreamableHTTPClientTransport;
  /** The session id the client holds right now. */
  sessionId(): string | undefined;
  close(): Promise<void>;
}

export async function connect(url: string, name = 'test-client', headers?: Record<string, string>): Promise<Connected> {
  const client = new Client({ name, version: '3.1.4' }, { capabilities: { sampling: {}, roots: { listChanged: true } } });
  const transport = new StreamableHTTPClientTransport(new URL(url), headers ? { requestInit: { headers } } : undefined);
  await client.connect(transport);
  return {
    client,
    transport,
    sessionId: () => transport.sessionId,
    close: () => client.close(),
  };
}

/** Text of the first content item of a tool result. */
export async function callText(c: Connected, name: string, args: Record<string, unknown> = {}): Promise<string> {
  const result = await c.client.callTool({ name, arguments: args });
  const first = (result.content as Array<{ type: string; text?: string }>)[0];
  if (result.isError) throw new Error(`tool ${name} failed: ${first?.text}`);
  return first?.text ?? '';
}

/** Headers of a raw POST on the client's session, as the SDK itself would send them. */
export function sessionHeaders(c: Connected): Record<string, string> {
  return {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-session-id': c.sessionId()!,
    'mcp-protocol-version': c.transport.protocolVersion!,
  };
}

/**
 * Connect, then wait until the client's own background GET stream has reached the upstream, so
 * that later requests do not race it (it would otherwise be the one to meet a lost session).
 */
export async function connectSettled(
  url: string,
  name: string,
  upstream: { stats(): Promise<{ protocolVersionsOnGet: unknown[] }> },
): Promise<Connected> {
  const gets = async () => (await upstream.stats()).protocolVersionsOnGet.length;
  const before = await gets();
  const c = await connect(url, name);
  await expect.poll(gets).toBeGreaterThan(before);
  return c;
}
