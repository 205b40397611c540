/**
 * Reading a POST body on the MCP endpoint: JSON only, and never more than the limit. A body
 * announced larger than the limit is refused before a byte of it is read; a streamed one as soon
 * as it passes the limit. Two clocks refuse a slow body with 408 (the server's requestTimeout is
 * off, since SSE answers may last hours; only the body is timed here, never an answer):
 *
 *   - a pause: no byte for `pauseMs`, before the first one too (nginx's client_body_timeout);
 *   - the whole body: it must arrive within `allowanceMs` plus one second per `minRateBytesPerS`
 *     bytes received (Apache's mod_reqtimeout `body=…,MinRate=…`), or a client sending a byte
 *     every few seconds would hold its connection until the size limit, for days.
 *
 * A body that came in the packet of its headers (nearly all of them) starts neither clock.
 */
import type { IncomingMessage } from 'node:http';
import type { Config } from '../config.js';
import { ProxyError } from '../errors.js';

/** `application/json`, with or without parameters (charset). */
function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const end = contentType.indexOf(';');
  const media = (end === -1 ? contentType : contentType.slice(0, end)).trim().toLowerCase();
  return media === 'application/json';
}

export interface BodyLimits {
  readonly limitBytes: number;
  readonly pauseMs: number;
  readonly allowanceMs: number;
  readonly minRateBytesPerS: number;
}

export function bodyLimitsOf(
  config: Pick<Config, 'bodyLimitBytes' | 'bodyTimeoutMs' | 'bodyAllowanceMs' | 'bodyMinRateBytesPerS'>,
): BodyLimits {
  return {
    limitBytes: config.bodyLimitBytes,
    pauseMs: config.bodyTimeoutMs,
    allowanceMs: config.bodyAllowanceMs,
    minRateBytesPerS: config.bodyMinRateBytesPerS,
  };
}

/** How long the body may still take, `elapsedMs` after its clocks started with `bytes` received. */
export function remainingAllowanceMs(limits: BodyLimits, bytes: number, elapsedMs: number): number {
  return limits.allowanceMs + (bytes * 1000) / limits.minRateBytesPerS - elapsedMs;
}

export function readJsonBody(req: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  if (!isJson(req.headers['content-type'])) return Promise.reject(new ProxyError('UNSUPPORTED_MEDIA_TYPE'));
  const limit = limits.limitBytes;
  const announced = req.headers['content-length'];
  if (announced !== undefined && Number(announced) > limit) return Promise.reject(new ProxyError('PAYLOAD_TOO_LARGE'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let timer: NodeJS.Timeout | undefined;
    /** Set once the clocks start (the body did not come with its headers): called on each chunk. */
    let rearm: (() => void) | undefined;
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
      rearm?.();
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
      const startedAt = performance.now();
      const timedOut = () => {
        stop();
        reject(new ProxyError('REQUEST_TIMEOUT'));
      };
      // The next deadline: the pause, unless the whole body's allowance runs out first. The
      // common case re-arms the same timer (refresh(): no allocation).
      let armedFor = 0;
      const arm = (delay: number) => {
        if (delay === armedFor) return void timer!.refresh();
        clearTimeout(timer);
        armedFor = delay;
        timer = setTimeout(timedOut, delay);
      };
      rearm = () => {
        const remaining = remainingAllowanceMs(limits, size, performance.now() - startedAt);
        if (remaining <= 0) return timedOut();
        arm(Math.min(limits.pauseMs, remaining));
      };
      rearm();
    });
  });
}
