/**
 * MRTR over legacy upstreams (issue 12 items 1–4): the TypeScript SDK v2 client pinned to
 * 2026-07-28, with elicitation, sampling and roots handlers, against a v1-SDK upstream whose tools
 * ask through server→client requests (test/fixtures/legacy-upstream.ts --mrtr). One proxy: the
 * retry continues the parked upstream exchange (the tool runs once). Two replicas behind round
 * robin with a shared secret: the retry lands on the other replica, which re-runs the request and
 * answers the questions from the client's answers. Plus: undeclared capabilities, tampered and
 * foreign requestState, and a client that never comes back (the upstream exchange is ended).
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBalancer, type Balancer } from '../helpers/balancer.js';
import { envelope, MODERN, modernHeaders, post } from '../helpers/modern-client.js';
import { killAll, startFixture, startProxy, statsUntil, type Fixture, type Proxy } from '../helpers/processes.js';

afterAll(killAll);

const ALL_CAPABILITIES = { elicitation: {}, sampling: {}, roots: {} };

interface Asking {
  readonly client: Client;
  /** Questions the handlers answered, by method. */
  readonly asked: string[];
  close(): Promise<void>;
}

/** A pinned v2 client that answers every question: name Alice, colour blue, a model reply, one root. */
async function connectAsking(
  url: string,
  name: string,
  capabilities: Record<string, object> = ALL_CAPABILITIES,
  headers?: Record<string, string>,
): Promise<Asking> {
  const client = new Client({ name, version: '2.4.0' }, { capabilities, versionNegotiation: { mode: { pin: MODERN } } });
  const asked: string[] = [];
  if ('elicitation' in capabilities) {
    client.setRequestHandler('elicitation/create', async (request) => {
      asked.push('elicitation/create');
      const schema = request.params as { requestedSchema?: { properties?: Record<string, unknown> } };
      const field = Object.keys(schema.requestedSchema?.properties ?? {})[0] ?? 'name';
      return { action: 'accept', content: { [field]: field === 'color' ? 'blue' : 'Alice' } };
    });
  }
  if ('sampling' in capabilities) {
    client.setRequestHandler('sampling/createMessage', async () => {
      asked.push('sampling/createMessage');
      return { model: 'test-model', role: 'assistant' as const, content: { type: 'text' as const, text: 'Hi there' } };
    });
  }
  if ('roots' in capabilities) {
    client.setRequestHandler('roots/list', async () => {
      asked.push('roots/list');
      return { roots: [{ uri: 'file:///work', name: 'work' }] };
    });
  }
  const transport = new StreamableHTTPClientTransport(new URL(url), headers ? { requestInit: { headers } } : undefined);
  await client.connect(transport);
  return { client, asked, close: () => client.close() };
}

async function callText(c: Asking, name: string): Promise<string> {
  const result = await c.client.callTool({ name, arguments: {} });
  return (result.content as Array<{ text?: string }>)[0]?.text ?? '';
}

/** A raw first round of `tools/call name`, with these capabilities and headers. */
function firstRound(url: string, name: string, extra: { capabilities?: object; headers?: Record<string, string>; args?: object } = {}) {
  return post(
    url,
    { ...modernHeaders('tools/call', name), ...extra.headers },
    {
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: {
        name,
        arguments: extra.args ?? {},
        _meta: envelope({ 'io.modelcontextprotocol/clientCapabilities': extra.capabilities ?? ALL_CAPABILITIES }),
      },
    },
  );
}

function retry(
  url: string,
  name: string,
  requestState: unknown,
  inputResponses: object,
  extra: { headers?: Record<string, string>; args?: object } = {},
) {
  return post(
    url,
    { ...modernHeaders('tools/call', name), ...extra.headers },
    {
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: {
        name,
        arguments: extra.args ?? {},
        inputResponses,
        requestState,
        _meta: envelope({ 'io.modelcontextprotocol/clientCapabilities': ALL_CAPABILITIES }),
      },
    },
  );
}

