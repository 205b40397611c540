/**
 * Questions a legacy server asks on its session's standing (GET) stream (issue 20 item 3). The v1
 * SDK's own examples ask with `server.elicitInput(...)` without `relatedRequestId`; the SDK then
 * sends the question on the session's GET stream, or drops it when none is open. The fixture's
 * register-user tools ask that way (test/fixtures/legacy-upstream.ts --mrtr). A 2026-07-28 client
 * (the v2 SDK client, pinned) gets the question as input_required when its call is the only one
 * on the pooled session that can take it; with two such calls the proxy does not guess: the
 * upstream gets an error, the metric counts it, and nobody hangs. A 2025 client, with its own GET
 * stream, answers as before.
 */
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envelope, MODERN, modernHeaders, post } from '../helpers/modern-client.js';
import { killAll, startFixture, startProxy, statsUntil, type Fixture, type Proxy } from '../helpers/processes.js';

afterAll(killAll);

/** A pinned v2 client declaring elicitation (and sampling, if asked); it answers every question with `name`. */
async function connectModern(url: string, clientName: string, name: string, sampling = false) {
  const capabilities = sampling ? { elicitation: {}, sampling: {} } : { elicitation: {} };
  const client = new ModernClient({ name: clientName, version: '2.4.0' }, { capabilities, versionNegotiation: { mode: { pin: MODERN } } });
  const asked: string[] = [];
  client.setRequestHandler('elicitation/create', async (request) => {
    asked.push(String((request.params as { message?: unknown }).message));
    return { action: 'accept', content: { name } };
  });
  if (sampling) {
    client.setRequestHandler('sampling/createMessage', async () => {
      asked.push('sampling');
      return { model: 'test-model', role: 'assistant' as const, content: { type: 'text' as const, text: `${name} says hi` } };
    });
  }
  await client.connect(new ModernTransport(new URL(url)));
  return { client, asked };
}

function textOf(result: object): string {
  return ((result as { content?: unknown }).content as Array<{ text?: string }>)[0]?.text ?? '';
}

