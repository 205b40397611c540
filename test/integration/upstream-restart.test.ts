import { afterAll, describe, expect, it } from 'vitest';
import { callText, connect } from '../helpers/client.js';
import { killAll, startEverything, startFixture, startProxy } from '../helpers/processes.js';

afterAll(killAll);

describe('upstream process killed and restarted mid-session', () => {
  it('survives stale pooled connections and recovers the session on the next call (SDK fixture)', async () => {
    let upstream = await startFixture('sdk');
    const proxy = await startProxy(upstream.mcpUrl);
    const c = await connect(proxy.url, 'restart-survivor');
    const id = c.sessionId();
    expect(await callText(c, 'echo', { text: 'before' })).toBe('before');

    await upstream.kill();
    upstream = await startFixture('sdk', { port: upstream.port });
    expect(await callText(c, 'echo', { text: 'after' })).toBe('after');
    expect(c.sessionId()).toBe(id);
    const who = JSON.parse(await callText(c, 'whoami')) as { clientInfo: { name: string } };
    expect(who.clientInfo.name).toBe('restart-survivor');
    // The new process saw exactly one initialize for this client: the replay.
    expect((await upstream.stats()).initializes['restart-survivor']).toBe(1);
    await c.close();
  });

  it('recovers sessions on @modelcontextprotocol/server-everything across a restart', async () => {
    const everything = await startEverything();
    const proxy = await startProxy(everything.mcpUrl);
    const c = await connect(proxy.url, 'everything-client');
    const id = c.sessionId();
    const echo = async (message: string) => {
      const result = await c.client.callTool({ name: 'echo', arguments: { message } });
      return (result.content as Array<{ text: string }>)[0]!.text;
    };
    expect(await echo('hello')).toBe('Echo: hello');

    await everything.kill();
    // Started again on its port (killAll ends it).
    await startEverything(everything.port);
    // server-everything answers 400 "No valid session ID provided" for the lost session.
    expect(await echo('again')).toBe('Echo: again');
    const sum = await c.client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } });
    expect(sum.content).toEqual([{ type: 'text', text: 'The sum of 2 and 3 is 5.' }]);
    expect(c.sessionId()).toBe(id);
    await c.close();
  });
});
