/**
 * A hosted session's tools/call, prompts/get or resources/read, when the 2026-07-28 upstream may
 * answer `input_required` (MRTR): the upstream's questions become real server→client requests on
 * the SSE answer to the client's request, the client's POSTed responses the next round's
 * `inputResponses`. The client sees one request and one answer.
 *
 *   send the request (2026 envelope) → read the answer, forwarding its notifications
 *     complete / error         → the answer (JSON while nothing was streamed, else the last event)
 *     input_required           → check the client declared what is asked → switch the answer to SSE
 *                                → one request per key → wait for every response (bounded; the
 *                                client closing its stream, or cancelling its request, aborts)
 *                                → send the request again with a new id, `inputResponses` and
 *                                the byte-exact `requestState` (at most HOSTED_INPUT_MAX_ROUNDS rounds)
 *
 * The client's responses must reach this process: the question waits in this HostedSession only
 * (docs/flows/hosted.md: another replica answers such a POST 202 and drops it; route a session's POSTs to one
 * replica, or the question times out).
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { JsonRpcId } from '../../errors.js';
import { readEventStream } from '../../http/sse-reader.js';
import {
  clientResponseOf,
  HOSTED_INPUT_MAX_ROUNDS,
  inputError,
  inputRoundOf,
  isInputRequired,
  missingCapabilityOf,
  retryIdOf,
  retryParams,
  type InputAsk,
} from '../../mcp/hosted-input.js';
import { hostedJsonAnswer, routingHeadersFor, toLegacyMessage, toModernRequest } from '../../mcp/modern-upstream.js';
import { MCP_NAME_HEADER } from '../../mcp/era.js';
import { isParamHeaderRefusal } from '../../mcp/param-headers.js';
import { isAuthChallenge, isEventStream, isJsonRpcMessage, MAX_MESSAGE_BYTES, parseJson } from '../../mcp/protocol.js';
import type { Metrics } from '../../observability/metrics.js';
import { readBody, type Cancellation, type UpstreamClient, type UpstreamHeaders, type UpstreamResponse } from '../../upstream/client.js';
import type { HostedSession } from './hosted-session.js';
import { toClientHeaders } from '../../http/headers.js';
import { AnswerWriter } from '../../http/answer-writer.js';
import { relay, sseEvent } from '../../http/reply.js';

// What the proxy's own tools/list pages are, for tracing.
const TOOLS_LIST_RPC = { method: 'tools/list' };

type Obj = Record<string, unknown>;

export interface HostedInputDeps {
  readonly upstream: UpstreamClient;
  /** How long the proxy waits for the client to answer one round of questions. */
  readonly timeoutMs: number;
  readonly metrics: Metrics;
  readonly log: Logger;
}

export interface HostedCall {
  readonly res: ServerResponse;
  /**
   * Aborts the exchange: the client closed its stream, or cancelled the request
   * (notifications/cancelled). The exchange then just returns; the caller ends a cancelled answer.
   */
  readonly gone: Cancellation;
  /** Whether the client's Accept allows an SSE answer (where the questions go). */
  readonly acceptsEventStream: boolean;
}

/** The upstream's answer to one round: its JSON-RPC response, or something else to relay as is. */
type RoundAnswer =
  | { readonly kind: 'message'; readonly message: Obj }
  /** The common complete answer, already rewritten for the client on its text (hostedJsonAnswer). */
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'other'; readonly response: UpstreamResponse; readonly body: Buffer }
  | { readonly kind: 'cut' };

