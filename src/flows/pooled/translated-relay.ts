/**
 * An upstream answer to a request rewritten onto a pooled session (a 2026-07-28 request, or a
 * sessionless 2025 one), translated back message by message: SSE event by event as it streams
 * (never buffered), a JSON answer whole. Server requests no caller can take are refused to the
 * upstream. A client that leaves before its answer cancels the request upstream (for 2026-07-28
 * clients, closing the stream is the cancellation).
 */
import type { Logger } from 'pino';
import { missingCapabilityError, ProxyError, type JsonRpcId } from '../../errors.js';
import { AnswerWriter } from '../../http/answer-writer.js';
import { relayAsItCame, type Call } from '../../http/call.js';
import { modernEventStream } from '../../http/event-stream.js';
import { answerError, errorEvents } from '../../http/reply.js';
import { isAuthChallenge, isEventStream, MAX_MESSAGE_BYTES } from '../../mcp/protocol.js';
import { answerBodyOf, type MessageMap } from '../../mcp/translate.js';
import type { Metrics } from '../../observability/metrics.js';
import { discard, readBody, type UpstreamHeaders } from '../../upstream/client.js';
import type { Answer, UpstreamLink } from '../../upstream/link.js';

export interface TranslatedRelayDeps {
  readonly metrics: Metrics;
  readonly log: Logger;
}

/** The request an answer belongs to: the caller's id, and the one it has on the shared session. */
export interface TranslatedIds {
  readonly clientId: JsonRpcId;
  readonly upstreamId: string;
}

/** Whether the caller has its answer (or its error): from then on, leaving cancels nothing. */
interface AnswerState {
  answered: boolean;
}

export async function relayTranslated(
  deps: TranslatedRelayDeps,
  call: Call,
  link: UpstreamLink,
  headers: UpstreamHeaders,
  answer: Answer,
  ids: TranslatedIds,
  translate: MessageMap,
  /** The common JSON answer rewritten on its text alone (splicedJsonAnswer), or undefined. */
  splice: (text: string) => string | undefined,
) {
  const { response, payload } = answer;
  // The upstream refused the request unprocessed (expired token, missing scope): its answer goes
  // back as it came, the pooled upstream session stays as it was.
  if (isAuthChallenge(response.statusCode)) return relayAsItCame(call, answer);
  const state: AnswerState = { answered: false };
  const map: MessageMap = (message, text) => {
    const translated = translate(message, text);
    if (translated.kind === 'answer') state.answered = true;
    else if (translated.kind === 'forward' && translated.message.id === ids.clientId && !('method' in translated.message))
      state.answered = true;
    return translated;
  };
  // The client leaving before its answer (tracking's one 'close' listener cancels `gone`).
  call.tracked.gone.once('abort', () => {
    if (!state.answered) void link.notify(cancellation(ids.upstreamId), headers);
  });
  const refuse = (id: JsonRpcId, method: string) => void link.notify(serverRequestRefusal(id, method), headers);
  if (!Buffer.isBuffer(payload) && isEventStream(response.headers['content-type'])) {
    return relayEvents(deps, call, link, headers, { response, payload }, ids, map, refuse, state);
  }
  const body = Buffer.isBuffer(payload) ? payload : await readBody(payload, MAX_MESSAGE_BYTES, 'UPSTREAM_UNAVAILABLE', call.tracked.gone);
  const contentType = typeof response.headers['content-type'] === 'string' ? response.headers['content-type'] : undefined;
  const bodyText = body.toString();
  let missing: string | undefined;
  const text =
    (isEventStream(contentType) ? undefined : splice(bodyText)) ??
    answerBodyOf(bodyText, contentType, map, (id, method, missingCapability) => {
      refuse(id, method);
      missing ??= missingCapability;
    });
  if (missing !== undefined) {
    // Answered upstream already (refused): nothing to cancel.
    state.answered = true;
    throw missingCapabilityError(missing);
  }
  if (text === undefined) {
    // Not a JSON-RPC answer, and no success either (a gateway's 429 or 503, an HTML error
    // page): the client sees what the upstream said, as from the upstream directly.
    if (response.statusCode >= 300) return relayAsItCame(call, { response, payload: body });
    // A success with nothing for this request (202, an empty body): the upstream never answered.
    throw new ProxyError('UPSTREAM_BAD_ANSWER', { detail: { upstreamStatus: response.statusCode } });
  }
  state.answered = true;
  call.res.writeHead(response.statusCode, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
  call.res.end(text);
}

/** An SSE answer, translated event by event as it streams. */
function relayEvents(
  deps: TranslatedRelayDeps,
  call: Call,
  link: UpstreamLink,
  headers: UpstreamHeaders,
  answer: { readonly response: Answer['response']; readonly payload: Answer['response']['body'] },
  ids: TranslatedIds,
  map: MessageMap,
  refuse: (id: JsonRpcId, method: string) => void,
  state: AnswerState,
) {
  const { res } = call;
  const { response, payload } = answer;
  // The head goes out with the first event (implicitly, on the first write): until then the
  // answer can still become a refusal with its own status, as a v2 server's answer becomes a
  // stream only once there is something to stream.
  const writer = new AnswerWriter(res, deps.metrics, response.statusCode);
  writer.open();
  // The upstream asked for a capability the client did not declare: the client's request fails
  // with -32021 (400 while nothing was streamed yet, else an error event), and the upstream's
  // request is cancelled; the question is refused once the cancellation is delivered, so that a
  // tool that sees it fail is cancelled already and stops rather than carrying on.
  const missingOnStream = (id: JsonRpcId, method: string, capability: string) => {
    if (state.answered) return refuse(id, method);
    state.answered = true;
    void link.notify(cancellation(ids.upstreamId), headers).then(() => refuse(id, method));
    payload.unpipe(events);
    events.unpipe(res);
    discard(payload);
    const error = missingCapabilityError(capability);
    writer.fail(error, ids.clientId, () => answerError(call.req, res, call.tracked, error, deps.log));
  };
  const events = modernEventStream(map, (id, method, missingCapability) =>
    missingCapability === undefined ? refuse(id, method) : missingOnStream(id, method, missingCapability),
  );
  // An upstream that breaks off mid-stream, or sends an event the translation cannot take (JSON
  // nested deeper than the stack, say): the client's request gets a JSON-RPC error event.
  const cut = () => {
    if (!state.answered && !res.writableEnded) res.write(errorEvents('UPSTREAM_CUT', [ids.clientId]));
    res.end();
  };
  payload.once('error', cut);
  events.once('error', () => {
    discard(payload);
    cut();
  });
  payload.pipe(events).pipe(res);
}

function cancellation(upstreamId: string): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    method: 'notifications/cancelled',
    params: { requestId: upstreamId, reason: 'The client closed the request' },
  });
}

/** The answer to a server request that no caller can take (no session to answer on, or a 2026 client). */
function serverRequestRefusal(id: JsonRpcId, method: string): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    id,
    error: {
      code: -32601,
      message: `${method} is not available: the client reaches this server through mcp-session-proxy without a session`,
    },
  });
}
