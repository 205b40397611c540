/**
 * MRTR over a legacy upstream: a 2026-07-28 `tools/call`, `prompts/get` or `resources/read` whose
 * legacy upstream asks the client something (elicitation/create, sampling/createMessage,
 * roots/list: server→client requests on the answer's SSE stream) is answered `input_required`,
 * and the client's retry (same request, new id, `inputResponses` + `requestState`) continues it.
 *
 *   first round   the upstream's SSE answer is relayed message by message; at a question the
 *                 client can take, the proxy stops reading, collects the questions the upstream
 *                 sent together with it (see COLLECTING), parks the exchange (flows/pooled/mrtr/parked.ts)
 *                 and answers `input_required` with a sealed requestState naming the parked
 *                 exchange and carrying the questions asked and answers given so far.
 *   retry, here   the parked exchange is claimed: each answer goes to the upstream as the JSON-RPC
 *                 response to its server request, on the same upstream session, and the rest of the
 *                 original answer is relayed to the retry (it may ask again: another round). The
 *                 tool runs once.
 *   retry, not    (another replica, the exchange expired or was never parked) the request runs
 *   parked here   again on a pooled session, and each question the upstream asks is answered from
 *                 the client's answers (this round's inputResponses, earlier ones from the state),
 *                 matched by key, i.e. by method and params; anything new is `input_required` again.
 *
 * A question needing a capability the client did not declare fails the client's request with
 * -32021, as a 2026-07-28 server does; the upstream request is cancelled, then the question refused.
 *
 * A question the upstream sent on its session's standing stream and the feed attributed to this
 * request (mrtr/standing.ts) is taken exactly as one on the answer's own stream.
 *
 * COLLECTING: "two at once" arrive as two SSE events, written by the upstream in one go. The proxy
 * takes what the same read of the socket delivered, then what one more turn of the event loop
 * brings (data already received); no timer guesses how long a server might think.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { missingCapabilityError, ProxyError, type JsonRpcId } from '../../../errors.js';
import { createSseReader, type SseReader } from '../../../http/sse-reader.js';
import { ENVELOPE } from '../../../mcp/era.js';
import {
  answerFor,
  inputRequiredResult,
  isInputRequestMethod,
  nextKnowledge,
  questionOf,
  readRetryParams,
  type RetryParams,
  requestDigestOf,
  type Knowledge,
  type Question,
  undeclaredCapability,
} from '../../../mcp/input-required.js';
import { isJsonRpcMessage, parseJson } from '../../../mcp/protocol.js';
import { toModernMessage, type AnswerContext } from '../../../mcp/translate.js';
import type { InputRequiredEvent, Metrics } from '../../../observability/metrics.js';
import type { CredentialBinding } from '../../../session/binding.js';
import type { RequestStateCodec } from '../../../session/request-state.js';
import type { UpstreamHeaders } from '../../../upstream/client.js';
import type { UpstreamLink } from '../../../upstream/link.js';
import type { ParkEndReason, ParkedExchanges } from './parked.js';
import type { StandingCall } from './standing.js';
import { AnswerWriter } from '../../../http/answer-writer.js';
import { answerError, sseEvent, SSE_KEEPALIVE } from '../../../http/reply.js';
import type { Tracked } from '../../../http/tracking.js';

type Obj = Record<string, unknown>;

export interface MrtrDeps {
  readonly codec: RequestStateCodec;
  readonly parked: ParkedExchanges<Exchange>;
  readonly binding: CredentialBinding;
  readonly log: Logger;
  readonly metrics: Metrics;
}

/** One client request of a round. */
export interface RoundCall {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly tracked: Tracked;
}

/** What the answer translation needs from the round's own request (the upstream ids are the exchange's). */
export type RoundContext = Omit<AnswerContext, 'upstreamId' | 'upstreamProgressToken'>;

/** Where a round starts: a parked exchange to continue, or a (re-)run of the request. */
export type Begun =
  | { readonly kind: 'resume'; readonly exchange: Exchange; readonly knowledge: Knowledge }
  | {
      readonly kind: 'run';
      /** The params for the upstream (without inputResponses and requestState). */
      readonly params: Obj;
      readonly knowledge: Knowledge;
      /** What a requestState is bound to; computed when a state is first needed (most calls ask nothing). */
      readonly binding: () => StateBinding;
    };

/** The request digest and credential digest (base64url) a requestState carries. */
interface StateBinding {
  readonly request: string;
  readonly credential: string | undefined;
}

