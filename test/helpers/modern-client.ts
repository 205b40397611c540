/**
 * 2026-07-28 ("modern") callers: the official TypeScript SDK v2 client, unmodified, pinned to
 * 2026-07-28 or in auto mode; and raw requests with the envelope and headers a modern client sends.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

export const MODERN = '2026-07-28';

export interface ModernConnected {
  readonly client: Client;
  readonly transport: StreamableHTTPClientTransport;
  close(): Promise<void>;
}

export async function connectModern(
  url: string,
  name: string,
  options: { mode?: 'pin' | 'auto'; headers?: Record<string, string> } = {},
): Promise<ModernConnected> {
  const versionNegotiation = { mode: options.mode === 'auto' ? ('auto' as const) : { pin: MODERN } };
  const client = new Client({ name, version: '2.4.0' }, { capabilities: {}, versionNegotiation });
  const transport = new StreamableHTTPClientTransport(
    new URL(url),
    options.headers ? { requestInit: { headers: options.headers } } : undefined,
  );
  await client.connect(transport);
  return { client, transport, close: () => client.close() };
}

/** Text of the first content item of a tool result. */
export async function modernCallText(c: ModernConnected, name: string, args: Record<string, unknown> = {}): Promise<string> {
  const result = await c.client.callTool({ name, arguments: args });
  return (result.content as Array<{ type: string; text?: string }>)[0]?.text ?? '';
}

/** The per-request envelope a modern client puts in `params._meta`. */
export function envelope(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    'io.modelcontextprotocol/protocolVersion': MODERN,
    'io.modelcontextprotocol/clientCapabilities': {},
    'io.modelcontextprotocol/clientInfo': { name: 'raw-modern', version: '1' },
    ...extra,
  };
}

/** Headers a modern client sends for `method` (and `name`, for tools/call and friends). */
export function modernHeaders(method: string, name?: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': MODERN,
    'mcp-method': method,
    ...(name === undefined ? {} : { 'mcp-name': name }),
  };
}

/** One raw POST; the JSON-RPC messages of the answer, whichever media type it used. */
export async function post(url: string, headers: Record<string, string>, body: unknown) {
  const res = await fetch(url, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  const messages = (res.headers.get('content-type') ?? '').startsWith('text/event-stream')
    ? text
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map((line) => JSON.parse(line.slice(6)) as Record<string, unknown>)
    : text === ''
      ? []
      : [JSON.parse(text) as Record<string, unknown>];
  return { status: res.status, headers: res.headers, text, messages };
}
