/**
 * A 2025-era client (the official v1 SDK Client, unmodified) cancels a request on a session the
 * proxy holds in front of a 2026-07-28-only upstream: its `notifications/cancelled` becomes the
 * 2026 cancellation, the upstream request's HTTP exchange closed. The fixture's `hang` tool runs
 * until its request is aborted and records that it was; the tests wait for that record.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { expectNoSecretsInLogs } from '../helpers/log-audit.js';
import { killAll, startModernFixture, startProxy, type ModernFixture, type Proxy } from '../helpers/processes.js';

afterAll(killAll);

/** What the client POSTed and the status each POST was answered with. */
interface Posted {
  readonly method: string | undefined;
  readonly id: unknown;
  readonly params: Record<string, unknown> | undefined;
  readonly status: number;
  readonly contentType: string | null;
}

/**
 * A v1 SDK client declaring elicitation. `onElicit` answers elicitations; `posted` lists the
 * client's POSTs once answered and `ended` the ids of those whose answer was read to its end
 * (seen through the transport's public `fetch` option); `errors` whatever the client reported to
 * `onerror` (a clean end of a cancelled request reports nothing).
 */
async function connectWatched(url: string, onElicit: (withdrawn: AbortSignal) => Promise<unknown> = () => new Promise(() => undefined)) {
  const client = new Client({ name: 'cancelling-client', version: '1.0.0' }, { capabilities: { elicitation: {} } });
  // The handler's signal: the SDK aborts it when the server withdraws its question.
  client.setRequestHandler(ElicitRequestSchema, async (_request, extra) => (await onElicit(extra.signal)) as { action: 'accept' });
  const posted: Posted[] = [];
  const ended: unknown[] = [];
  const watching: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    if (init?.method !== 'POST' || typeof init.body !== 'string') return response;
    const message = JSON.parse(init.body) as { method?: string; id?: unknown; params?: Record<string, unknown> };
    posted.push({
      method: message.method,
      id: message.id,
      params: message.params,
      status: response.status,
      contentType: response.headers.get('content-type'),
    });
    if (response.body === null) return response;
    // The answer's body, as the transport reads it, noting when it reaches its end.
    const body = response.body.pipeThrough(new TransformStream({ flush: () => void ended.push(message.id) }));
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
  const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: watching });
  const errors: unknown[] = [];
  await client.connect(transport);
  client.onerror = (error) => errors.push(error);
  return { client, transport, posted, ended, errors };
}

type Watched = Awaited<ReturnType<typeof connectWatched>>;

/** The id of the client's tools/call of `tool` (once its POST was answered). */
async function callIdOf(c: Watched, tool: string): Promise<unknown> {
  await expect.poll(() => c.posted.some((p) => p.method === 'tools/call' && p.params?.name === tool)).toBe(true);
  return c.posted.find((p) => p.method === 'tools/call' && p.params?.name === tool)!.id;
}

/** Wait until the client's notifications/cancelled has been answered; its status. */
async function cancelAnswered(c: Watched): Promise<number> {
  await expect.poll(() => c.posted.some((p) => p.method === 'notifications/cancelled')).toBe(true);
  return c.posted.find((p) => p.method === 'notifications/cancelled')!.status;
}

function text(result: object): string {
  return (((result as { content?: { text: string }[] }).content ?? [])[0] ?? { text: '' }).text;
}

