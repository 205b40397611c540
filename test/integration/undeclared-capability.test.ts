/**
 * A legacy upstream that asks a 2026-07-28 client for a capability the client did not declare
 * (issue 20 item 2). A 2026-07-28 server MUST answer such a request -32021 with
 * `data.requiredCapabilities` (HTTP 400; an SSE error event once its answer is streaming), and
 * the proxy answers as one: the client gets -32021, and upstream the request is cancelled BEFORE
 * the question is refused, so that the tool, seeing its question fail, finds itself cancelled and
 * stops instead of carrying on without the answer (the fixture's ask-undeclared counts which).
 *
 * Driven by the official v2 client pinned to 2026-07-28 (its fetch only watched, for the status
 * and media type of each answer), against the v1-SDK fixture (test/fixtures/legacy-upstream.ts
 * --undeclared), for sampling, elicitation and roots, before and after the answer has started
 * streaming, the question asked on the call's own stream and on the session's standing GET stream
 * (no relatedRequestId: the call, the only one in flight, holds that stream open and takes the
 * question, flows/pooled/mrtr/standing.ts). Then the conformance suite's server-stateless scenario
 * through the proxy in front of test_missing_capability asking as the suite's reference server's
 * legacy tools ask (on the standing stream, --ask-on-standing-stream); asking on the call's stream,
 * conformance-2026.test.ts runs it.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runScenario } from '../helpers/conformance.js';
import { MODERN } from '../helpers/modern-client.js';
import { killAll, startFixture, startProxy, statsUntil, type Fixture, type Proxy } from '../helpers/processes.js';

afterAll(killAll);

const CAPABILITIES = ['sampling', 'elicitation', 'roots'] as const;
type Capability = (typeof CAPABILITIES)[number];

/** What the client saw of its tools/call answer on the wire. */
interface Seen {
  status: number;
  contentType: string | null;
}

/** A pinned v2 client declaring every capability but `missing`; `seen` records its tools/call answers. */
async function connectWithout(url: string, missing: Capability) {
  const capabilities = Object.fromEntries(CAPABILITIES.filter((c) => c !== missing).map((c) => [c, {}]));
  const client = new Client(
    { name: `without-${missing}`, version: '2.4.0' },
    { capabilities, versionNegotiation: { mode: { pin: MODERN } } },
  );
  const seen: Seen[] = [];
  const watched: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    if (new Headers(init?.headers).get('mcp-method') === 'tools/call') {
      seen.push({ status: res.status, contentType: res.headers.get('content-type') });
    }
    return res;
  };
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch: watched }));
  return { client, seen };
}

/** The fixture's count of ask-undeclared runs whose question failed, once one more has. */
async function oneMoreFailure(upstream: Fixture, before: { cancelled: number; running: number }) {
  const stats = await statsUntil(
    upstream,
    (s) => s.questionFailures.cancelled + s.questionFailures.running > before.cancelled + before.running,
  );
  return stats.questionFailures;
}

describe.each([
  ["on the call's own stream", false],
  ["on the session's standing GET stream (no relatedRequestId)", true],
])('a question %s for a capability the client did not declare', (_where, standing) => {
  let upstream: Fixture;
  let proxy: Proxy;
  beforeAll(async () => {
    upstream = await startFixture('sdk', { undeclared: true });
    proxy = await startProxy(upstream.mcpUrl);
  });

  for (const capability of CAPABILITIES) {
    it(`${capability}, before anything streamed: 400 -32021 naming it; upstream, the call is cancelled before the question is refused`, async () => {
      const before = (await upstream.stats()).questionFailures;
      const cancelledBefore = (await upstream.stats()).cancelled.length;
      const { client, seen } = await connectWithout(proxy.url, capability);
      await expect(client.callTool({ name: 'ask-undeclared', arguments: { capability, standing } })).rejects.toMatchObject({
        code: -32021,
        data: { requiredCapabilities: { [capability]: {} } },
      });
      expect(seen).toEqual([{ status: 400, contentType: 'application/json' }]);
      // The tool met its question's failure already cancelled: it stopped.
      expect(await oneMoreFailure(upstream, before)).toEqual({ cancelled: before.cancelled + 1, running: before.running });
      expect((await upstream.stats()).cancelled.length).toBe(cancelledBefore + 1);
      await client.close();
    });

    it(`${capability}, after a progress notification streamed: -32021 as the stream's error event; cancelled first upstream too`, async () => {
      const before = (await upstream.stats()).questionFailures;
      const { client, seen } = await connectWithout(proxy.url, capability);
      const progress: number[] = [];
      await expect(
        client.callTool(
          { name: 'ask-undeclared', arguments: { capability, progressFirst: true, standing } },
          {
            onprogress: (p: { progress: number }) => {
              progress.push(p.progress);
              // The tool asks once the progress has reached the client.
              void upstream.release();
            },
          },
        ),
      ).rejects.toMatchObject({ code: -32021, data: { requiredCapabilities: { [capability]: {} } } });
      expect(progress).toEqual([1]);
      expect(seen).toEqual([{ status: 200, contentType: 'text/event-stream' }]);
      expect(await oneMoreFailure(upstream, before)).toEqual({ cancelled: before.cancelled + 1, running: before.running });
      await client.close();
    });
  }

  it('still asks a client that declared the capability (input_required, answered, the tool completes)', async () => {
    const client = new Client(
      { name: 'with-roots', version: '2.4.0' },
      { capabilities: { roots: {} }, versionNegotiation: { mode: { pin: MODERN } } },
    );
    client.setRequestHandler('roots/list', async () => ({ roots: [{ uri: 'file:///work', name: 'work' }] }));
    await client.connect(new StreamableHTTPClientTransport(new URL(proxy.url)));
    const result = await client.callTool({ name: 'ask-undeclared', arguments: { capability: 'roots', standing } });
    expect((result.content as Array<{ text?: string }>)[0]?.text).toBe('answered roots');
    await client.close();
  });
});

/** The two -32021 checks of server-stateless (the rest of the scenario must pass too). */
const CAPABILITY_CHECKS = ['sep-2575-server-rejects-undeclared-capability', 'sep-2575-missing-capability-http-400'];

describe('conformance server-stateless through the proxy, test_missing_capability asking on the standing GET stream', () => {
  let proxy: Proxy;
  let outDir: string;
  beforeAll(async () => {
    const upstream = await startFixture('sdk', { conformance: true, askOnStandingStream: true });
    proxy = await startProxy(upstream.mcpUrl);
    outDir = mkdtempSync(join(tmpdir(), 'undeclared-conformance-'));
  });
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));

  it('passes, its -32021 checks included', async () => {
    const { output, checks } = await runScenario(proxy.url, outDir, 'server-stateless');
    const run = checks.get('server-stateless');
    expect(run, output).toBeDefined();
    const failed = run!.filter((c) => c.status === 'FAILURE');
    expect(failed, JSON.stringify(failed, null, 2)).toEqual([]);
    for (const id of CAPABILITY_CHECKS) expect(run!.find((c) => c.id === id)?.status, id).toBe('SUCCESS');
  }, 60_000);
});
