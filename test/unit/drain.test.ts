/** drain() (upstream/client.ts): reading an answer whose body does not matter, to its end. */
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { drain } from '../../src/upstream/client.js';

const bodyOf = (chunks: Buffer[]) => Readable.from(chunks, { objectMode: false });

describe('drain', () => {
  it('resolves once the body has ended', async () => {
    const body = bodyOf([Buffer.from('{"jsonrpc":"2.0"}')]);
    await expect(drain(body)).resolves.toBeUndefined();
    expect(body.readableEnded).toBe(true);
  });

  it('resolves for a body that had ended already, and rejects for one destroyed already', async () => {
    const ended = bodyOf([]);
    ended.resume();
    await once(ended, 'end');
    await expect(drain(ended)).resolves.toBeUndefined();
    const destroyed = bodyOf([Buffer.from('x')]);
    destroyed.destroy();
    await expect(drain(destroyed)).rejects.toThrow();
  });

  it('rejects when the body fails or is cut before its end, and an error after that crashes nothing', async () => {
    const failing = new Readable({ read() {} });
    const failed = drain(failing);
    failing.destroy(new Error('socket hang up'));
    await expect(failed).rejects.toThrow('socket hang up');
    const cut = new Readable({ read() {} });
    const closed = drain(cut);
    cut.destroy();
    await expect(closed).rejects.toThrow('before its end');
    // After the end, an 'error' still has a listener: emitting one does not throw.
    const late = bodyOf([]);
    await drain(late);
    expect(() => late.emit('error', new Error('late'))).not.toThrow();
  });

  it('throws a body away past 64 KiB instead of reading on', async () => {
    const big = new Readable({ read() {} });
    const drained = drain(big);
    for (let i = 0; i < 80; i++) big.push(Buffer.alloc(1024));
    await expect(drained).resolves.toBeUndefined();
    expect(big.destroyed).toBe(true);
  });
});