/** One hosted request that may take rounds of input; resolves once the client has its answer. */
export async function hostedExchange(
  deps: HostedInputDeps,
  call: HostedCall,
  session: HostedSession,
  request: { readonly id: JsonRpcId; readonly method: string; readonly params: Obj | undefined; readonly headers: UpstreamHeaders },
): Promise<void> {
  const { res, gone } = call;
  const { id, method } = request;
  // JSON until the first question or notification goes to the client, then SSE.
  const writer = new AnswerWriter(res, deps.metrics);
  const write = (message: Obj) => void writer.write(sseEvent(JSON.stringify(message)));
  const finish = (message: Obj) => writer.end(JSON.stringify(message));

  let params = request.params;
  let upstreamId: JsonRpcId = id;
  let relearnt = false;
  const headers = { ...request.headers };
  for (let round = 0; ; round++) {
    const body = toModernRequest(upstreamId, method, params, session.client, session.logLevel);
    let answer: RoundAnswer;
    try {
      const response = await deps.upstream.request({
        method: 'POST',
        headers,
        body,
        signal: gone,
        rpc: { id: upstreamId, method, params },
      });
      deps.log.trace({ link: session.label, round, status: response.statusCode }, 'hosted request: upstream answered');
      answer = await readRound(response, upstreamId, id, (notification) => {
        const translated = toLegacyMessage(notification, method);
        if (translated.kind === 'forward') write(translated.message);
      });
    } catch (error) {
      // Before anything was streamed the error table answers (502, 504…); after, only an event can.
      if (!writer.streaming || gone.aborted) throw error;
      return finish(
        inputError(id, -32000, "The upstream could not be reached for a retry with the client's input", 'UPSTREAM_UNAVAILABLE'),
      );
    }
    if (gone.aborted) return;
    if (answer.kind === 'cut') return finish(inputError(id, -32603, 'The upstream cut its answer short', 'UPSTREAM_CUT'));
    if (answer.kind === 'text') return writer.end(answer.text);
    if (answer.kind === 'other') {
      // Auth challenges, gateway errors: as they came, unless the client's answer is already a stream.
      if (!writer.streaming)
        return relay(res, answer.response.statusCode, toClientHeaders(answer.response.headers, undefined), answer.body);
      return finish(
        inputError(id, -32603, `The upstream answered a retry with HTTP ${answer.response.statusCode}`, 'UPSTREAM_UNAVAILABLE'),
      );
    }
    const message = { ...answer.message, id };
    if (method === 'tools/call' && !relearnt && !writer.streaming && isParamHeaderRefusal((message as Obj).error)) {
      // The tool needs Mcp-Param-* headers this session has not learnt (no tools/list went by
      // here yet: another replica, a restart, a client that calls tools it knows): learn, once.
      relearnt = true;
      await learnTools(deps, session, request.headers, gone);
      Object.assign(headers, session.paramHeadersFor(request.params?.name, request.params?.arguments));
      round--;
      continue;
    }
    if (!('result' in message) || !isInputRequired(message.result)) {
      const translated = toLegacyMessage(message, method);
      return finish(translated.kind === 'forward' ? translated.message : message);
    }
    const planned = inputRoundOf(message.result);
    if (planned.kind === 'invalid')
      return finish(inputError(id, -32603, `The upstream's input_required result is invalid: ${planned.message}`, 'HELD_INPUT_INVALID'));
    if (round + 1 >= HOSTED_INPUT_MAX_ROUNDS) {
      return finish(
        inputError(id, -32603, `The upstream still required input after ${HOSTED_INPUT_MAX_ROUNDS} rounds`, 'HELD_INPUT_ROUNDS_EXCEEDED'),
      );
    }
    const missing = missingCapabilityOf(planned.asks, session.client.capabilities);
    if (missing !== undefined) {
      return finish(
        inputError(
          id,
          -32021,
          `The upstream asks the client for ${missing}, which it did not declare at initialize`,
          'HELD_INPUT_MISSING_CAPABILITY',
          {
            requiredCapabilities: { [missing]: {} },
          },
        ),
      );
    }
    if (planned.asks.length > 0 && !call.acceptsEventStream) {
      return finish(
        inputError(
          id,
          -32603,
          'The upstream asks the client for input, which needs an SSE answer: Accept must list text/event-stream',
          'HELD_INPUT_NEEDS_EVENT_STREAM',
        ),
      );
    }
    deps.log.debug(
      { link: session.label, round, asks: planned.asks.map((ask) => ask.method) },
      'hosted request: the upstream requires input; asking the client',
    );
    const answered = await askClient(session, planned.asks, write, gone, deps.timeoutMs);
    if (answered.kind === 'aborted') return;
    if (answered.kind === 'timeout') {
      return finish(
        inputError(id, -32603, `The client did not answer the upstream's questions within ${deps.timeoutMs} ms`, 'HELD_INPUT_TIMEOUT'),
      );
    }
    if (answered.kind === 'error') {
      // As the v2 client does: a question that fails fails the whole request.
      const { error, ask } = answered;
      return finish(inputError(id, error.code, `The client answered ${ask.method} with an error: ${error.message}`, 'HELD_INPUT_FAILED'));
    }
    params = retryParams(request.params, answered.responses, planned.requestState);
    upstreamId = retryIdOf(id, round + 1);
  }
}

type Asked =
  | { readonly kind: 'answered'; readonly responses: Obj }
  | { readonly kind: 'error'; readonly ask: InputAsk; readonly error: { code: number; message: string } }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'aborted' };

// Why the proxy withdraws its questions still open, as the client reads it in notifications/cancelled.
const WITHDRAWN: Readonly<Record<Exclude<Asked['kind'], 'answered'>, string>> = {
  timeout: 'The client did not answer in time (mcp-session-proxy)',
  error: 'Another question of the request failed (mcp-session-proxy)',
  aborted: 'The request was cancelled (mcp-session-proxy)',
};

/**
 * Every question of a round sent to the client at once; resolves with all answers or the first
 * failure. Questions still open then are withdrawn with notifications/cancelled (while the
 * stream can carry it), as a 2025 server cancels its own requests: the client stops asking its
 * user, and its late answer would be dropped anyway.
 */