export interface Mrtr {
  /** Read and check a request's MRTR params (and its requestState): throws the 2026 errors. */
  begin(call: RoundCall, method: string, params: Obj): Begun;
  /** Continue a claimed parked exchange for this retry. */
  resume(call: RoundCall, begun: Extract<Begun, { kind: 'resume' }>, ctx: RoundContext, headers: UpstreamHeaders): void;
  /**
   * Relay an upstream SSE answer to a (re-)run, parking it at a question. `standing`: the call's
   * place on the session's standing stream, which then feeds its questions there to this exchange
   * and is released when the answer is over.
   */
  relay(
    call: RoundCall,
    begun: Extract<Begun, { kind: 'run' }>,
    ctx: AnswerContext,
    link: UpstreamLink,
    headers: UpstreamHeaders,
    payload: Readable,
    standing?: StandingCall,
  ): void;
}

export function createMrtr(deps: MrtrDeps): Mrtr {
  const { codec, parked, binding } = deps;
  /** A retry: its requestState opened and checked, then its parked exchange claimed, or a re-run. */
  function retry(call: RoundCall, requestState: string, read: Extract<RetryParams, { kind: 'ok' }>, bindingOf: () => StateBinding): Begun {
    const opened = codec.open(requestState);
    const state = opened.ok ? opened.state : undefined;
    const credential = state?.credential === undefined ? undefined : Buffer.from(state.credential, 'base64url');
    if (state === undefined || state.request !== bindingOf().request || !binding.matches(credential, call.req.headers)) {
      deps.log.debug({ reason: opened.ok ? 'binding' : opened.reason }, 'requestState refused');
      deps.metrics.inputRequired('refused');
      throw new ProxyError('MRTR_INVALID_STATE');
    }
    const knowledge: Knowledge = { asked: state.asked, answers: state.answers, responses: read.responses };
    if (state.parked !== undefined) {
      const exchange = parked.claim(state.parked.handle, state.parked.round);
      if (exchange !== undefined) {
        deps.metrics.inputRequired('continued');
        return { kind: 'resume', exchange, knowledge };
      }
    }
    deps.metrics.inputRequired('rerun');
    return { kind: 'run', params: read.params, knowledge, binding: bindingOf };
  }

  return {
    begin(call, method, params) {
      const read = readRetryParams(params);
      if (read.kind === 'invalid') {
        throw new ProxyError('MRTR_INVALID_PARAMS', { detail: { message: `Invalid params: ${read.field} is malformed` } });
      }
      let bound: StateBinding | undefined;
      const bindingOf = () =>
        (bound ??= { request: requestDigestOf(method, read.params), credential: binding.of(call.req.headers)?.toString('base64url') });
      if (read.requestState === undefined) {
        return { kind: 'run', params: read.params, knowledge: { asked: {}, answers: {}, responses: read.responses }, binding: bindingOf };
      }
      return retry(call, read.requestState, read, bindingOf);
    },
    resume(call, begun, ctx, headers) {
      begun.exchange.resume(new Sink(call, begun.exchange.contextFor(ctx), deps), begun.knowledge, headers);
    },
    relay(call, begun, ctx, link, headers, payload, standing) {
      const exchange = new Exchange(deps, link, headers, payload, ctx, begun);
      exchange.start(new Sink(call, ctx, deps));
      if (standing === undefined) return;
      // The answer is over (answered, ended, cut): no question can be this call's any more.
      if (payload.destroyed) standing.release();
      else payload.once('close', () => standing.release());
      standing.attach((id, method, params) => exchange.heardOnStandingStream(id, method, params));
    },
  };
}

/** The client side of one round: its response, written as SSE once there is something to stream. */
class Sink {
  answered = false;
  private out = '';
  private readonly writer: AnswerWriter;
  constructor(
    readonly call: RoundCall,
    readonly ctx: AnswerContext,
    private readonly deps: MrtrDeps,
  ) {
    this.writer = new AnswerWriter(call.res, deps.metrics);
  }

  get res(): ServerResponse {
    return this.call.res;
  }

  /** A message before the answer (progress, log): buffered until the chunk is done. */
  event(message: Obj): void {
    this.out += sseEvent(JSON.stringify(message));
  }

  keepalive(): void {
    if (this.writer.started || this.out.length > 0) this.out += SSE_KEEPALIVE;
  }

  /** Write what the chunk produced; false when the client is not keeping up. */
  flush(): boolean {
    if (this.out.length === 0 || this.answered) return true;
    const text = this.out;
    this.out = '';
    return this.writer.write(text);
  }

