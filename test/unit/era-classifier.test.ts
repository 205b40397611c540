import type { IncomingHttpHeaders } from 'node:http';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PROXY_ERRORS } from '../../src/errors.js';
import {
  classifyEra,
  decodeMcpName,
  ENVELOPE,
  type EraDecision,
  MODERN_PROTOCOL_VERSION,
  type RoutingHeaders,
  routingHeadersOf,
  severityAtLeast,
} from '../../src/mcp/era.js';

// Expected texts are copied from the TypeScript SDK v2 server (createMcpHandler 2.4.0), which is
// what modern clients and the conformance suite see.
const PV = ENVELOPE.protocolVersion;
const CAPS = ENVELOPE.clientCapabilities;
const INFO = ENVELOPE.clientInfo;
const LOG = ENVELOPE.logLevel;
const DISAGREE = 'Bad Request: the request headers and body disagree: ';

const clientInfo = { name: 'test-client', version: '1.0.0' };
const validMeta = { [PV]: '2026-07-28', [CAPS]: {}, [INFO]: clientInfo };

function request(method: string, params?: Record<string, unknown>, id: string | number = 7): Record<string, unknown> {
  return params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params };
}

function modern(method: string, extra: Record<string, unknown> = {}, meta: Record<string, unknown> = validMeta) {
  return request(method, { _meta: meta, ...extra });
}

function notification(method: string, params?: Record<string, unknown>): Record<string, unknown> {
  return params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params };
}

function headers(protocolVersion?: string, method?: string, name?: string): RoutingHeaders {
  return { protocolVersion, method, name };
}

/** The headers a conformant modern client sends with `body`. */
function conformant(method: string, name?: string): RoutingHeaders {
  return headers(MODERN_PROTOCOL_VERSION, method, name);
}

function refused(
  reason: keyof typeof PROXY_ERRORS,
  message: string,
  data: Record<string, unknown> | undefined,
  id: string | number | null,
): EraDecision {
  return { era: 'refused', refusal: { reason, message, data, id } };
}

function headerMismatch(header: string, body: string, id: string | number | null = 7): EraDecision {
  return refused('MODERN_HEADER_MISMATCH', DISAGREE + body, { mismatch: { header, body } }, id);
}

const LEGACY: EraDecision = { era: 'legacy' };

describe('the MODERN_* reasons carry the v2 server statuses and codes', () => {
  it('maps each reason to its status and JSON-RPC code', () => {
    const pairs = Object.fromEntries(
      (
        [
          'MODERN_INVALID_MESSAGE',
          'MODERN_BATCH',
          'MODERN_HEADER_MISMATCH',
          'MODERN_INVALID_ENVELOPE',
          'MODERN_UNSUPPORTED_VERSION',
          'MODERN_METHOD_NOT_FOUND',
        ] as const
      ).map((reason) => [reason, [PROXY_ERRORS[reason].status, PROXY_ERRORS[reason].code]]),
    );
    expect(pairs).toEqual({
      MODERN_INVALID_MESSAGE: [400, -32600],
      MODERN_BATCH: [400, -32600],
      MODERN_HEADER_MISMATCH: [400, -32020],
      MODERN_INVALID_ENVELOPE: [400, -32602],
      MODERN_UNSUPPORTED_VERSION: [400, -32022],
      MODERN_METHOD_NOT_FOUND: [404, -32601],
    });
  });
});

