import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  classifyLoss,
  DEFAULT_LOSS_PATTERNS,
  DEFAULT_LOSS_RULES,
  errorMessageOf,
  MAX_CLASSIFIED_BODY_CHARS,
  mayBeLoss,
  type LossRules,
} from '../../src/mcp/loss.js';

function jsonRpcError(code: number, message: string, id: string | number | null = null): string {
  return JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id });
}

describe('classifyLoss with the default rules: upstream lost the session', () => {
  const rules = DEFAULT_LOSS_RULES;

  it.each([
    ['a JSON-RPC Session not found', jsonRpcError(-32001, 'Session not found')],
    ['an empty body', ''],
    ['plain text', 'Not Found'],
    ['an HTML page', '<html><body><h1>404 Not Found</h1></body></html>'],
    ['an unrelated JSON-RPC error', jsonRpcError(-32601, 'Method not found', 1)],
  ])('404 with %s is a loss', (_label, body) => {
    expect(classifyLoss(404, body, rules)).toBe('status_404');
  });

  it('400 -32000 "Bad Request: No valid session ID provided" (server-everything, older python-sdk)', () => {
    const body = '{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}';
    expect(classifyLoss(400, body, rules)).toBe('no_valid_session_id');
  });

  it('400 "Bad Request: Missing session ID" as a JSON-RPC error', () => {
    expect(classifyLoss(400, jsonRpcError(-32600, 'Bad Request: Missing session ID'), rules)).toBe('missing_session_id');
  });

  it('400 "Bad Request: Missing session ID" as plain text', () => {
    expect(classifyLoss(400, 'Bad Request: Missing session ID', rules)).toBe('missing_session_id');
  });

  it('400 -32000 "Bad Request: Server not initialized" (TypeScript SDK, fresh process)', () => {
    expect(classifyLoss(400, jsonRpcError(-32000, 'Bad Request: Server not initialized'), rules)).toBe('server_not_initialized');
  });

  it('400 -32000 "Bad Request: Mcp-Session-Id header is required" (TypeScript SDK)', () => {
    expect(classifyLoss(400, jsonRpcError(-32000, 'Bad Request: Mcp-Session-Id header is required'), rules)).toBe('session_id_required');
  });

  it('400 "Received request before initialization was complete" (python-sdk)', () => {
    expect(classifyLoss(400, jsonRpcError(-32602, 'Received request before initialization was complete', 3), rules)).toBe(
      'initialization_incomplete',
    );
    expect(classifyLoss(400, 'Received request before initialization was complete', rules)).toBe('initialization_incomplete');
  });

  it.each([503, 401])('%i with a "Session not found" message', (status) => {
    expect(classifyLoss(status, jsonRpcError(-32001, 'Session not found'), rules)).toBe('session_not_found');
    expect(classifyLoss(status, 'Session not found', rules)).toBe('session_not_found');
    expect(classifyLoss(status, 'session NOT FOUND', rules)).toBe('session_not_found');
  });

  it.each(['Invalid session ID', 'Unknown session', 'session expired', 'Session is terminated', 'Session id is invalid'])(
    'gateway-style message "%s" on 400 is a loss',
    (message) => {
      expect(classifyLoss(400, jsonRpcError(-32000, message), rules)).toBe('session_invalid');
    },
  );

  it('finds the message in the first element of a batch of errors', () => {
    const body = JSON.stringify([{ jsonrpc: '2.0', id: 1, error: { code: -32001, message: 'Session not found' } }]);
    expect(classifyLoss(400, body, rules)).toBe('session_not_found');
  });
});