  /** The answer (its JSON text): JSON when nothing was streamed yet, else the stream's last event. */
  finish(text: string): void {
    if (this.answered) return;
    this.answered = true;
    const pending = this.out;
    this.out = '';
    this.writer.end(text, pending);
  }

  fail(error: ProxyError): void {
    if (this.answered) return;
    this.answered = true;
    const pending = this.out;
    this.out = '';
    const { req, res, tracked } = this.call;
    this.writer.fail(error, this.ctx.clientId, () => answerError(req, res, tracked, error, this.deps.log), pending);
  }
}

/** A question sent upstream as a server request, waiting for the client's answer. */
interface Pending {
  readonly question: Question;
  /** The server request's JSON-RPC id on the upstream session. */
  readonly id: JsonRpcId;
}

/**
 * One upstream SSE answer of an MRTR-capable request, across the rounds of its client.
 *
 *   relaying ─ question(s) ─▶ collecting ─▶ parked ─ claimed by a retry ─▶ relaying …
 *       └──────────── the answer (or an error) ─▶ done ◀─ ended (timeout, full, client gone, upstream closed)
 */
export class Exchange {
  private state: 'relaying' | 'collecting' | 'parked' | 'done' = 'relaying';
  private sink: Sink | undefined;
  private readonly pending = new Map<string, Pending>();
  private readonly taken = new Set<string>();
  /** Questions from the standing stream that came while parked: the retry takes them up. */
  private heardWhileParked: Array<readonly [JsonRpcId, string, unknown]> = [];
  private knowledge: Knowledge;
  private handle: string | undefined;
  private round = 0;
  private readonly reader: SseReader;
  private readonly upstreamId: string;
  private readonly upstreamProgressToken: string | undefined;
  private readonly binding: () => StateBinding;

  constructor(
    private readonly deps: MrtrDeps,
    private readonly link: UpstreamLink,
    private headers: UpstreamHeaders,
    private readonly payload: Readable,
    ctx: AnswerContext,
    begun: Extract<Begun, { kind: 'run' }>,
  ) {
    this.upstreamId = ctx.upstreamId;
    this.upstreamProgressToken = ctx.upstreamProgressToken;
    this.binding = begun.binding;
    this.knowledge = begun.knowledge;
    this.reader = createSseReader({
      event: (data) => {
        const message = parseJson(data);
        if (message !== undefined) this.onMessage(message, data);
      },
      comment: () => this.sink?.keepalive(),
    });
  }

  contextFor(round: RoundContext): AnswerContext {
    return { ...round, upstreamId: this.upstreamId, upstreamProgressToken: this.upstreamProgressToken };
  }

  start(sink: Sink): void {
    this.attach(sink);
    const { payload } = this;
    payload.on('data', (chunk: Buffer) => this.onChunk(chunk));
    payload.once('end', () => this.upstreamEnded(false));
    payload.once('error', () => this.upstreamEnded(true));
    // Broken already (it will say nothing more).
    if (payload.destroyed) this.upstreamEnded(true);
  }

  /** parked (claimed by the retry) → relaying, after the answers went upstream; or parked again. */
  resume(sink: Sink, knowledge: Knowledge, headers: UpstreamHeaders): void {
    this.headers = headers;
    this.knowledge = knowledge;
    this.attach(sink);
    for (const [key, pending] of this.pending) {
      const answer = answerFor(pending.question, knowledge);
      if (answer === undefined) continue;
      this.pending.delete(key);
      this.toUpstream({ jsonrpc: '2.0', id: pending.id, result: answer });
    }
    const heard = this.heardWhileParked;
    this.heardWhileParked = [];
    for (const [id, method, params] of heard) this.onServerRequest(id, method, params, sink);
    if (this.state === 'done') return;
    // Not every question answered: the client is asked again for the rest.
    if (this.pending.size > 0) return this.park();
    this.state = 'relaying';
    this.payload.resume();
  }

