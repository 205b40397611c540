/**
 * An in-memory legacy MCP server behind the UpstreamClient interface, for unit tests of the
 * upstream link: no sockets, no timers, every interleaving driven by the test. It issues session
 * ids at initialize, forgets them on demand (a restart), refuses messages on unknown sessions the
 * way the TypeScript SDK does (404 "Session not found"), and can hold any answer until the test
 * lets it go (the request is processed on arrival; only its answer waits). Integration tests use real processes instead.
 */
import { PassThrough, Readable } from 'node:stream';
import pino from 'pino';
import { DEFAULT_LOSS_RULES } from '../../src/mcp/loss.js';
import type { Metrics } from '../../src/observability/metrics.js';
import type { Fingerprint, LogId } from '../../src/session/ids.js';
import type { UpstreamClient, UpstreamRequest, UpstreamResponse } from '../../src/upstream/client.js';
import type { ReplayReason } from '../../src/mcp/loss.js';
import type { LinkDeps } from '../../src/upstream/link.js';

/** One request as the fake upstream received it. */
export interface Seen {
  readonly httpMethod: UpstreamRequest['method'];
  /** The JSON-RPC method of a POST, if it had one. */
  readonly rpcMethod: string | undefined;
  readonly rpcId: unknown;
  readonly sessionId: string | undefined;
  readonly lastEventId: string | undefined;
  readonly authorization: string | undefined;
}

type Reply = { status: number; headers?: Record<string, string>; body?: string; stream?: Readable };

/** A GET stream the fake upstream opened: the test writes its events and ends it. */
export interface FakeStream {
  readonly sessionId: string;
  readonly body: PassThrough;
  /** Send one JSON-RPC message as an SSE event. */
  send(message: object): void;
}

/** A point where the test holds matching requests until it releases them. */
export interface Gate {
  /** Resolves once `count` requests are held here. */
  reached(count?: number): Promise<void>;
  release(): void;
}

export class FakeUpstream implements UpstreamClient {
  readonly seen: Seen[] = [];
  private readonly sessions = new Set<string>();
  private readonly initializedSessions = new Set<string>();
  private nextId = 0;
  /** Refuse messages on sessions that have not had notifications/initialized (strict servers). */
  strict = false;
  /** Answer initialize with this status instead of a session (undefined: accept). */
  refuseInitialize: number | undefined;
  /** A new session id on every successful answer (rotating servers). */
  rotate = false;
  /** The server capabilities its InitializeResult declares. */
  capabilities: Record<string, unknown> = {};
  /** Answer GET with an event stream (false: 405, as a server without GET streams does). */
  getStreams = true;
  /** Answer GET on a live session with this status and a JSON-RPC error (undefined: a stream). */
  getRefusal: number | undefined;
  /** Every GET stream opened, oldest first. */
  readonly streams: FakeStream[] = [];
  private gates: { match: (seen: Seen) => boolean; held: (() => void)[]; waiters: (() => void)[]; count: number; open: boolean }[] = [];

  /** Forget every session, as a restarted server does. */
  forgetAll(): void {
    this.sessions.clear();
    this.initializedSessions.clear();
  }

  count(rpcMethod: string): number {
    return this.seen.filter((s) => s.rpcMethod === rpcMethod).length;
  }

  deletes(): Seen[] {
    return this.seen.filter((s) => s.httpMethod === 'DELETE');
  }

  /** Hold the answer of every request matching `match` until `release`. */
  gate(match: (seen: Seen) => boolean): Gate {
    const gate = { match, held: [] as (() => void)[], waiters: [] as (() => void)[], count: 0, open: false };
    this.gates.push(gate);
    return {
      reached: (count = 1) =>
        new Promise<void>((resolve) => {
          const check = () => (gate.count >= count ? resolve() : gate.waiters.push(check));
          check();
        }),
      release: () => {
        gate.open = true;
        for (const go of gate.held.splice(0)) go();
      },
    };
  }

  async request(request: UpstreamRequest): Promise<UpstreamResponse> {
    const body = request.body === undefined ? undefined : (JSON.parse(request.body.toString()) as { id?: unknown; method?: string });
    const header = (name: string) => {
      const value = request.headers[name];
      return Array.isArray(value) ? value.join(',') : value;
    };
    const seen: Seen = {
      httpMethod: request.method,
      rpcMethod: body?.method,
      rpcId: body?.id,
      sessionId: header('mcp-session-id'),
      lastEventId: header('last-event-id'),
      authorization: header('authorization'),
    };
    this.seen.push(seen);
    // Processed on arrival, as a real server does; a gate only delays the answer.
    const reply = this.answer(request, seen, body);
    for (const gate of this.gates) {
      if (gate.open || !gate.match(seen)) continue;
      gate.count++;
      for (const wake of gate.waiters.splice(0)) wake();
      await new Promise<void>((resolve) => gate.held.push(resolve));
    }
    return respond(reply);
  }

