/**
 * The requests the benchmarks send: what the official SDK clients send for a `tools/call` of a
 * cheap tool, in both eras.
 */
export const ACCEPT = 'application/json, text/event-stream';
export const CALL = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}';
// What the official SDK client sends at initialize.
export const INIT_PARAMS = {
  protocolVersion: '2025-06-18',
  capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } },
  clientInfo: { name: 'bench-client', version: '1.0.0' },
};
export const INIT = JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: INIT_PARAMS });
// The same call from a 2026-07-28 client: no session, the envelope in _meta, the routing headers.
export const MODERN_CALL = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: {
    name: 'echo',
    arguments: { text: 'hi' },
    _meta: {
      'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientCapabilities': INIT_PARAMS.capabilities,
      'io.modelcontextprotocol/clientInfo': INIT_PARAMS.clientInfo,
    },
  },
});
export const MODERN_HEADERS = {
  'content-type': 'application/json',
  accept: ACCEPT,
  'mcp-protocol-version': '2026-07-28',
  'mcp-method': 'tools/call',
  'mcp-name': 'echo',
};