function askClient(
  session: HostedSession,
  asks: readonly InputAsk[],
  write: (message: Obj) => void,
  gone: Cancellation,
  timeoutMs: number,
): Promise<Asked> {
  if (asks.length === 0) return Promise.resolve({ kind: 'answered', responses: {} });
  return new Promise<Asked>((resolve) => {
    const ids: string[] = [];
    const unanswered = new Set<string>();
    const responses: Obj = {};
    let open = asks.length;
    const done = (outcome: Asked) => {
      clearTimeout(timer);
      gone.off('abort', onAbort);
      for (const askId of ids) session.forget(askId);
      if (outcome.kind !== 'answered') {
        for (const askId of unanswered)
          write({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: askId, reason: WITHDRAWN[outcome.kind] } });
      }
      resolve(outcome);
    };
    const onAbort = () => done({ kind: 'aborted' });
    const timer = setTimeout(() => done({ kind: 'timeout' }), timeoutMs);
    gone.once('abort', onAbort);
    for (const ask of asks) {
      const askId = session.ask((raw) => {
        const response = clientResponseOf(raw);
        if (response === undefined) return;
        unanswered.delete(askId);
        if ('error' in response) return done({ kind: 'error', ask, error: response.error });
        responses[ask.key] = response.result;
        if (--open === 0) done({ kind: 'answered', responses });
      });
      ids.push(askId);
      unanswered.add(askId);
      write(
        ask.params === undefined
          ? { jsonrpc: '2.0', id: askId, method: ask.method }
          : { jsonrpc: '2.0', id: askId, method: ask.method, params: ask.params },
      );
    }
  });
}

// tools/list pages read to learn Mcp-Param-* declarations: a bound on a paginating upstream.
const MAX_TOOLS_LIST_PAGES = 10;

/** tools/list upstream, every page (bounded), for the session to learn its tools' Mcp-Param-* headers. */
async function learnTools(
  deps: HostedInputDeps,
  session: HostedSession,
  requestHeaders: UpstreamHeaders,
  gone: Cancellation,
): Promise<void> {
  const headers: UpstreamHeaders = {};
  for (const [name, value] of Object.entries(requestHeaders))
    if (name !== MCP_NAME_HEADER && !name.startsWith('mcp-param-')) headers[name] = value;
  Object.assign(headers, routingHeadersFor('tools/list', undefined));
  let cursor: unknown;
  for (let page = 0; page < MAX_TOOLS_LIST_PAGES; page++) {
    const id = `mcp-session-proxy-tools-${page}`;
    const body = toModernRequest(id, 'tools/list', cursor === undefined ? {} : { cursor }, session.client, undefined);
    try {
      const request = { method: 'POST', headers, body, signal: gone, rpc: TOOLS_LIST_RPC } as const;
      const answer = await readRound(await deps.upstream.request(request), id, id, () => undefined);
      const result =
        answer.kind === 'message'
          ? answer.message.result
          : answer.kind === 'text'
            ? (parseJson(answer.text) as Obj | undefined)?.result
            : undefined;
      session.learnTools(result);
      cursor = (result as { nextCursor?: unknown } | undefined)?.nextCursor;
      if (typeof cursor !== 'string') return;
    } catch {
      return;
    }
  }
}

/** A client's POSTed JSON-RPC response, to the hosted exchange waiting for it; false if none is. */
export function deliverClientResponse(session: HostedSession, message: unknown): boolean {
  const response = clientResponseOf(message);
  return response !== undefined && session.answer(response.id, message);
}

/**
 * The upstream's answer to one round: notifications passed to `onNotification` as they come, the
 * response to `upstreamId` returned (the rest of the stream is then let go: the request is over).
 */
async function readRound(
  response: UpstreamResponse,
  upstreamId: JsonRpcId,
  clientId: JsonRpcId,
  onNotification: (message: Obj) => void,
): Promise<RoundAnswer> {
  const contentType = response.headers['content-type'];
  if (!isEventStream(contentType)) {
    const body = await readBody(response.body, MAX_MESSAGE_BYTES, 'UPSTREAM_UNAVAILABLE');
    const text = body.toString();
    // A 200 only: other statuses take the object path (a JSON-RPC error, a relay as is).
    const fast = response.statusCode === 200 ? hostedJsonAnswer(text, upstreamId, clientId) : undefined;
    if (fast !== undefined) return { kind: 'text', text: fast };
    const parsed = parseJson(text);
    // An auth challenge goes back as it came, whatever its body (mcp/protocol.ts isAuthChallenge: one rule for every flow).
    const answered = !isAuthChallenge(response.statusCode) && isJsonRpcMessage(parsed) && !('method' in parsed) && parsed.id === upstreamId;
    if (answered) return { kind: 'message', message: parsed };
    return { kind: 'other', response, body };
  }
  return new Promise<RoundAnswer>((resolve) => {
    let settled = false;
    const settle = (answer: RoundAnswer) => {
      if (settled) return;
      settled = true;
      resolve(answer);
      if (answer.kind === 'message') response.body.destroy();
    };
    // An event the translation cannot take, or the stream ending or breaking before the answer,
    // cuts the answer: the request fails, and the process carries on.
    readEventStream(
      response.body,
      {
        event(data) {
          if (settled) return;
          const message = parseJson(data);
          if (!isJsonRpcMessage(message)) return;
          if (typeof message.method === 'string') {
            // 2026-07-28 servers send no requests; notifications (progress, log) go to the client.
            if (!('id' in message)) onNotification(message);
            return;
          }
          if (message.id === upstreamId) settle({ kind: 'message', message: message });
        },
      },
      () => settle({ kind: 'cut' }),
    );
  });
}