describe('legacy traffic goes on to the session flow untouched', () => {
  const initialize = request('initialize', {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo,
  });

  it('plain 2025 requests, with or without a legacy MCP-Protocol-Version header', () => {
    expect(classifyEra(request('tools/list'), headers())).toEqual(LEGACY);
    expect(classifyEra(request('tools/list'), headers('2025-06-18'))).toEqual(LEGACY);
    expect(classifyEra(request('tools/call', { name: 'echo', arguments: {} }), headers('2025-11-25'))).toEqual(LEGACY);
    // Mcp-Method and Mcp-Name are never enforced on legacy traffic.
    expect(classifyEra(request('tools/list'), headers('2025-03-26', 'prompts/list', 'other'))).toEqual(LEGACY);
  });

  it('initialize without a modern header', () => {
    expect(classifyEra(initialize, headers())).toEqual(LEGACY);
    expect(classifyEra(initialize, headers('2025-06-18'))).toEqual(LEGACY);
  });

  it('initialize whose envelope claim is not a valid modern one stays the legacy handshake', () => {
    // Claim naming a legacy revision, and a claim with an incomplete envelope.
    expect(classifyEra(request('initialize', { _meta: { ...validMeta, [PV]: '2025-11-25' } }), headers())).toEqual(LEGACY);
    expect(classifyEra(request('initialize', { _meta: { [PV]: '2026-07-28' } }), headers())).toEqual(LEGACY);
  });

  it('legacy notifications, responses, batches of legacy messages', () => {
    expect(classifyEra(notification('notifications/initialized'), headers())).toEqual(LEGACY);
    expect(classifyEra(notification('notifications/cancelled', { requestId: 1 }), headers('2025-06-18'))).toEqual(LEGACY);
    expect(classifyEra({ jsonrpc: '2.0', id: 1, result: {} }, headers(MODERN_PROTOCOL_VERSION))).toEqual(LEGACY);
    expect(classifyEra({ jsonrpc: '2.0', id: 1, error: { code: -1, message: 'x' } }, headers())).toEqual(LEGACY);
    expect(classifyEra([request('tools/list'), notification('notifications/progress')], headers())).toEqual(LEGACY);
    // Empty and invalid batches are classifyBody's to refuse, as before.
    expect(classifyEra([], headers(MODERN_PROTOCOL_VERSION))).toEqual(LEGACY);
    expect(classifyEra([42], headers())).toEqual(LEGACY);
  });

  it('bodies that are not JSON, or not a JSON-RPC message, when nothing about them is modern', () => {
    expect(classifyEra(undefined, headers())).toEqual(LEGACY);
    expect(classifyEra(null, headers(MODERN_PROTOCOL_VERSION))).toEqual(LEGACY);
    expect(classifyEra('text', headers())).toEqual(LEGACY);
    expect(classifyEra({ jsonrpc: '2.0', id: 1.5, method: 'tools/list' }, headers('2025-06-18'))).toEqual(LEGACY);
    expect(classifyEra({ jsonrpc: '2.0', id: 1, method: 'tools/list', extra: true }, headers())).toEqual(LEGACY);
  });

  it('a non-string envelope key other than the protocol version is no claim', () => {
    expect(classifyEra(request('tools/list', { _meta: { [CAPS]: {}, [INFO]: clientInfo } }), headers())).toEqual(LEGACY);
  });
});

describe('a valid modern request passes with its envelope', () => {
  it('tools/call with every header', () => {
    const body = modern('tools/call', { name: 'echo', arguments: { text: 'hi' } }, { ...validMeta, [LOG]: 'warning' });
    expect(classifyEra(body, conformant('tools/call', 'echo'))).toEqual({
      era: 'modern',
      message: {
        kind: 'request',
        id: 7,
        method: 'tools/call',
        params: body.params,
        envelope: { protocolVersion: '2026-07-28', clientCapabilities: {}, clientInfo, logLevel: 'warning' },
      },
    });
  });

  it('every method of the served set, clientInfo optional', () => {
    const meta = { [PV]: '2026-07-28', [CAPS]: { roots: { listChanged: true } } };
    for (const method of [
      'server/discover',
      'tools/list',
      'prompts/list',
      'resources/list',
      'resources/templates/list',
      'completion/complete',
      'subscriptions/listen',
    ]) {
      expect(classifyEra(modern(method, {}, meta), conformant(method))).toMatchObject({
        era: 'modern',
        message: { kind: 'request', method, envelope: { clientInfo: undefined, logLevel: undefined } },
      });
    }
    expect(classifyEra(modern('prompts/get', { name: 'p' }), conformant('prompts/get', 'p')).era).toBe('modern');
    expect(classifyEra(modern('resources/read', { uri: 'test://r' }), conformant('resources/read', 'test://r')).era).toBe('modern');
  });

  it('header values are compared after OWS trimming', () => {
    const body = modern('tools/call', { name: 'echo' });
    expect(classifyEra(body, headers(' 2026-07-28\t', '\ttools/call ', '  echo  ')).era).toBe('modern');
  });

  it('a string id is echoed', () => {
    const body = { ...modern('tools/list'), id: 'req-1' };
    expect(classifyEra(body, conformant('tools/list'))).toMatchObject({ era: 'modern', message: { id: 'req-1' } });
  });
});