  /**
   * Parkable: the registry ends it (deadline, shutdown, upstream closed). The upstream request is
   * cancelled first and its open questions (and `refused`, one not taken) answered with errors
   * only once the cancellation is delivered: a tool that sees its question fail is cancelled
   * already, and stops rather than carrying on without the answer.
   */
  end(reason: ExchangeEndReason, refused?: Obj): void {
    if (this.state === 'done') return;
    this.state = 'done';
    const message = reason === 'timeout' ? 'the client did not answer in time' : `the request ended (${reason})`;
    const answers = refused === undefined ? [] : [refused];
    // Questions asked (on the answer or the standing stream) or heard on the standing stream while
    // parked: each waits upstream for an answer, so each gets this one.
    const noAnswer = (id: JsonRpcId) =>
      answers.push({ jsonrpc: '2.0', id, error: { code: UPSTREAM_ANSWER_ERROR, message: `No answer: ${message} (mcp-session-proxy)` } });
    for (const { id } of this.pending.values()) noAnswer(id);
    for (const [id] of this.heardWhileParked) noAnswer(id);
    this.pending.clear();
    this.heardWhileParked = [];
    const cancelled = this.link.notify(
      JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: this.upstreamId, reason: message } }),
      this.headers,
    );
    if (answers.length > 0) void cancelled.then(() => answers.forEach((answer) => this.toUpstream(answer)));
    this.payload.destroy();
    const event = ENDED_EVENTS[reason];
    if (event !== undefined) this.deps.metrics.inputRequired(event);
    this.deps.log.info({ link: this.link.label, reason }, 'upstream exchange of an input_required request ended');
  }

  private attach(sink: Sink): void {
    this.sink = sink;
    sink.res.once('close', () => {
      if (sink.answered || this.sink !== sink) return;
      // The client left before its answer: its request is cancelled upstream (closing the stream
      // is the 2026-07-28 cancellation). (A parked exchange has no sink: its client was answered.)
      this.end('client-closed');
    });
  }

  private onChunk(chunk: Buffer): void {
    if (this.state === 'done') return;
    try {
      this.reader.write(chunk);
    } catch {
      // An event the translation cannot take (JSON nested deeper than the stack, say), or one past
      // the reader's bound: the answer fails as a garbled one would, and the process carries on.
      return this.garbled();
    }
    const sink = this.sink;
    if (sink !== undefined && !sink.flush() && this.state === 'relaying') {
      this.payload.pause();
      sink.res.once('drain', () => {
        if (this.state === 'relaying' && this.sink === sink) this.payload.resume();
      });
    }
    this.collectIfAsked();
  }

  /**
   * A question of this request's that came on the session's standing stream (mrtr/standing.ts):
   * taken as one on the answer's own stream; while parked, kept for the retry.
   */
  heardOnStandingStream(id: JsonRpcId, method: string, params: unknown): void {
    if (this.state === 'done') {
      this.toUpstream({ jsonrpc: '2.0', id, error: { code: UPSTREAM_ANSWER_ERROR, message: 'No answer: the request is complete' } });
      return;
    }
    const sink = this.sink;
    if (sink === undefined) {
      this.heardWhileParked.push([id, method, params]);
      return;
    }
    this.onServerRequest(id, method, params, sink);
    this.collectIfAsked();
  }

  /** relaying → collecting at a question: what else the upstream sent with it is taken, then parked. */
  private collectIfAsked(): void {
    if (this.state === 'relaying' && this.pending.size > 0) {
      this.state = 'collecting';
      this.payload.pause();
      setImmediate(() => this.collected());
    }
  }

  /** Questions sent together are in: take what else is already here, then park. */
  private collected(): void {
    // read() on the paused stream emits 'data' for what it returns, so onChunk takes it.
    while (this.state === 'collecting' && this.payload.read() !== null);
    if (this.state === 'collecting') this.park();
  }

  /** `text`: the JSON `message` was parsed from, so the common answer is spliced, not rebuilt. */
  private onMessage(message: unknown, text: string): void {
    if (!isJsonRpcMessage(message) || this.state === 'done') return;
    const sink = this.sink;
    if (sink === undefined) return;
    const { method } = message;
    if (typeof method === 'string' && 'id' in message) return this.onServerRequest(message.id as JsonRpcId, method, message.params, sink);
    const translated = toModernMessage(message, sink.ctx, text);
    if (translated.kind === 'forward' && 'method' in translated.message) return sink.event(translated.message);
    if (translated.kind !== 'forward' && translated.kind !== 'answer') return;
    // The answer. Questions still open (an upstream that answered without waiting) stay unanswered.
    this.state = 'done';
    for (const { id } of this.pending.values())
      this.toUpstream({ jsonrpc: '2.0', id, error: { code: UPSTREAM_ANSWER_ERROR, message: 'No answer: the request is complete' } });
    this.pending.clear();
    sink.finish(translated.kind === 'answer' ? translated.text : JSON.stringify(translated.message));
  }

  private onServerRequest(id: JsonRpcId, method: string, params: unknown, sink: Sink): void {
    if (!isInputRequestMethod(method)) {
      this.toUpstream({
        jsonrpc: '2.0',
        id,
        error: { code: -32601, message: `${method} is not available to a 2026-07-28 client (mcp-session-proxy)` },
      });
      return;
    }
    const missing = undeclaredCapability(method, sink.ctx.clientCapabilities ?? {});
    if (missing !== undefined) {
      // Never sent to the client: its request fails with -32021; upstream, the request is cancelled
      // and the question refused.
      sink.fail(missingCapabilityError(missing));
      this.end('missing-capability', {
        jsonrpc: '2.0',
        id,
        error: { code: -32601, message: `${method} is not available: the client did not declare ${missing}` },
      });
      return;
    }
    const question = questionOf(method, params, this.taken);
    this.taken.add(question.key);
    const answer = answerFor(question, this.knowledge);
    if (answer !== undefined) return this.toUpstream({ jsonrpc: '2.0', id, result: answer });
    this.pending.set(question.key, { question, id });
  }

  /** collecting → parked (or ended at once when the registry is full): answer input_required. */
  private park(): void {
    const sink = this.sink!;
    // The client is gone already, its 'close' not yet emitted: nobody will retry; end it now
    // rather than hold a parked slot until the deadline.
    if (sink.res.destroyed) return this.end('client-closed');
    this.round++;
    const questions = [...this.pending.values()].map((p) => p.question);
    const handle = this.deps.parked.park(this, this.round, this.handle);
    if (handle === undefined) {
      // No room: this run ends, and the retry runs the request again with the answers.
      this.deps.log.warn({ link: this.link.label }, 'too many parked upstream exchanges; the retry will re-run the request');
      this.end('full');
    } else {
      this.handle = handle;
      this.state = 'parked';
    }
    const next = nextKnowledge(this.knowledge, questions);
    let token: string;
    try {
      token = this.deps.codec.seal({
        ...this.binding(),
        parked: handle === undefined ? undefined : { handle, round: this.round },
        ...next,
      });
    } catch (error) {
      if (handle !== undefined && this.deps.parked.claim(handle, this.round) !== undefined) this.end('client-closed');
      return sink.fail(new ProxyError('INTERNAL_ERROR', { cause: error }));
    }
    this.sink = undefined;
    this.deps.metrics.inputRequired('input_required');
    const result = inputRequiredResult(questions, token, sink.ctx.serverInfo, ENVELOPE.serverInfo);
    sink.finish(JSON.stringify({ jsonrpc: '2.0', id: sink.ctx.clientId, result }));
  }

  private upstreamEnded(failed: boolean): void {
    if (this.state === 'relaying' || this.state === 'collecting') {
      // What the stream still holds: its last event, even without its blank line.
      try {
        this.reader.end();
      } catch {
        return this.garbled();
      }
      this.sink?.flush();
    }
    if (this.state === 'done') return;
    if (this.state === 'parked' && this.handle !== undefined) {
      this.deps.parked.closed(this.handle);
      return;
    }
    this.state = 'done';
    const sink = this.sink;
    if (sink === undefined) return;
    sink.fail(new ProxyError(failed ? 'UPSTREAM_CUT' : 'UPSTREAM_BAD_ANSWER'));
  }

  /** The upstream's answer could not be translated: it is dropped, and the exchange fails. */
  private garbled(): void {
    this.payload.removeAllListeners('data');
    this.payload.destroy();
    if (this.state === 'parked' && this.handle !== undefined) return this.deps.parked.closed(this.handle);
    if (this.state === 'done') return;
    this.state = 'done';
    this.sink?.fail(new ProxyError('UPSTREAM_BAD_ANSWER'));
  }

  private toUpstream(message: Obj): void {
    void this.link.notify(JSON.stringify(message), this.headers);
  }
}

type ExchangeEndReason = ParkEndReason | 'full' | 'client-closed' | 'missing-capability';
// The refusal of an undeclared capability is counted as such by the client's -32021 answer.
const ENDED_EVENTS: Readonly<Record<ExchangeEndReason, InputRequiredEvent | undefined>> = {
  timeout: 'ended_timeout',
  full: 'ended_full',
  'client-closed': 'ended_client_closed',
  'upstream-closed': 'ended_upstream_closed',
  shutdown: 'ended_shutdown',
  'missing-capability': undefined,
};

/** The error a legacy server request gets when no client answer will come. */
const UPSTREAM_ANSWER_ERROR = -32000;
