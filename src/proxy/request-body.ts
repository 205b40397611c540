/**
 * Reading a POST body on the MCP endpoint: JSON only, and never more than the limit. A body
 * announced larger than the limit is refused before a byte of it is read; a streamed one as soon
 * as it passes the limit.
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

export function readJsonBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  if (!isJson(req.headers['content-type'])) return Promise.reject(new ProxyError('UNSUPPORTED_MEDIA_TYPE'));
  const announced = req.headers['content-length'];
  if (announced !== undefined && Number(announced) > limit) return Promise.reject(new ProxyError('PAYLOAD_TOO_LARGE'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.off('end', onEnd);
        reject(new ProxyError('PAYLOAD_TOO_LARGE'));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    req.on('data', onData);
    req.once('end', onEnd);
    // The client went away mid-body (Node reports ECONNRESET "aborted").
    req.once('error', () => reject(new ProxyError('CLIENT_CLOSED')));
  });
}