describe('notifications/cancelled on a held session', () => {
  let upstream: ModernFixture;
  let proxy: Proxy;
  const logFile = join(mkdtempSync(join(tmpdir(), 'held-cancel-')), 'proxy.log');
  const sessionIds: string[] = [];

  beforeAll(async () => {
    upstream = await startModernFixture({ legacy: 'reject' });
    proxy = await startProxy(upstream.mcpUrl, { LOG_LEVEL: 'trace', UPSTREAM_ERA: 'modern' }, '0', logFile);
  });

  it('aborts-the-upstream-request-of-a-cancelled-call: the upstream sees its request aborted, the session carries on', async () => {
    const c = await connectWatched(proxy.url);
    sessionIds.push(c.transport.sessionId!);
    const aborting = new AbortController();
    const call = c.client
      .callTool({ name: 'hang', arguments: { tag: 'quiet' } }, undefined, { signal: aborting.signal })
      .catch((error: unknown) => error);
    // The request is running upstream before it is cancelled.
    await expect.poll(async () => (await upstream.stats()).hangsStarted).toContain('quiet');
    aborting.abort('changed my mind');
    // The v1 client rejects locally and sends notifications/cancelled itself.
    expect(await call).toMatchObject({ message: expect.stringContaining('changed my mind') });
    expect(await cancelAnswered(c)).toBe(202);
    await expect.poll(async () => (await upstream.stats()).hangsAborted).toContain('quiet');
    // Its answer (not begun when the cancellation came) ended without a response: an SSE stream with no event.
    const id = await callIdOf(c, 'hang');
    expect(c.posted.find((p) => p.id === id)).toMatchObject({ status: 200, contentType: 'text/event-stream' });
    await expect.poll(() => c.ended).toContain(id);

    // The same session serves the next call; the proxy is still there, and the client heard of no
    // error (its cancelled request's answer ended without a response, as 2025-11-25 wants).
    expect(text(await c.client.callTool({ name: 'echo', arguments: { text: 'next' } }))).toBe('next');
    expect(c.errors).toEqual([]);
    expect(proxy.child.exitCode).toBeNull();
    await c.client.close();
  });

  it('ends-an-answer-already-streaming: progress went by, then the cancellation ends the stream', async () => {
    const c = await connectWatched(proxy.url);
    sessionIds.push(c.transport.sessionId!);
    const aborting = new AbortController();
    let progressed!: () => void;
    const progress = new Promise<void>((resolve) => (progressed = resolve));
    const call = c.client
      .callTool({ name: 'hang', arguments: { tag: 'streaming' } }, undefined, { signal: aborting.signal, onprogress: () => progressed() })
      .catch((error: unknown) => error);
    // The progress notification reached the client: its answer is an SSE stream by now.
    await progress;
    aborting.abort('enough');
    expect(await call).toMatchObject({ message: expect.stringContaining('enough') });
    expect(await cancelAnswered(c)).toBe(202);
    await expect.poll(async () => (await upstream.stats()).hangsAborted).toContain('streaming');
    await expect.poll(() => c.ended).toContain(await callIdOf(c, 'hang'));
    expect(text(await c.client.callTool({ name: 'echo', arguments: { text: 'after a stream' } }))).toBe('after a stream');
    expect(c.errors).toEqual([]);
    await c.client.close();
  });

  it('aborts-a-cancelled-request-of-any-method: a completion/complete the upstream never answers', async () => {
    const c = await connectWatched(proxy.url);
    sessionIds.push(c.transport.sessionId!);
    const aborting = new AbortController();
    const before = (await upstream.stats()).methods.filter((m) => m === 'completion/complete').length;
    const completing = c.client
      .complete({ ref: { type: 'ref/prompt', name: 'slow_prompt' }, argument: { name: 'topic', value: 'a' } }, { signal: aborting.signal })
      .catch((error: unknown) => error);
    await expect.poll(async () => (await upstream.stats()).methods.filter((m) => m === 'completion/complete').length).toBe(before + 1);
    aborting.abort('too slow');
    expect(await completing).toMatchObject({ message: expect.stringContaining('too slow') });
    expect(await cancelAnswered(c)).toBe(202);
    // The upstream's HTTP exchange was closed before its answer: the 2026-07-28 cancellation.
    await expect.poll(async () => (await upstream.stats()).closedEarly).toContain('completion/complete');
    const id = c.posted.find((p) => p.method === 'notifications/cancelled')!.params!.requestId;
    await expect.poll(() => c.ended).toContain(id);
    expect(text(await c.client.callTool({ name: 'echo', arguments: { text: 'completed?' } }))).toBe('completed?');
    expect(c.errors).toEqual([]);
    await c.client.close();
  });

  it('ends-an-input-exchange-waiting-for-the-client: its question is withdrawn, nothing more goes upstream', async () => {
    let asked!: () => void;
    const question = new Promise<void>((resolve) => (asked = resolve));
    let answer!: () => void;
    let withdrawn: unknown;
    const c = await connectWatched(proxy.url, (signal) => {
      signal.addEventListener('abort', () => (withdrawn = signal.reason));
      asked();
      return new Promise((resolve) => (answer = () => resolve({ action: 'accept', content: { ok: true } })));
    });
    sessionIds.push(c.transport.sessionId!);
    const before = (await upstream.stats()).toolCallIds.length;
    const aborting = new AbortController();
    const call = c.client
      .callTool({ name: 'confirm', arguments: {} }, undefined, { signal: aborting.signal })
      .catch((error: unknown) => error);
    // The upstream answered input_required; the proxy's question waits for the client.
    await question;
    aborting.abort('never mind');
    expect(await call).toMatchObject({ message: expect.stringContaining('never mind') });
    expect(await cancelAnswered(c)).toBe(202);
    // The proxy withdrew its question (notifications/cancelled on the request's stream, before it
    // ended): the SDK aborted the handler, so the user's late answer is never sent.
    await expect.poll(() => String(withdrawn)).toContain('The request was cancelled');
    answer();
    // The SSE answer that carried the question has ended.
    await expect.poll(() => c.ended).toContain(await callIdOf(c, 'confirm'));
    expect(text(await c.client.callTool({ name: 'echo', arguments: { text: 'carry on' } }))).toBe('carry on');
    expect(c.posted.filter((p) => p.method === undefined)).toEqual([]);
    const calls = (await upstream.stats()).toolCallIds.slice(before);
    // The first round of confirm, then the echo: no retry of confirm.
    expect(calls).toHaveLength(2);
    expect(c.errors).toEqual([]);
    await c.client.close();
  });

  it('ignores-cancels-it-cannot-match: an unknown id, a finished one, malformed ones', async () => {
    const c = await connectWatched(proxy.url);
    sessionIds.push(c.transport.sessionId!);
    expect(text(await c.client.callTool({ name: 'echo', arguments: { text: 'done' } }))).toBe('done');
    const finished = c.posted.find((p) => p.method === 'tools/call')!.id;
    const headers = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': c.transport.sessionId!,
      'mcp-protocol-version': c.transport.protocolVersion!,
    };
    const cancel = (requestId: unknown) =>
      fetch(proxy.url, {
        method: 'POST',
        headers,
        body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId, reason: 'test' } }),
      });
    for (const requestId of [finished, 'no-such-request', String(finished), null, undefined])
      expect((await cancel(requestId)).status).toBe(202);
    expect(text(await c.client.callTool({ name: 'echo', arguments: { text: 'still fine' } }))).toBe('still fine');
    expect(c.errors).toEqual([]);
    await c.client.close();
  });

  it('ends-the-requests-in-flight-of-a-deleted-session: DELETE aborts them upstream', async () => {
    const c = await connectWatched(proxy.url);
    sessionIds.push(c.transport.sessionId!);
    const call = c.client.callTool({ name: 'hang', arguments: { tag: 'deleted' } }).catch((error: unknown) => error);
    await expect.poll(async () => (await upstream.stats()).hangsStarted).toContain('deleted');
    await c.transport.terminateSession();
    await expect.poll(async () => (await upstream.stats()).hangsAborted).toContain('deleted');
    // Its answer ended without a response; closing the client gives up on it.
    await expect.poll(() => c.ended).toContain(await callIdOf(c, 'hang'));
    await c.client.close();
    expect(await call).toBeInstanceOf(Error);
    expect(proxy.child.exitCode).toBeNull();
  });

  it('logs no session id, and no error', async () => {
    await proxy.stop();
    const output = readFileSync(logFile, 'utf8');
    expectNoSecretsInLogs([output], sessionIds);
    const levels = output.split('\n').flatMap((line) => (line.startsWith('{') ? [(JSON.parse(line) as { level: number }).level] : []));
    // pino's 50 is error: nothing went wrong in the proxy while requests were cancelled.
    expect(levels.filter((level) => level >= 50)).toEqual([]);
  });
});
