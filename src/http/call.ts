/**
 * One request on its way through the MCP endpoint, and the small answers every flow writes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Answer } from '../upstream/link.js';
import { toClientHeaders } from './headers.js';
import { relay } from './reply.js';
import type { Tracked } from './tracking.js';

export interface Call {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly tracked: Tracked;
}

/** A JSON-RPC message the proxy answers itself, whole. */
export function answerJson(res: ServerResponse, status: number, message: object): void {
  const text = JSON.stringify(message);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

/** An upstream answer relayed untouched but for the session header and hop-by-hop headers. */
export function relayAsItCame(call: Call, answer: Answer): void {
  relay(call.res, answer.response.statusCode, toClientHeaders(answer.response.headers, undefined), answer.payload);
}

/** The client's notification (or response) taken: 202 and no body, as a 2025 server answers it. */
export function accepted(call: Call): void {
  call.res.writeHead(202).end();
}