describe('one proxy: the retry continues the parked upstream exchange', () => {
  let upstream: Fixture;
  let proxy: Proxy;
  beforeAll(async () => {
    upstream = await startFixture('sdk', { mrtr: true });
    proxy = await startProxy(upstream.mcpUrl, { LOG_LEVEL: 'debug' });
  });

  it('answers one question through input_required, and the tool runs once', async () => {
    const c = await connectAsking(proxy.url, 'one-question');
    expect(await callText(c, 'ask-name')).toBe('Hello, Alice!');
    expect(c.asked).toEqual(['elicitation/create']);
    const stats = await upstream.stats();
    expect(stats.toolRuns['ask-name']).toBe(1);
    expect(stats.answersReceived).toBe(1);
    await c.close();
  });

  it('answers two questions in a row (two rounds), the tool still running once', async () => {
    const c = await connectAsking(proxy.url, 'two-in-a-row');
    expect(await callText(c, 'ask-twice')).toBe('Alice likes blue');
    expect(c.asked).toEqual(['elicitation/create', 'elicitation/create']);
    expect((await upstream.stats()).toolRuns['ask-twice']).toBe(1);
    await c.close();
  });

  it('asks three questions at once as one input_required with three keys', async () => {
    const first = await firstRound(proxy.url, 'ask-all');
    expect(first.status).toBe(200);
    const result = first.messages.at(-1)!.result as {
      resultType: string;
      inputRequests: Record<string, { method: string }>;
      requestState: string;
    };
    expect(result.resultType).toBe('input_required');
    expect(
      Object.values(result.inputRequests)
        .map((r) => r.method)
        .sort(),
    ).toEqual(['elicitation/create', 'roots/list', 'sampling/createMessage']);
    expect(typeof result.requestState).toBe('string');
    // One retry answers all three.
    const answers: Record<string, object> = {};
    for (const [key, request] of Object.entries(result.inputRequests)) {
      answers[key] =
        request.method === 'elicitation/create'
          ? { action: 'accept', content: { name: 'Raw' } }
          : request.method === 'roots/list'
            ? { roots: [{ uri: 'file:///raw' }] }
            : { model: 'm', role: 'assistant', content: { type: 'text', text: 'Yo' } };
    }
    const done = await retry(proxy.url, 'ask-all', result.requestState, answers);
    expect(done.messages.at(-1)).toMatchObject({
      id: 2,
      result: { resultType: 'complete', content: [{ text: 'Raw | Yo | file:///raw' }] },
    });

    const c = await connectAsking(proxy.url, 'three-at-once');
    expect(await callText(c, 'ask-all')).toBe('Alice | Hi there | file:///work');
    expect([...c.asked].sort()).toEqual(['elicitation/create', 'roots/list', 'sampling/createMessage']);
    await c.close();
  });

  it('serves prompts/get the same way', async () => {
    const c = await connectAsking(proxy.url, 'prompt-asker');
    const prompt = await c.client.getPrompt({ name: 'ask-prompt' });
    expect((prompt.messages[0]!.content as { text: string }).text).toBe('About Alice');
    await c.close();
  });

  it('refuses a question the client declared no capability for, upstream and with -32021, and asks nothing', async () => {
    const before = await upstream.stats();
    // ask-all asks elicitation (declared), sampling and roots (not declared) at once.
    const c = await connectAsking(proxy.url, 'elicitation-only', { elicitation: {} });
    await expect(c.client.callTool({ name: 'ask-all', arguments: {} })).rejects.toMatchObject({ code: -32021 });
    // Every question of that run was answered upstream with an error; none reached the client.
    const stats = await statsUntil(upstream, (s) => s.answerErrors >= before.answerErrors + 2 && s.openRequests === 0);
    expect(stats.answerErrors).toBeGreaterThanOrEqual(before.answerErrors + 2);
    expect(stats.openRequests).toBe(0);
    expect(c.asked).toEqual([]);
    await c.close();
  });

  it('refuses a tampered, foreign or misapplied requestState with -32602, as a 2026-07-28 server does', async () => {
    const alice = { authorization: 'Bearer alice-token-0123456789' };
    const first = await firstRound(proxy.url, 'ask-name', { headers: alice });
    const state = (first.messages.at(-1)!.result as { requestState: string }).requestState;
    const answers = {
      [Object.keys((first.messages.at(-1)!.result as { inputRequests: object }).inputRequests)[0]!]: {
        action: 'accept',
        content: { name: 'Mallory' },
      },
    };
    for (const [label, attempt] of [
      ['tampered', retry(proxy.url, 'ask-name', `${state}-TAMPERED`, answers, { headers: alice })],
      ['foreign credentials', retry(proxy.url, 'ask-name', state, answers, { headers: { authorization: 'Bearer mallory-token-012345' } })],
      ['no credentials', retry(proxy.url, 'ask-name', state, answers)],
      ['another request', retry(proxy.url, 'ask-name', state, answers, { headers: alice, args: { extra: 1 } })],
      ['not a string', retry(proxy.url, 'ask-name', 42, answers, { headers: alice })],
    ] as const) {
      const answer = await attempt;
      expect(answer.messages[0], label).toMatchObject({ id: 2, error: { code: -32602 } });
    }
    // The rightful caller still completes it.
    const done = await retry(proxy.url, 'ask-name', state, { ...answers }, { headers: alice });
    expect(done.messages.at(-1)).toMatchObject({ id: 2, result: { resultType: 'complete', content: [{ text: 'Hello, Mallory!' }] } });
    // Malformed inputResponses: -32602 too.
    const malformed = await retry(proxy.url, 'ask-name', undefined, { key: 12345 });
    expect(malformed.messages[0]).toMatchObject({ error: { code: -32602 } });
  });

  it('never logs a requestState', async () => {
    const first = await firstRound(proxy.url, 'ask-name');
    const state = (first.messages.at(-1)!.result as { requestState: string }).requestState;
    await retry(proxy.url, 'ask-name', state, { nope: { action: 'decline' } });
    expect(proxy.output()).not.toContain(state.slice(-40));
  });
});

