/**
 * Requests so malformed that Node's HTTP parser rejects them (bad framing, oversized headers):
 * a JSON-RPC error on the raw socket, and a log line that never carries the raw bytes (Node
 * attaches them to the error as `rawPacket`, credentials and session id included).
 */
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { errorBody } from '../errors.js';

const HEADERS_TOO_LARGE = new Set(['HPE_HEADER_OVERFLOW']);

export function answerMalformedRequest(error: Error & { code?: string }, socket: Duplex, log: Logger): void {
  log.debug({ code: error.code }, 'malformed HTTP request');
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, text] = HEADERS_TOO_LARGE.has(error.code ?? '') ? [431, 'Request Header Fields Too Large'] : [400, 'Bad Request'];
  const body = errorBody('INVALID_REQUEST');
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Connection: close\r\n\r\n${body}`,
  );
}
