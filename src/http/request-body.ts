/**
 * Reading a POST body on the MCP endpoint: JSON only, and never more than the limit. A body
 * announced larger than the limit is refused before a byte of it is read; a streamed one as soon
 * as it passes the limit. A body that stalls (no byte for `timeoutMs`, before the first one too)
 * is refused with 408, as nginx's client_body_timeout does it: without that, a client trickling a
 * byte now and then would hold its connection forever (the server's requestTimeout is off, since
 * SSE answers may last hours; only the body is timed here, never an answer).
 */
import type { IncomingMessage } from 'node:http';
import { ProxyError } from '../errors.js';

/** `application/json`, with or without parameters (charset). */
function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const end = contentType.indexOf(';');
  const media = (end === -1 ? contentType : contentType.slice(0, end)).trim().toLowerCase();
  return media === 'application/json';
}

export function readJsonBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer> {
  if (!isJson(req.headers['content-type'])) return Promise.reject(new ProxyError('UNSUPPORTED_MEDIA_TYPE'));
  const announced = req.headers['content-length'];
  if (announced !== undefined && Number(announced) > limit) return Promise.reject(new ProxyError('PAYLOAD_TOO_LARGE'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const stop = () => {
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      if (timer !== undefined) clearTimeout(timer);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        stop();
        reject(new ProxyError('PAYLOAD_TOO_LARGE'));
        return;
      }
      chunks.push(chunk);
      // The pause is timed from the last chunk: refresh() re-arms the same timer, no allocation.
      timer?.refresh();
    };
    const onEnd = () => {
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    req.on('data', onData);
    req.once('end', onEnd);
    // The client went away mid-body (Node reports ECONNRESET "aborted").
    req.once('error', () => {
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      reject(new ProxyError('CLIENT_CLOSED'));
    });
    // A body that came in the packet of its headers (nearly all of them) has ended by the time
    // immediates run (after the whole packet is parsed; a nextTick would run before its body is):
    // no timer for those. The rest get one.
    setImmediate(() => {
      if (settled || req.complete || req.destroyed) return;
      timer = setTimeout(() => {
        stop();
        reject(new ProxyError('REQUEST_TIMEOUT'));
      }, timeoutMs);
    });
  });
}
