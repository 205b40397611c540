/**
 * A 2026-07-28-only upstream answers input_required (MRTR); the 2025-era client (the official v1
 * SDK Client with elicitation, sampling and roots handlers) is asked real server→client requests
 * on the SSE answer to its tools/call, and sees one request and one answer.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import { expectNoSecretsInLogs } from '../helpers/log-audit.js';
import { killAll, startModernFixture, startProxy, type ModernFixture, type Proxy } from '../helpers/processes.js';

afterAll(killAll);

interface Asked {
  elicit: unknown[];
  sample: unknown[];
  roots: number;
}

/**
 * A v1 SDK client declaring `capabilities`, answering what it declared; `asked` records each
 * question. `onElicit` gets the handler's signal, which the SDK aborts when the server withdraws
 * its question (notifications/cancelled).
 */
async function connectAnswering(
  url: string,
  capabilities: Record<string, object>,
  onElicit?: (withdrawn: AbortSignal) => Promise<unknown>,
) {
  const client = new Client({ name: 'answering-client', version: '1.0.0' }, { capabilities });
  const asked: Asked = { elicit: [], sample: [], roots: 0 };
  if ('elicitation' in capabilities) {
    client.setRequestHandler(ElicitRequestSchema, async (request, extra) => {
      asked.elicit.push(request.params);
      if (onElicit !== undefined) return (await onElicit(extra.signal)) as { action: 'accept' };
      const properties = Object.keys((request.params as { requestedSchema?: { properties?: object } }).requestedSchema?.properties ?? {});
      return {
        action: 'accept',
        content: properties.includes('ok') ? { ok: true } : properties.includes('name') ? { name: 'alice' } : { v: 'x' },
      };
    });
  }
  if ('sampling' in capabilities) {
    client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
      asked.sample.push(request.params);
      return { role: 'assistant', content: { type: 'text', text: 'roses' }, model: 'test-model' };
    });
  }
  if ('roots' in capabilities) {
    client.setRequestHandler(ListRootsRequestSchema, async () => {
      asked.roots++;
      return { roots: [{ uri: 'file:///a' }, { uri: 'file:///b' }] };
    });
  }
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  return { client, transport, asked };
}

const ALL = { elicitation: {}, sampling: {}, roots: { listChanged: true } };

function text(result: object): string {
  return (((result as { content?: { text: string }[] }).content ?? [])[0] ?? { text: '' }).text;
}

