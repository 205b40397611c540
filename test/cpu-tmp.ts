import autocannon from 'autocannon';
import { startScript, startProxy, killAll } from './helpers/processes.js';
import { cpuMicros } from '../bench/cpu.js';
import { execFileSync } from 'node:child_process';
const up = await startScript('bench/cheap-upstream.ts');
const proxy = await startProxy(`${up.origin}/mcp`, { LOG_LEVEL: 'warn' });
execFileSync('taskset', ['-a', '-p', '-c', '1', String(proxy.child.pid)]);
execFileSync('taskset', ['-a', '-p', '-c', '0', String(up.child.pid)]);
execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)]);
const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': { sampling: {}, elicitation: {}, roots: { listChanged: true } }, 'io.modelcontextprotocol/clientInfo': { name: 'bench-client', version: '1.0.0' } };
const base = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
const r = await fetch(`${proxy.url}`, { method: 'POST', headers: base, body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'b', version: '1' } } }) });
await r.text();
const legacy = { headers: { ...base, 'mcp-session-id': r.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-06-18' }, body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}' };
const modern = { headers: { ...base, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' }, _meta: meta } }) };
async function run(name: string, t: { headers: Record<string, string>; body: string }) {
  await autocannon({ url: proxy.url, method: 'POST', ...t, connections: 32, duration: 2 });
  const before = cpuMicros(proxy.child.pid!);
  const res = await autocannon({ url: proxy.url, method: 'POST', ...t, connections: 32, duration: 5 });
  const cpu = (cpuMicros(proxy.child.pid!) - before) / res.requests.total;
  console.log(name, Math.round(res.requests.average), 'req/s', cpu.toFixed(1), 'µs/call', res.non2xx);
  return cpu;
}
const ratios = [];
for (let i = 0; i < 3; i++) {
  const l = await run('legacy', legacy);
  const m = await run('modern', modern);
  ratios.push((m / l).toFixed(2));
}
console.log('modern/legacy', ratios.join(' '));
await killAll();
