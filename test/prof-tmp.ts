import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { startScript, killAll } from './helpers/processes.js';
const up = await startScript('bench/cheap-upstream.ts');
const child = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir=/tmp/prof', 'dist/main.js', '--upstream', `${up.origin}/mcp`, '--port', '18555', '--host', '127.0.0.1', '--log-level', 'warn'], { cwd: '/work/wt-wire', stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 1500));
const modern = process.argv[2] === 'modern';
const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': { sampling: {} }, 'io.modelcontextprotocol/clientInfo': { name: 'b', version: '1' } };
let headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
let body: string;
if (modern) {
  headers = { ...headers, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' };
  body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' }, _meta: meta } });
} else {
  const r = await fetch('http://127.0.0.1:18555/mcp', { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'b', version: '1' } } }) });
  await r.text();
  headers = { ...headers, 'mcp-session-id': r.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-06-18' };
  body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' } } });
}
const res = await autocannon({ url: 'http://127.0.0.1:18555/mcp', method: 'POST', headers, body, connections: 16, duration: 6 });
console.log(modern ? 'modern' : 'legacy', res.requests.average, res.non2xx);
child.kill('SIGINT');
await new Promise((r) => child.once('exit', r));
await killAll();