describe('a client that never answers', () => {
  it('gets its parked upstream exchange ended: an error answer and a cancellation upstream, nothing left open', async () => {
    const upstream = await startFixture('sdk', { mrtr: true });
    const proxy = await startProxy(upstream.mcpUrl, { MRTR_PARK_TIMEOUT_MS: '300' });
    const first = await firstRound(proxy.url, 'ask-name');
    expect(first.messages.at(-1)).toMatchObject({ result: { resultType: 'input_required' } });
    const stats = await statsUntil(upstream, (s) => s.answerErrors === 1 && s.openRequests === 0 && s.cancelled.length === 1);
    expect(stats.answerErrors).toBe(1);
    expect(stats.cancelled.length).toBe(1);
    expect(stats.openRequests).toBe(0);
    expect(stats.toolRuns['ask-name']).toBe(1);

    // Its retry after that still works: the request runs again, answered from inputResponses.
    const state = (first.messages.at(-1)!.result as { requestState: string; inputRequests: object }).requestState;
    const key = Object.keys((first.messages.at(-1)!.result as { inputRequests: object }).inputRequests)[0]!;
    const done = await retry(proxy.url, 'ask-name', state, { [key]: { action: 'accept', content: { name: 'Late' } } });
    expect(done.messages.at(-1)).toMatchObject({ result: { resultType: 'complete', content: [{ text: 'Hello, Late!' }] } });
    expect((await upstream.stats()).toolRuns['ask-name']).toBe(2);
    const metrics = await (await fetch(`${proxy.origin}/metrics`)).text();
    expect(metrics).toMatch(/^mcp_session_proxy_input_required_total\{event="input_required"\} 1$/m);
    expect(metrics).toMatch(/^mcp_session_proxy_input_required_total\{event="ended_timeout"\} 1$/m);
    expect(metrics).toMatch(/^mcp_session_proxy_input_required_total\{event="rerun"\} 1$/m);
    expect(metrics).toMatch(/^mcp_session_proxy_parked_exchanges 0$/m);
  });

  it('with no room to park (--mrtr-max-parked 0), the retry re-runs the request', async () => {
    const upstream = await startFixture('sdk', { mrtr: true });
    const proxy = await startProxy(upstream.mcpUrl, { MRTR_MAX_PARKED: '0' });
    const c = await connectAsking(proxy.url, 'never-parked');
    expect(await callText(c, 'ask-twice')).toBe('Alice likes blue');
    const stats = await statsUntil(upstream, (s) => s.openRequests === 0);
    // Three runs: up to question 1, up to question 2 (1 answered from inputResponses), to the end.
    expect(stats.toolRuns['ask-twice']).toBe(3);
    expect(stats.openRequests).toBe(0);
    await c.close();
  });
});

describe('under concurrent load', () => {
  it('continues every parked exchange on the shared pooled session: 30 asking calls at once, each tool run once', async () => {
    const upstream = await startFixture('sdk', { mrtr: true });
    const proxy = await startProxy(upstream.mcpUrl);
    const clients = await Promise.all([1, 2, 3].map((n) => connectAsking(proxy.url, `concurrent-${n}`)));
    // Ten calls per client at once, each asking twice in a row (two rounds): 60 questions in flight
    // on upstream sessions the callers share (one key: no credentials).
    const results = await Promise.all(clients.flatMap((c) => Array.from({ length: 10 }, () => callText(c, 'ask-twice'))));
    expect(results).toEqual(Array.from({ length: 30 }, () => 'Alice likes blue'));
    const stats = await statsUntil(upstream, (s) => s.openRequests === 0);
    expect(stats.toolRuns['ask-twice']).toBe(30);
    expect(stats.openRequests).toBe(0);
    const metrics = await (await fetch(`${proxy.origin}/metrics`)).text();
    expect(metrics).toMatch(/^mcp_session_proxy_input_required_total\{event="continued"\} 60$/m);
    expect(metrics).toMatch(/^mcp_session_proxy_parked_exchanges 0$/m);
    for (const c of clients) await c.close();
  });
});