  private answer(request: UpstreamRequest, seen: Seen, body: { id?: unknown; method?: string } | undefined): Reply {
    const sid = seen.sessionId;
    if (request.method === 'DELETE') {
      if (sid === undefined || !this.sessions.delete(sid)) return notFound();
      return { status: 200 };
    }
    if (body?.method === 'initialize') {
      if (this.refuseInitialize !== undefined)
        return { status: this.refuseInitialize, body: '{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"no"}}' };
      const id = this.issue();
      const result = { protocolVersion: '2025-06-18', capabilities: this.capabilities, serverInfo: { name: 'fake', version: '1' } };
      return { status: 200, headers: { 'mcp-session-id': id }, body: JSON.stringify({ jsonrpc: '2.0', id: body.id, result }) };
    }
    if (sid === undefined || !this.sessions.has(sid)) return notFound();
    if (request.method === 'GET') {
      if (!this.getStreams) return { status: 405 };
      if (this.getRefusal !== undefined)
        return {
          status: this.getRefusal,
          headers: { 'www-authenticate': 'Bearer' },
          body: '{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"refused"}}',
        };
      const stream = new PassThrough();
      this.streams.push({
        sessionId: sid,
        body: stream,
        send: (message) => void stream.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`),
      });
      return { status: 200, headers: { 'content-type': 'text/event-stream' }, stream };
    }
    if (body?.method === 'notifications/initialized') {
      this.initializedSessions.add(sid);
      return { status: 202 };
    }
    if (this.strict && !this.initializedSessions.has(sid)) {
      return { status: 400, body: '{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Bad Request: Server not initialized"}}' };
    }
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.rotate) {
      const next = this.issue();
      if (this.initializedSessions.has(sid)) this.initializedSessions.add(next);
      headers['mcp-session-id'] = next;
    }
    return { status: 200, headers, body: JSON.stringify({ jsonrpc: '2.0', id: body?.id ?? null, result: { ok: true } }) };
  }

  private issue(): string {
    const id = `upstream-${++this.nextId}`;
    this.sessions.add(id);
    return id;
  }

  async close(): Promise<void> {}
  async probe(): Promise<boolean> {
    return true;
  }
}

function notFound(): Reply {
  return { status: 404, body: '{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}' };
}

function respond(reply: Reply): UpstreamResponse {
  return {
    statusCode: reply.status,
    headers: { 'content-type': 'application/json', ...reply.headers },
    body: reply.stream ?? Readable.from(reply.body === undefined ? [] : [Buffer.from(reply.body)]),
  };
}

/** Metrics that only count replays, so tests can assert how many there were. */
export function countingMetrics(): Metrics & { replays: ReplayReason[]; replayFailures: number; pool: string[] } {
  const counts = { replays: [] as ReplayReason[], replayFailures: 0, pool: [] as string[] };
  const none = () => undefined;
  return Object.assign(counts, {
    registry: undefined,
    sessionCreated: none,
    sessionEnded: none,
    sessionReopened: none,
    sealedIdRejected: none,
    replay: (reason: ReplayReason) => void counts.replays.push(reason),
    replayFailed: () => void counts.replayFailures++,
    reauthentication: none,
    upstreamError: none,
    request: none,
    streamOpened: none,
    streamClosed: none,
    poolHit: () => void counts.pool.push('hit'),
    poolMiss: () => void counts.pool.push('miss'),
    poolEnded: (reason: string) => void counts.pool.push(reason),
    inputRequired: none,
    unattributedQuestion: none,
  });
}

/** Link dependencies around a fake upstream, with a silent logger and a hand-driven clock. */
export function fakeLinkDeps(upstream: UpstreamClient = new FakeUpstream()) {
  const metrics = countingMetrics();
  const fingerprint: Fingerprint = () => 'fp:000000000000' as LogId;
  const deps: LinkDeps = {
    upstream,
    log: pino({ level: 'silent' }),
    metrics,
    fingerprint,
    loss: DEFAULT_LOSS_RULES,
    timeoutMs: 60_000,
    now: () => 0,
  };
  return { deps, metrics };
}