describe('R1: initialize with a modern MCP-Protocol-Version header', () => {
  const body = 'an initialize request (legacy handshake) was sent with a modern MCP-Protocol-Version header';

  it('refuses a legacy initialize sent with 2026-07-28', () => {
    const init = request('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo });
    expect(classifyEra(init, headers('2026-07-28'))).toEqual(headerMismatch('2026-07-28', body));
  });

  it('string-compare quirk: any header sorting after 2026-07-28 counts as modern', () => {
    const init = request('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo }, 'i');
    expect(classifyEra(init, headers('foo'))).toEqual(headerMismatch('foo', body, 'i'));
    expect(classifyEra(init, headers('v999.0.0'))).toEqual(headerMismatch('v999.0.0', body, 'i'));
    expect(classifyEra(init, headers('2026-07-27'))).toEqual(LEGACY);
    expect(classifyEra(init, headers(''))).toEqual(LEGACY);
  });

  it('initialize with a valid modern envelope is a modern request for a removed method', () => {
    expect(classifyEra(modern('initialize'), conformant('initialize'))).toEqual(
      refused('MODERN_METHOD_NOT_FOUND', 'Method not found', undefined, 7),
    );
  });
});

describe('R2: a claim with an invalid envelope', () => {
  const prefix = 'Invalid _meta envelope for protocol revision 2026-07-28: ';
  function invalid(key: string, problem: string): EraDecision {
    return refused('MODERN_INVALID_ENVELOPE', `${prefix}${key}: ${problem}`, { envelope: { key, problem } }, 7);
  }
  const check = (meta: Record<string, unknown>) => classifyEra(modern('tools/list', {}, meta), conformant('tools/list'));

  it('missing clientCapabilities', () => {
    expect(check({ [PV]: '2026-07-28', [INFO]: clientInfo })).toEqual(invalid(CAPS, 'missing'));
  });

  it('protocol version that is not a string (a claim whatever its value)', () => {
    expect(check({ [PV]: 5, [CAPS]: {} })).toEqual(invalid(PV, 'Invalid input: expected string, received number'));
    expect(check({ [PV]: null, [CAPS]: {} })).toEqual(invalid(PV, 'Invalid input: expected string, received null'));
  });

  it('missing keys are reported before type errors', () => {
    expect(check({ [PV]: 5 })).toEqual(invalid(CAPS, 'missing'));
  });

  it('clientInfo that is not an Implementation', () => {
    expect(check({ ...validMeta, [INFO]: 'x' })).toEqual(invalid(INFO, 'Invalid input: expected object, received string'));
    expect(check({ ...validMeta, [INFO]: { name: 'a' } })).toEqual(
      invalid(`${INFO}.version`, 'Invalid input: expected string, received undefined'),
    );
    expect(check({ ...validMeta, [INFO]: { name: 1, version: '1' } })).toEqual(
      invalid(`${INFO}.name`, 'Invalid input: expected string, received number'),
    );
    expect(check({ ...validMeta, [INFO]: { ...clientInfo, icons: [{ src: 's', theme: 'x' }] } })).toEqual(
      invalid(`${INFO}.icons.0.theme`, 'Invalid option: expected one of "light"|"dark"'),
    );
  });

  it('clientCapabilities that are not ClientCapabilities', () => {
    expect(check({ ...validMeta, [CAPS]: [] })).toEqual(invalid(CAPS, 'Invalid input: expected object, received array'));
    expect(check({ ...validMeta, [CAPS]: { roots: { listChanged: 'y' } } })).toEqual(
      invalid(`${CAPS}.roots.listChanged`, 'Invalid input: expected boolean, received string'),
    );
    expect(check({ ...validMeta, [CAPS]: { sampling: [] } })).toEqual(
      invalid(`${CAPS}.sampling`, 'Invalid input: expected object, received array'),
    );
    expect(check({ ...validMeta, [CAPS]: { experimental: { a: 1 } } })).toEqual(
      invalid(`${CAPS}.experimental.a`, 'Invalid input: expected record, received number'),
    );
    expect(check({ ...validMeta, [CAPS]: { elicitation: { form: 3 } } })).toEqual(
      invalid(`${CAPS}.elicitation.form`, 'Invalid input: expected object, received number'),
    );
    // Unknown capabilities pass (the v2 schema strips them, it does not refuse them).
    expect(check({ ...validMeta, [CAPS]: { tasks: 5 } }).era).toBe('modern');
  });

  it('logLevel outside the RFC 5424 names', () => {
    expect(check({ ...validMeta, [LOG]: 'loud' })).toEqual(
      invalid(LOG, 'Invalid option: expected one of "debug"|"info"|"notice"|"warning"|"error"|"critical"|"alert"|"emergency"'),
    );
  });

  it('envelope errors come before header mismatches', () => {
    expect(classifyEra(modern('tools/list', {}, { [PV]: '2026-07-28' }), headers('2025-06-18', 'x'))).toEqual(invalid(CAPS, 'missing'));
  });
});

describe('R3: MCP-Protocol-Version header that disagrees with the claim', () => {
  it('refuses with both versions named', () => {
    expect(classifyEra(modern('tools/list'), headers('2025-06-18', 'tools/list'))).toEqual(
      headerMismatch(
        '2025-06-18',
        'the body envelope names protocol version 2026-07-28 but the MCP-Protocol-Version header names 2025-06-18',
      ),
    );
  });

  it('comes before the unsupported-version check (v999 body with a 2026 header)', () => {
    const body = modern('tools/list', {}, { ...validMeta, [PV]: 'v999.0.0' });
    expect(classifyEra(body, conformant('tools/list'))).toEqual(
      headerMismatch(
        '2026-07-28',
        'the body envelope names protocol version v999.0.0 but the MCP-Protocol-Version header names 2026-07-28',
      ),
    );
  });

  it('an empty header is present, and disagrees', () => {
    expect(classifyEra(modern('tools/list'), headers('', 'tools/list'))).toEqual(
      headerMismatch('', 'the body envelope names protocol version 2026-07-28 but the MCP-Protocol-Version header names '),
    );
  });
});

describe('R4: Mcp-Method header that disagrees with the body method', () => {
  it('refuses, case-sensitively', () => {
    expect(classifyEra(modern('tools/list'), headers('2026-07-28', 'TOOLS/LIST'))).toEqual(
      headerMismatch('TOOLS/LIST', 'the body names method tools/list but the Mcp-Method header names TOOLS/LIST'),
    );
  });

  it('comes before the unsupported-version check and the presence of MCP-Protocol-Version', () => {
    const body = modern('tools/list', {}, { ...validMeta, [PV]: '2025-11-25' });
    expect(classifyEra(body, headers(undefined, 'prompts/list'))).toEqual(
      headerMismatch('prompts/list', 'the body names method tools/list but the Mcp-Method header names prompts/list'),
    );
  });
});

describe('R5: a modern header on a request without the envelope claim', () => {
  function missing(header: string, keys: string[], id: string | number = 7): EraDecision {
    return refused(
      'MODERN_INVALID_ENVELOPE',
      `Invalid params: the MCP-Protocol-Version header names protocol revision ${header}, but the request is missing ` +
        `the required per-request envelope key(s): ${keys.join(', ')}`,
      { envelope: { missing: keys } },
      id,
    );
  }

  it('no params, or params without _meta: the whole _meta is missing', () => {
    expect(classifyEra(request('tools/list'), headers('2026-07-28', 'tools/list'))).toEqual(missing('2026-07-28', ['_meta']));
    expect(classifyEra(request('tools/call', { name: 'x' }), headers('2026-07-28'))).toEqual(missing('2026-07-28', ['_meta']));
  });

  it('_meta without the claim names the missing required keys', () => {
    expect(classifyEra(request('tools/list', { _meta: {} }), headers('2026-07-28'))).toEqual(missing('2026-07-28', [PV, CAPS]));
    expect(classifyEra(request('tools/list', { _meta: { [CAPS]: {} } }), headers('2026-07-28'))).toEqual(missing('2026-07-28', [PV]));
  });

  it('string-compare quirk: `foo` and `v999.0.0` count as modern headers', () => {
    expect(classifyEra(request('tools/list', {}, 'x'), headers('foo'))).toEqual(missing('foo', ['_meta'], 'x'));
    expect(classifyEra(request('tools/list'), headers('v999.0.0'))).toEqual(missing('v999.0.0', ['_meta']));
    expect(classifyEra(request('tools/list'), headers('2025-11-25'))).toEqual(LEGACY);
  });
});

describe('M1: a claim naming a revision the proxy does not serve', () => {
  function unsupported(requested: string): EraDecision {
    return refused('MODERN_UNSUPPORTED_VERSION', `Unsupported protocol version: ${requested}`, { supported: ['2026-07-28'], requested }, 7);
  }

  it('a future revision in body and header', () => {
    const body = modern('server/discover', {}, { ...validMeta, [PV]: 'v999.0.0' });
    expect(classifyEra(body, headers('v999.0.0', 'server/discover'))).toEqual(unsupported('v999.0.0'));
  });

  it('a 2025 revision carried in the envelope', () => {
    const body = modern('tools/list', {}, { ...validMeta, [PV]: '2025-11-25' });
    expect(classifyEra(body, headers('2025-11-25', 'tools/list'))).toEqual(unsupported('2025-11-25'));
  });

  it('comes before the header presence checks', () => {
    const body = modern('tools/list', {}, { ...validMeta, [PV]: '2027-01-01' });
    expect(classifyEra(body, headers())).toEqual(unsupported('2027-01-01'));
  });
});

describe('M2: a modern request without MCP-Protocol-Version', () => {
  it('refuses with header (missing)', () => {
    expect(classifyEra(modern('tools/list'), headers(undefined, 'tools/list'))).toEqual(
      headerMismatch(
        '(missing)',
        'the body envelope names protocol version 2026-07-28 but the required MCP-Protocol-Version header is absent',
      ),
    );
  });

  it('is answered before a missing Mcp-Method', () => {
    expect(classifyEra(modern('tools/list'), headers())).toMatchObject({
      refusal: { data: { mismatch: { header: '(missing)' } }, message: expect.stringContaining('MCP-Protocol-Version') },
    });
  });
});

describe('M3: a modern request without Mcp-Method', () => {
  it('refuses with header (missing)', () => {
    expect(classifyEra(modern('tools/list'), headers('2026-07-28'))).toEqual(
      headerMismatch('(missing)', 'the body names method tools/list but the required Mcp-Method header is absent'),
    );
  });
});

describe('M4: Mcp-Name absent while the body names the tool, prompt or resource', () => {
  it('tools/call, prompts/get, resources/read', () => {
    expect(classifyEra(modern('tools/call', { name: 'echo' }), conformant('tools/call'))).toEqual(
      headerMismatch('(missing)', 'the body carries params.name="echo" but the required Mcp-Name header is absent'),
    );
    expect(classifyEra(modern('prompts/get', { name: 'p' }), conformant('prompts/get'))).toEqual(
      headerMismatch('(missing)', 'the body carries params.name="p" but the required Mcp-Name header is absent'),
    );
    expect(classifyEra(modern('resources/read', { uri: 'test://r' }), conformant('resources/read'))).toEqual(
      headerMismatch('(missing)', 'the body carries params.uri="test://r" but the required Mcp-Name header is absent'),
    );
  });

  it('tasks/get is checked too, before it is found missing', () => {
    expect(classifyEra(modern('tasks/get', { taskId: 't1' }), conformant('tasks/get'))).toEqual(
      headerMismatch('(missing)', 'the body carries params.taskId="t1" but the required Mcp-Name header is absent'),
    );
  });

  it('no check when the body has no string name', () => {
    expect(classifyEra(modern('tools/call'), conformant('tools/call')).era).toBe('modern');
    expect(classifyEra(modern('tools/call', { name: 5 }), conformant('tools/call')).era).toBe('modern');
  });

  it('methods without an Mcp-Name source ignore the header', () => {
    expect(classifyEra(modern('tools/list', { name: 'x' }), conformant('tools/list', 'y')).era).toBe('modern');
  });
});

describe('M5: Mcp-Name with an invalid base64 sentinel', () => {
  const invalid = (header: string) => headerMismatch(header, 'the Mcp-Name header carries an invalid Base64 sentinel value');

  it('bad padding, bad characters, not UTF-8', () => {
    expect(classifyEra(modern('tools/call', { name: 'echo' }), conformant('tools/call', '=?base64?ZWNobw=?='))).toEqual(
      invalid('=?base64?ZWNobw=?='),
    );
    expect(classifyEra(modern('tools/call', { name: 'echo' }), conformant('tools/call', '=?base64?ZW*obw==?='))).toEqual(
      invalid('=?base64?ZW*obw==?='),
    );
    expect(classifyEra(modern('tools/call', { name: 'echo' }), conformant('tools/call', '=?base64?/w==?='))).toEqual(
      invalid('=?base64?/w==?='),
    );
  });

  it('even when the body has no name to compare', () => {
    expect(classifyEra(modern('tools/call'), conformant('tools/call', ' =?base64?/w==?= '))).toEqual(invalid('=?base64?/w==?='));
  });
});

describe('M6: Mcp-Name that names something else', () => {
  it('plain and decoded values', () => {
    expect(classifyEra(modern('tools/call', { name: 'echo' }), conformant('tools/call', 'other'))).toEqual(
      headerMismatch('other', 'the body carries params.name="echo" but the Mcp-Name header names "other"'),
    );
    expect(classifyEra(modern('tools/call', { name: 'echo' }), conformant('tools/call', '=?base64?aMOpbGxv?='))).toEqual(
      headerMismatch('=?base64?aMOpbGxv?=', 'the body carries params.name="echo" but the Mcp-Name header names "héllo"'),
    );
  });

  it('a base64 sentinel that decodes to the body name passes', () => {
    expect(classifyEra(modern('tools/call', { name: 'héllo' }), conformant('tools/call', '=?base64?aMOpbGxv?=')).era).toBe('modern');
    expect(classifyEra(modern('resources/read', { uri: ' padded ' }), conformant('resources/read', '=?base64?IHBhZGRlZCA=?=')).era).toBe(
      'modern',
    );
  });
});

describe('M10: removed and unknown methods', () => {
  const notFound = refused('MODERN_METHOD_NOT_FOUND', 'Method not found', undefined, 7);

  it('are 404 -32601 with the request id', () => {
    for (const method of [
      'initialize',
      'ping',
      'logging/setLevel',
      'resources/subscribe',
      'resources/unsubscribe',
      'notifications/initialized',
      'roots/list',
      'tasks/list',
      'tasks/result',
      'unknown/method',
    ]) {
      expect(classifyEra(modern(method), conformant(method))).toEqual(notFound);
    }
  });

  it('prototype names are unknown methods, not crashes', () => {
    expect(classifyEra(modern('constructor'), conformant('constructor'))).toEqual(notFound);
    expect(classifyEra(modern('__proto__'), conformant('__proto__'))).toEqual(notFound);
  });

  it('come after the header checks', () => {
    expect(classifyEra(modern('ping'), headers('2026-07-28'))).toMatchObject({ refusal: { reason: 'MODERN_HEADER_MISMATCH' } });
  });
});

describe('batches with a modern element', () => {
  const refusal = refused(
    'MODERN_BATCH',
    'Bad Request: JSON-RPC batches may not contain requests for protocol revision 2026-07-28 or later',
    undefined,
    null,
  );

  it('are refused whole, wherever the modern element stands', () => {
    expect(classifyEra([request('tools/list'), modern('tools/list')], headers())).toEqual(refusal);
    expect(classifyEra([modern('tools/list')], conformant('tools/list'))).toEqual(refusal);
    expect(classifyEra([42, notification('x', { _meta: { [PV]: null } })], headers())).toEqual(refusal);
  });
});

describe('bodies that claim the modern era but are no JSON-RPC message', () => {
  const invalid = (id: string | number | null) =>
    refused('MODERN_INVALID_MESSAGE', 'Bad Request: the request body is not a valid JSON-RPC message', undefined, id);

  it('with a claim', () => {
    expect(classifyEra({ ...modern('tools/list'), extra: 1 }, conformant('tools/list'))).toEqual(invalid(7));
    expect(classifyEra({ ...modern('tools/list'), id: 1.5 }, conformant('tools/list'))).toEqual(invalid(1.5));
    expect(classifyEra(modern('tools/list', {}, { ...validMeta, progressToken: 1.5 }), headers())).toEqual(invalid(7));
  });

  it('with a modern header', () => {
    expect(classifyEra({ jsonrpc: '2.0', id: null, method: 'tools/list' }, headers('2026-07-28'))).toEqual(invalid(null));
    expect(classifyEra({ jsonrpc: '2.0', id: 'a', method: 'x', params: [] }, headers('foo'))).toEqual(invalid('a'));
    expect(classifyEra({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: null } }, headers('2026-07-28'))).toEqual(
      invalid(1),
    );
  });
});

describe('modern notifications', () => {
  const claim = { _meta: { [PV]: '2026-07-28' } };

  it('with a claim or a modern header are answered 202, without presence checks', () => {
    expect(classifyEra(notification('notifications/cancelled', claim), headers())).toEqual({
      era: 'modern',
      message: { kind: 'notification', method: 'notifications/cancelled', params: claim },
    });
    expect(classifyEra(notification('notifications/cancelled', { requestId: 1 }), headers('2026-07-28'))).toEqual({
      era: 'modern',
      message: { kind: 'notification', method: 'notifications/cancelled', params: { requestId: 1 } },
    });
    expect(classifyEra(notification('notifications/x'), headers('2026-07-28', 'notifications/x'))).toEqual({
      era: 'modern',
      message: { kind: 'notification', method: 'notifications/x', params: undefined },
    });
  });

  it('a claim that is not a string', () => {
    const problem = 'Invalid input: expected string, received number';
    expect(classifyEra(notification('n', { _meta: { [PV]: 1 } }), headers())).toEqual(
      refused(
        'MODERN_INVALID_ENVELOPE',
        `Invalid _meta envelope for protocol revision 2026-07-28: ${PV}: ${problem}`,
        { envelope: { key: PV, problem } },
        null,
      ),
    );
  });

  it('header that disagrees with the claim', () => {
    expect(classifyEra(notification('n', claim), headers('2025-06-18'))).toEqual(
      headerMismatch(
        '2025-06-18',
        'the notification envelope names protocol version 2026-07-28 but the MCP-Protocol-Version header names 2025-06-18',
        null,
      ),
    );
  });

  it('Mcp-Method that disagrees, with a claim or with a modern header', () => {
    const expected = headerMismatch('m', 'the notification body names method n but the Mcp-Method header names m', null);
    expect(classifyEra(notification('n', claim), headers(undefined, 'm'))).toEqual(expected);
    expect(classifyEra(notification('n'), headers('2026-07-28', 'm'))).toEqual(expected);
    // Never enforced on legacy notifications.
    expect(classifyEra(notification('n'), headers('2025-06-18', 'm'))).toEqual(LEGACY);
  });

  it('a revision the proxy does not serve, in the claim or the header', () => {
    expect(classifyEra(notification('n', { _meta: { [PV]: '2025-11-25' } }), headers(undefined, 'other'))).toEqual(
      refused(
        'MODERN_UNSUPPORTED_VERSION',
        'Unsupported protocol version: 2025-11-25',
        { supported: ['2026-07-28'], requested: '2025-11-25' },
        null,
      ),
    );
    expect(classifyEra(notification('n'), headers('foo'))).toEqual(
      refused('MODERN_UNSUPPORTED_VERSION', 'Unsupported protocol version: foo', { supported: ['2026-07-28'], requested: 'foo' }, null),
    );
  });
});

describe('decodeMcpName', () => {
  it('passes plain values through, trimmed of OWS', () => {
    expect(decodeMcpName('echo')).toBe('echo');
    expect(decodeMcpName('  echo  ')).toBe('echo');
    expect(decodeMcpName('\techo')).toBe('echo');
    expect(decodeMcpName('')).toBe('');
  });

  it('decodes the base64 sentinel as UTF-8', () => {
    expect(decodeMcpName('=?base64?aMOpbGxv?=')).toBe('héllo');
    expect(decodeMcpName('=?base64?IHBhZGRlZCA=?=')).toBe(' padded ');
    expect(decodeMcpName('=?base64??=')).toBe('');
    expect(decodeMcpName('=?base64?=')).toBe(''); // prefix and suffix overlap, as in the v2 server
    expect(decodeMcpName(' =?base64?ZWNobw==?= ')).toBe('echo');
  });

  it('refuses non-canonical base64 and bytes that are not UTF-8', () => {
    expect(decodeMcpName('=?base64?ZWNobw=?=')).toBeUndefined(); // padding
    expect(decodeMcpName('=?base64?ZWNobw?=')).toBeUndefined(); // padding left out
    expect(decodeMcpName('=?base64?ZW Nobw==?=')).toBeUndefined();
    expect(decodeMcpName('=?base64?ZWNobw-_?=')).toBeUndefined(); // base64url alphabet
    expect(decodeMcpName('=?base64?/w==?=')).toBeUndefined(); // 0xFF
    expect(decodeMcpName('=?base64?wKA=?=')).toBeUndefined(); // overlong encoding
  });
});

describe('severityAtLeast', () => {
  it('orders the RFC 5424 levels', () => {
    expect(severityAtLeast('error', 'warning')).toBe(true);
    expect(severityAtLeast('warning', 'warning')).toBe(true);
    expect(severityAtLeast('info', 'notice')).toBe(false);
    expect(severityAtLeast('emergency', 'debug')).toBe(true);
    expect(severityAtLeast('debug', 'emergency')).toBe(false);
  });
});

describe('routingHeadersOf', () => {
  it('reads the lower-cased names and joins repeated lines like Fetch does', () => {
    expect(routingHeadersOf({ 'mcp-protocol-version': '2026-07-28', 'mcp-method': ['a', 'b'], 'content-type': 'x' })).toEqual({
      protocolVersion: '2026-07-28',
      method: 'a, b',
      name: undefined,
    });
    const fromNode: IncomingHttpHeaders = { 'mcp-name': '=?base64?aMOpbGxv?=' };
    expect(routingHeadersOf(fromNode).name).toBe('=?base64?aMOpbGxv?=');
  });
});

describe('classifyEra never throws', () => {
  const header = fc.option(fc.oneof(fc.string(), fc.constantFrom('2026-07-28', '2025-06-18', 'foo', '=?base64?/w==?=')), {
    nil: undefined,
  });
  const headersArb = fc.record({ protocolVersion: header, method: header, name: header });

  function check(body: unknown, h: RoutingHeaders): boolean {
    const decision = classifyEra(body, h);
    if (decision.era === 'refused') return decision.refusal.reason in PROXY_ERRORS;
    return decision.era === 'legacy' || decision.era === 'modern';
  }

  it('on arbitrary JSON and header strings', () => {
    fc.assert(fc.property(fc.jsonValue(), headersArb, check), { numRuns: 1000 });
  });

  it('on message-shaped bodies with arbitrary envelopes', () => {
    const meta = fc.dictionary(
      fc.constantFrom(PV, CAPS, INFO, LOG, 'progressToken', 'io.modelcontextprotocol/related-task', '__proto__', 'x'),
      fc.jsonValue(),
    );
    const body = fc.record(
      {
        jsonrpc: fc.constantFrom('2.0', '1.0'),
        id: fc.oneof(fc.integer(), fc.string(), fc.double(), fc.constant(null)),
        method: fc.constantFrom('tools/call', 'resources/read', 'tasks/get', 'initialize', 'ping', 'constructor', 'n'),
        params: fc.oneof(
          fc.record({ _meta: meta, name: fc.jsonValue(), uri: fc.jsonValue(), taskId: fc.jsonValue() }, { requiredKeys: [] }),
          fc.jsonValue(),
        ),
      },
      { requiredKeys: ['jsonrpc', 'method'] },
    );
    fc.assert(fc.property(fc.oneof(body, fc.array(body, { maxLength: 3 })), headersArb, check), { numRuns: 2000 });
  });

  it('on values JSON.parse never gives', () => {
    fc.assert(fc.property(fc.anything(), headersArb, check), { numRuns: 500 });
  });
});