describe('an upstream restart while the exchange is parked', () => {
  it('ends the parked exchange, and the retry re-runs the request on the restarted upstream, answered from inputResponses', async () => {
    let upstream = await startFixture('sdk', { mrtr: true });
    const proxy = await startProxy(upstream.mcpUrl);
    const metric = async (series: string) => {
      const line = (await (await fetch(`${proxy.origin}/metrics`)).text()).split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? 0 : Number(line.slice(series.length + 1));
    };
    const first = await firstRound(proxy.url, 'ask-name');
    const asking = first.messages.at(-1)!.result as { resultType: string; requestState: string; inputRequests: object };
    expect(asking.resultType).toBe('input_required');
    const key = Object.keys(asking.inputRequests)[0]!;
    expect(await metric('mcp_session_proxy_parked_exchanges')).toBe(1);

    // The upstream crashes under the parked exchange (its SSE answer breaks off): it is ended. (A
    // graceful stop would wait for that answer, which waits for the client: a legacy tool that
    // asks holds its server's shutdown, through the proxy or not, until --mrtr-park-timeout-ms.)
    await upstream.kill();
    await expect.poll(() => metric('mcp_session_proxy_input_required_total{event="ended_upstream_closed"}')).toBe(1);
    expect(await metric('mcp_session_proxy_parked_exchanges')).toBe(0);
    upstream = await startFixture('sdk', { mrtr: true, port: upstream.port });

    // The client's retry comes afterwards: nothing to continue, so the request runs again on a
    // new upstream session (the old one was lost with the restart), and the question it asks
    // again is answered from the retry's inputResponses: the client is not asked twice.
    const done = await retry(proxy.url, 'ask-name', asking.requestState, { [key]: { action: 'accept', content: { name: 'Again' } } });
    expect(done.messages.at(-1)).toMatchObject({ result: { resultType: 'complete', content: [{ text: 'Hello, Again!' }] } });
    const stats = await statsUntil(upstream, (s) => s.openRequests === 0);
    expect(stats.toolRuns['ask-name']).toBe(1);
    expect(stats.openRequests).toBe(0);
    expect(await metric('mcp_session_proxy_input_required_total{event="rerun"}')).toBe(1);
    expect(proxy.child.exitCode).toBeNull();
  });
});

describe('two replicas behind round robin', () => {
  let upstream: Fixture;
  let balancer: Balancer;
  beforeAll(async () => {
    upstream = await startFixture('sdk', { mrtr: true });
    const secret = { SESSION_SECRET: randomBytes(32).toString('base64') };
    const replicas = await Promise.all([startProxy(upstream.mcpUrl, secret), startProxy(upstream.mcpUrl, secret)]);
    balancer = await startBalancer(replicas.map((r) => r.port));
  });
  afterAll(() => balancer.close());

  it('works when every retry lands on the other replica: it re-runs the request up to the next question', async () => {
    const c = await connectAsking(balancer.url, 'replicated');
    expect(await callText(c, 'ask-name')).toBe('Hello, Alice!');
    expect(await callText(c, 'ask-twice')).toBe('Alice likes blue');
    expect(await callText(c, 'ask-all')).toBe('Alice | Hi there | file:///work');
    // Each question was put to the client once, however often the tool ran.
    expect(c.asked.filter((m) => m === 'elicitation/create')).toHaveLength(4);
    const stats = await upstream.stats();
    expect(stats.toolRuns['ask-name']).toBe(2);
    expect(stats.toolRuns['ask-twice']).toBe(3);
    expect(stats.toolRuns['ask-all']).toBe(2);
    await c.close();
  });

  it('without a shared secret a retry on the other replica gets -32602 (docs/flows/pooled.md: replicas need the secret)', async () => {
    const lone = await Promise.all([startProxy(upstream.mcpUrl), startProxy(upstream.mcpUrl)]);
    const split = await startBalancer(lone.map((r) => r.port));
    const c = await connectAsking(split.url, 'no-secret');
    await expect(c.client.callTool({ name: 'ask-name', arguments: {} })).rejects.toMatchObject({ code: -32602 });
    await c.close();
    await split.close();
  });
});