describe('classifyLoss with the default rules: answers that must reach the client', () => {
  const rules = DEFAULT_LOSS_RULES;

  it.each([200, 201, 202, 204])('%i is never a loss, whatever the body', (status) => {
    expect(classifyLoss(status, '', rules)).toBeUndefined();
    expect(classifyLoss(status, jsonRpcError(-32001, 'Session not found', 1), rules)).toBeUndefined();
    expect(classifyLoss(status, 'Bad Request: No valid session ID provided', rules)).toBeUndefined();
  });

  it('400 "Bad Request: Unsupported protocol version"', () => {
    expect(classifyLoss(400, jsonRpcError(-32000, 'Bad Request: Unsupported protocol version'), rules)).toBeUndefined();
    expect(
      classifyLoss(
        400,
        jsonRpcError(-32000, 'Bad Request: Unsupported protocol version (supported versions: 2025-06-18, 2025-03-26)'),
        rules,
      ),
    ).toBeUndefined();
  });

  it('401 "Unauthorized"', () => {
    expect(classifyLoss(401, 'Unauthorized', rules)).toBeUndefined();
    expect(classifyLoss(401, JSON.stringify({ error: 'invalid_token', error_description: 'Unauthorized' }), rules)).toBeUndefined();
    expect(classifyLoss(401, jsonRpcError(-32001, 'Unauthorized'), rules)).toBeUndefined();
  });

  it('500 "Session not found" (500 is not a pattern status)', () => {
    expect(classifyLoss(500, 'Session not found', rules)).toBeUndefined();
    expect(classifyLoss(500, jsonRpcError(-32001, 'Session not found'), rules)).toBeUndefined();
  });

  it('406 and 415 errors', () => {
    expect(
      classifyLoss(406, jsonRpcError(-32000, 'Not Acceptable: Client must accept both application/json and text/event-stream'), rules),
    ).toBeUndefined();
    expect(classifyLoss(415, jsonRpcError(-32000, 'Unsupported Media Type: Content-Type must be application/json'), rules)).toBeUndefined();
    // Even with a session message, those statuses are not checked.
    expect(classifyLoss(406, 'Session not found', rules)).toBeUndefined();
    expect(classifyLoss(415, 'Session not found', rules)).toBeUndefined();
  });

  it('a 400 with an unrelated JSON-RPC message', () => {
    expect(classifyLoss(400, jsonRpcError(-32602, 'Invalid params: missing name', 2), rules)).toBeUndefined();
    expect(classifyLoss(400, jsonRpcError(-32700, 'Parse error'), rules)).toBeUndefined();
  });

  it('matches the JSON-RPC message, not other fields of the body', () => {
    // The message says nothing about sessions; data does. Only the message counts.
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      error: { code: -32602, message: 'Invalid params', data: 'Session not found' },
    });
    expect(classifyLoss(400, body, rules)).toBeUndefined();
  });
});

describe('configurable rules', () => {
  it('custom loss statuses make a status a loss whatever the body', () => {
    const rules: LossRules = { ...DEFAULT_LOSS_RULES, lossStatuses: new Set([404, 410]) };
    expect(classifyLoss(410, 'Gone', rules)).toBe('status_410');
    expect(classifyLoss(410, 'Gone', DEFAULT_LOSS_RULES)).toBeUndefined();
  });

  it('removing 404 from loss statuses makes 404 a plain answer unless it is a pattern status', () => {
    const noStatuses: LossRules = { ...DEFAULT_LOSS_RULES, lossStatuses: new Set() };
    expect(classifyLoss(404, 'Session not found', noStatuses)).toBeUndefined();
    const patternOnly: LossRules = { ...noStatuses, patternStatuses: new Set([404]) };
    expect(classifyLoss(404, 'Session not found', patternOnly)).toBe('session_not_found');
    expect(classifyLoss(404, 'Not Found', patternOnly)).toBeUndefined();
  });

  it('custom pattern statuses decide which bodies are read', () => {
    const rules: LossRules = { ...DEFAULT_LOSS_RULES, patternStatuses: new Set([500]) };
    expect(classifyLoss(500, 'Session not found', rules)).toBe('session_not_found');
    expect(classifyLoss(400, 'Session not found', rules)).toBeUndefined();
  });

  it('custom patterns are matched, and are the only patterns when defaults are left out', () => {
    const rules: LossRules = {
      ...DEFAULT_LOSS_RULES,
      patterns: [{ name: 'custom_1', pattern: /conversation gone/i }],
    };
    expect(classifyLoss(400, jsonRpcError(-32000, 'Conversation GONE, start again'), rules)).toBe('custom_1');
    expect(classifyLoss(400, 'Session not found', rules)).toBeUndefined();
  });

  it('returns the first matching pattern in order', () => {
    const rules: LossRules = {
      ...DEFAULT_LOSS_RULES,
      patterns: [{ name: 'custom_9', pattern: /session/i }, ...DEFAULT_LOSS_PATTERNS],
    };
    expect(classifyLoss(400, 'Session not found', rules)).toBe('custom_9');
  });
});

describe('mayBeLoss', () => {
  it('is true for loss and pattern statuses only', () => {
    expect(mayBeLoss(404, DEFAULT_LOSS_RULES)).toBe(true);
    for (const status of [400, 401, 403, 409, 410, 422, 503]) expect(mayBeLoss(status, DEFAULT_LOSS_RULES)).toBe(true);
    for (const status of [200, 202, 204, 301, 406, 415, 500, 502, 504]) {
      expect(mayBeLoss(status, DEFAULT_LOSS_RULES)).toBe(false);
    }
  });

  it('follows custom rules', () => {
    const rules: LossRules = { lossStatuses: new Set([418]), patternStatuses: new Set([500]), patterns: [] };
    expect(mayBeLoss(418, rules)).toBe(true);
    expect(mayBeLoss(500, rules)).toBe(true);
    expect(mayBeLoss(404, rules)).toBe(false);
    expect(mayBeLoss(400, rules)).toBe(false);
  });
});

