/**
 * Read the upstream's answer to an initialize (the client's own, or a replayed one).
 * The answer is either one JSON body or a short SSE stream that carries the response as an event.
 */
import type { JsonRpcId } from '../errors.js';
import { forEachEventData } from './sse-text-reader.js';
import { isEventStream, parseJson } from './protocol.js';

export interface InitializeOutcome {
  /** The protocol version the upstream negotiated (InitializeResult.protocolVersion). */
  readonly protocolVersion: string;
  /** The whole InitializeResult (capabilities, serverInfo, instructions): server/discover is made from it. */
  readonly result: Record<string, unknown>;
}

/** JSON-RPC messages in a buffered upstream body, whichever of the two media types it used. */
export function messagesOf(body: string, contentType: string | undefined): unknown[] {
  if (isEventStream(contentType)) {
    const messages: unknown[] = [];
    forEachEvent(body, (message) => messages.push(message));
    return messages;
  }
  const parsed = parseJson(body);
  if (parsed === undefined) return [];
  return Array.isArray(parsed) ? parsed : [parsed];
}

/** The InitializeResult answering request `id`, or undefined when the upstream refused or garbled it. */
export function initializeOutcomeOf(body: string, contentType: string | undefined, id: JsonRpcId): InitializeOutcome | undefined {
  for (const message of messagesOf(body, contentType)) {
    if (typeof message !== 'object' || message === null) continue;
    const { id: messageId, result } = message as { id?: unknown; result?: unknown };
    if (messageId !== id || typeof result !== 'object' || result === null) continue;
    const { protocolVersion } = result as { protocolVersion?: unknown };
    return typeof protocolVersion === 'string' ? { protocolVersion, result: result as Record<string, unknown> } : undefined;
  }
  return undefined;
}

/** Each JSON message in a buffered SSE body, with the event data it was parsed from. */
export function forEachEvent(body: string, each: (message: unknown, data: string) => void): void {
  forEachEventData(body, (data) => {
    const parsed = parseJson(data);
    if (parsed !== undefined) each(parsed, data);
  });
}