describe('input_required from a modern-only upstream, for a 2025-era client', () => {
  let upstream: ModernFixture;
  let proxy: Proxy;
  const logFile = join(mkdtempSync(join(tmpdir(), 'held-input-')), 'proxy.log');
  const sessionIds: string[] = [];

  beforeAll(async () => {
    upstream = await startModernFixture({ legacy: 'reject' });
    proxy = await startProxy(upstream.mcpUrl, { LOG_LEVEL: 'trace', UPSTREAM_ERA: 'modern', HELD_INPUT_TIMEOUT_MS: '400' }, '0', logFile);
  });

  it('one round: the elicitation reaches the client, its answer goes back as inputResponses with a new id', async () => {
    const c = await connectAnswering(proxy.url, ALL);
    sessionIds.push(c.transport.sessionId!);
    const before = (await upstream.stats()).toolCallIds.length;
    const result = await c.client.callTool({ name: 'confirm', arguments: {} });
    expect(JSON.parse(text(result))).toEqual({ action: 'accept', content: { ok: true } });
    expect(c.asked.elicit).toEqual([expect.objectContaining({ message: 'Go ahead?' })]);
    const ids = (await upstream.stats()).toolCallIds.slice(before);
    expect(ids).toHaveLength(2);
    expect(new Set(ids).size).toBe(2);
    await c.client.close();
  });

  it('several rounds: elicitation, then sampling, then roots, the requestState byte for byte each time', async () => {
    const c = await connectAnswering(proxy.url, ALL);
    sessionIds.push(c.transport.sessionId!);
    const before = (await upstream.stats()).requestStates.length;
    const result = await c.client.callTool({ name: 'interview', arguments: {} });
    expect(text(result)).toBe('alice|roses|file:///a,file:///b');
    expect((await upstream.stats()).requestStates.slice(before)).toEqual([null, 'r1 "quoted" é', 'r2|alice', 'r3|alice|roses']);
    expect(c.asked).toMatchObject({ elicit: [expect.anything()], sample: [expect.objectContaining({ maxTokens: 10 })], roots: 1 });
    await c.client.close();
  });

  it('several inputs in one round: all asked at once, all answered in one retry', async () => {
    const c = await connectAnswering(proxy.url, ALL);
    const result = await c.client.callTool({ name: 'survey', arguments: {} });
    expect(JSON.parse(text(result))).toEqual({
      a: { action: 'accept', content: { v: 'x' } },
      b: { role: 'assistant', content: { type: 'text', text: 'roses' }, model: 'test-model' },
      c: { roots: [{ uri: 'file:///a' }, { uri: 'file:///b' }] },
    });
    expect(c.asked.roots).toBe(1);
    await c.client.close();
  });

  it('fails clearly: a capability the client did not declare, too many rounds, an error from the client, no answer in time', async () => {
    const noElicitation = await connectAnswering(proxy.url, { sampling: {} });
    const missing = await noElicitation.client.callTool({ name: 'confirm', arguments: {} }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(McpError);
    // The v2 server checks the envelope's capabilities itself; the proxy checks too (HELD_INPUT_MISSING_CAPABILITY).
    expect((missing as McpError).code).toBe(-32021);
    expect((missing as McpError).data).toMatchObject({ requiredCapabilities: { elicitation: {} } });
    await noElicitation.client.close();

    const c = await connectAnswering(proxy.url, ALL);
    const before = (await upstream.stats()).toolCallIds.length;
    const endless = await c.client.callTool({ name: 'endless', arguments: {} }).catch((e: unknown) => e);
    expect((endless as McpError).data).toMatchObject({ reason: 'HELD_INPUT_ROUNDS_EXCEEDED' });
    expect((await upstream.stats()).toolCallIds.length - before).toBe(10);
    await c.client.close();

    const refusing = await connectAnswering(proxy.url, ALL, () => Promise.reject(new McpError(-32001, 'user said no')));
    const failed = await refusing.client.callTool({ name: 'confirm', arguments: {} }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(McpError);
    expect((failed as McpError).data).toMatchObject({ reason: 'HELD_INPUT_FAILED' });
    expect((failed as McpError).message).toContain('user said no');
    await refusing.client.close();

    let release!: () => void;
    let withdrawn: unknown;
    const slow = await connectAnswering(proxy.url, ALL, (signal) => {
      signal.addEventListener('abort', () => (withdrawn = signal.reason));
      return new Promise((resolve) => (release = () => resolve({ action: 'cancel' })));
    });
    const late = await slow.client.callTool({ name: 'confirm', arguments: {} }).catch((e: unknown) => e);
    expect((late as McpError).data).toMatchObject({ reason: 'HELD_INPUT_TIMEOUT' });
    // The question was withdrawn before the error (notifications/cancelled on the same stream):
    // the SDK aborted its handler, i.e. stopped asking its user.
    expect(String(withdrawn)).toContain('did not answer in time');
    // Its answer comes after all: taken (202) and dropped.
    release();
    await slow.client.close();
  });

  it('over raw HTTP: a JSON-only Accept cannot be asked; a client that closes the stream ends the exchange; a stray response is taken', async () => {
    const c = await connectAnswering(proxy.url, ALL);
    const headers = {
      'content-type': 'application/json',
      'mcp-session-id': c.transport.sessionId!,
      'mcp-protocol-version': c.transport.protocolVersion!,
    };
    const call = { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'confirm', arguments: {} } };
    const jsonOnly = await fetch(proxy.url, {
      method: 'POST',
      headers: { ...headers, accept: 'application/json' },
      body: JSON.stringify(call),
    });
    expect(jsonOnly.status).toBe(200);
    expect(await jsonOnly.json()).toMatchObject({ id: 7, error: { data: { reason: 'HELD_INPUT_NEEDS_EVENT_STREAM' } } });

    const aborted = new AbortController();
    const streamed = await fetch(proxy.url, {
      method: 'POST',
      headers: { ...headers, accept: 'application/json, text/event-stream' },
      body: JSON.stringify(call),
      signal: aborted.signal,
    });
    expect(streamed.headers.get('content-type')).toBe('text/event-stream');
    const reader = streamed.body!.getReader();
    let seen = '';
    while (!seen.includes('\n\n')) seen += new TextDecoder().decode((await reader.read()).value);
    const question = JSON.parse(seen.slice(seen.indexOf('data: ') + 6, seen.indexOf('\n\n'))) as { id: string; method: string };
    expect(question.method).toBe('elicitation/create');
    expect(question.id).toMatch(/^mcp-session-proxy-ask-\d+$/);
    // SSE answers open in the proxy (this one among them), from its metrics.
    const openStreams = async () => {
      const line = (await (await fetch(`${proxy.origin}/metrics`)).text())
        .split('\n')
        .find((l) => l.startsWith('mcp_session_proxy_open_sse_streams '));
      return line === undefined ? 0 : Number(line.split(' ')[1]);
    };
    const open = await openStreams();
    aborted.abort();
    // The proxy saw the client go (its stream closed; the exchange ends on the same event): only
    // then is the answer below a late one, not a race with the close.
    await expect.poll(openStreams).toBe(open - 1);
    // The answer after the client went away finds nobody waiting: 202, nothing sent upstream.
    const before = (await upstream.stats()).toolCallIds.length;
    const stray = await fetch(proxy.url, {
      method: 'POST',
      headers: { ...headers, accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: question.id, result: { action: 'accept', content: { ok: true } } }),
    });
    expect(stray.status).toBe(202);
    // The session carries on.
    const result = await c.client.callTool({ name: 'echo', arguments: { text: 'still here' } });
    expect(text(result)).toBe('still here');
    expect((await upstream.stats()).toolCallIds.length - before).toBe(1);
    await c.client.close();
  });

  it('logs no session id', async () => {
    await proxy.stop();
    expectNoSecretsInLogs([readFileSync(logFile, 'utf8')], sessionIds);
  });
});