describe('errorMessageOf', () => {
  it('returns the JSON-RPC error message', () => {
    expect(errorMessageOf(jsonRpcError(-32000, 'Bad Request: Server not initialized'))).toBe('Bad Request: Server not initialized');
  });

  it('returns the first message of a batch of errors', () => {
    const body = JSON.stringify([
      { jsonrpc: '2.0', id: 1, error: { code: 1, message: 'first' } },
      { jsonrpc: '2.0', id: 2, error: { code: 2, message: 'second' } },
    ]);
    expect(errorMessageOf(body)).toBe('first');
  });

  it('returns the raw text for plain text, non-error JSON and malformed errors', () => {
    expect(errorMessageOf('Bad Request: Missing session ID')).toBe('Bad Request: Missing session ID');
    expect(errorMessageOf('')).toBe('');
    const notError = JSON.stringify({ jsonrpc: '2.0', id: 1, result: {} });
    expect(errorMessageOf(notError)).toBe(notError);
    const numericMessage = JSON.stringify({ error: { code: 1, message: 42 } });
    expect(errorMessageOf(numericMessage)).toBe(numericMessage);
    const stringError = JSON.stringify({ error: 'Session not found' });
    expect(errorMessageOf(stringError)).toBe(stringError);
    expect(errorMessageOf('[]')).toBe('[]');
    expect(errorMessageOf('null')).toBe('null');
    expect(errorMessageOf('"just a string"')).toBe('"just a string"');
  });

  it('reads at most MAX_CLASSIFIED_BODY_CHARS characters', () => {
    const long = 'x'.repeat(MAX_CLASSIFIED_BODY_CHARS * 3);
    expect(errorMessageOf(long)).toHaveLength(MAX_CLASSIFIED_BODY_CHARS);
    // A session message past the limit is not seen.
    expect(classifyLoss(400, 'x'.repeat(MAX_CLASSIFIED_BODY_CHARS) + 'Session not found', DEFAULT_LOSS_RULES)).toBeUndefined();
    // One inside the limit still is, even though the truncated text is no longer valid JSON.
    const padded = jsonRpcError(-32001, 'Session not found') + ' '.repeat(MAX_CLASSIFIED_BODY_CHARS * 2);
    expect(classifyLoss(400, padded, DEFAULT_LOSS_RULES)).toBe('session_not_found');
  });
});

describe('loss classifier properties', () => {
  const status = fc.integer({ min: 0, max: 999 });
  const body = fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary' }),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.record({ code: fc.integer(), message: fc.string() }).map((error) => JSON.stringify({ jsonrpc: '2.0', id: null, error })),
  );

  it('classifyLoss never throws and returns undefined or a known signal', () => {
    const names = new Set<string>(DEFAULT_LOSS_PATTERNS.map((p) => p.name));
    fc.assert(
      fc.property(fc.integer(), body, (s, b) => {
        const signal = classifyLoss(s, b, DEFAULT_LOSS_RULES);
        if (signal !== undefined) expect(signal === `status_${s}` || names.has(signal)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('classifyLoss is undefined for every 2xx status', () => {
    fc.assert(
      fc.property(fc.integer({ min: 200, max: 299 }), body, (s, b) => {
        expect(classifyLoss(s, b, DEFAULT_LOSS_RULES)).toBeUndefined();
      }),
      { numRuns: 2000 },
    );
  });

  it('404 is a loss for every body', () => {
    fc.assert(
      fc.property(body, (b) => {
        expect(classifyLoss(404, b, DEFAULT_LOSS_RULES)).toBe('status_404');
      }),
    );
  });

  it('statuses outside the rules are never a loss', () => {
    fc.assert(
      fc.property(
        status.filter((s) => !mayBeLoss(s, DEFAULT_LOSS_RULES)),
        body,
        (s, b) => {
          expect(classifyLoss(s, b, DEFAULT_LOSS_RULES)).toBeUndefined();
        },
      ),
    );
  });

  it('errorMessageOf never throws and returns a string no longer than the limit', () => {
    fc.assert(
      fc.property(body, (b) => {
        const message = errorMessageOf(b);
        expect(typeof message).toBe('string');
        if (b.length <= MAX_CLASSIFIED_BODY_CHARS) expect(message.length).toBeLessThanOrEqual(b.length);
      }),
      { numRuns: 2000 },
    );
  });
});