async function unattributed(proxy: Proxy, reason: string): Promise<number> {
  const metrics = await (await fetch(`${proxy.origin}/metrics`)).text();
  const line = metrics.split('\n').find((l) => l.startsWith(`mcp_session_proxy_unattributed_questions_total{reason="${reason}"}`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

describe('a v1-SDK legacy server that asks on its standing stream', () => {
  let upstream: Fixture;
  let proxy: Proxy;
  beforeAll(async () => {
    upstream = await startFixture('sdk', { mrtr: true });
    proxy = await startProxy(upstream.mcpUrl);
  });

  it('delivers the question of the one call that can take it to its 2026 client, and the answer reaches the tool', async () => {
    const { client, asked } = await connectModern(proxy.url, 'standing-one', 'Alice');
    const result = await client.callTool({ name: 'register-user', arguments: {} });
    expect(textOf(result)).toBe('Registered Alice');
    expect(result.isError).toBeFalsy();
    expect(asked).toEqual(['Your registration name?']);
    // The question came on the session's one GET stream, which the proxy opened for the call.
    const stats = await upstream.stats();
    expect(stats.gets).toBe(1);
    expect(stats.toolRuns['register-user']).toBe(1);
    expect(stats.answersReceived).toBeGreaterThanOrEqual(1);
    await client.close();
  });

  it('delivers a sampling question the same way', async () => {
    const { client, asked } = await connectModern(proxy.url, 'standing-sampling', 'Dee', true);
    const result = await client.callTool({ name: 'summarize', arguments: {} });
    expect(textOf(result)).toBe('Dee says hi');
    expect(asked).toEqual(['sampling']);
    await client.close();
  });

  it('fails the only call with -32021 when its caller did not declare what the question needs, as on its own answer', async () => {
    const before = await upstream.stats();
    const noCaller = await unattributed(proxy, 'no_caller');
    const { client, asked } = await connectModern(proxy.url, 'standing-undeclared', 'Eve');
    await expect(client.callTool({ name: 'summarize', arguments: {} })).rejects.toMatchObject({
      code: -32021,
      data: { requiredCapabilities: { sampling: {} } },
    });
    expect(asked).toEqual([]);
    // Upstream, the question was refused and the call cancelled: nothing left open.
    const stats = await statsUntil(upstream, (s) => s.answerErrors > before.answerErrors && s.openRequests === 0);
    expect(stats.answerErrors).toBe(before.answerErrors + 1);
    expect(stats.openRequests).toBe(0);
    expect(await unattributed(proxy, 'no_caller')).toBe(noCaller);
    await client.close();
  });

  it('refuses upstream, and counts, a question two concurrent calls on one pooled session could both take; neither hangs', async () => {
    const before = await upstream.stats();
    const ambiguousBefore = await unattributed(proxy, 'ambiguous');
    // Same clientInfo, capabilities and (no) credentials: one pool key, so one upstream session.
    const a = await connectModern(proxy.url, 'standing-two', 'Ann');
    const b = await connectModern(proxy.url, 'standing-two', 'Bob');
    const calls = [a, b].map((c) => c.client.callTool({ name: 'register-user-at-gate', arguments: {} }));
    // Both calls are in flight upstream, waiting at the gate; then both ask on the GET stream.
    await statsUntil(upstream, (s) => s.gateWaiters === before.gateWaiters + 2);
    await upstream.release();
    const results = await Promise.all(calls);
    for (const result of results) {
      expect(result.isError).toBe(true);
      expect(textOf(result)).toMatch(/^Registration failed: .*several requests could take it/);
    }
    expect(a.asked).toEqual([]);
    expect(b.asked).toEqual([]);
    const stats = await upstream.stats();
    expect(stats.initializes['standing-two']).toBe(1);
    expect(stats.answerErrors).toBe(before.answerErrors + 2);
    expect(await unattributed(proxy, 'ambiguous')).toBe(ambiguousBefore + 2);
    await a.client.close();
    await b.client.close();
  });

  it('frees the place of a call that failed before going upstream: the next call on the session is still the only one asked', async () => {
    const meta = envelope({
      'io.modelcontextprotocol/clientInfo': { name: 'standing-unsendable', version: '1' },
      'io.modelcontextprotocol/clientCapabilities': { elicitation: {} },
    });
    // Parses, but cannot be written out again for the upstream (JSON.stringify runs out of stack).
    const deep = '['.repeat(20_000) + ']'.repeat(20_000);
    const unsendable = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"register-user","arguments":{"deep":${deep}},"_meta":${JSON.stringify(meta)}}}`;
    const failed = await post(proxy.url, modernHeaders('tools/call', 'register-user'), unsendable);
    expect(failed.messages[0]).toMatchObject({ id: 1, error: {} });
    const asked = await post(proxy.url, modernHeaders('tools/call', 'register-user'), {
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'register-user', arguments: {}, _meta: meta },
    });
    expect(asked.messages.at(-1)).toMatchObject({
      id: 2,
      result: { resultType: 'input_required', inputRequests: expect.any(Object) },
    });
  });

  it('still lets a 2025 client answer on its own GET stream, as before', async () => {
    const client = new Client({ name: 'standing-legacy', version: '1.0.0' }, { capabilities: { elicitation: {} } });
    client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { name: 'Carol' } }));
    const opened = (await upstream.stats()).gets;
    await client.connect(new StreamableHTTPClientTransport(new URL(proxy.url)));
    // The client's GET stream reaches the upstream in the background: the question needs it there.
    await statsUntil(upstream, (s) => s.gets > opened);
    const result = await client.callTool({ name: 'register-user', arguments: {} });
    expect(textOf(result)).toBe('Registered Carol');
    await client.close();
  });
});
