import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { initializeOutcomeOf, messagesOf } from '../../src/mcp/initialize-result.js';

const result = {
  protocolVersion: '2025-03-26',
  capabilities: { tools: {} },
  serverInfo: { name: 'legacy', version: '0.0.1' },
};
const response = { jsonrpc: '2.0', id: 1, result };
const responseJson = JSON.stringify(response);
const notification = { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'hello' } };

const sse = (...events: string[]) => events.join('');
const event = (data: unknown, eventName = 'message') => `event: ${eventName}\ndata: ${JSON.stringify(data)}\n\n`;

describe('messagesOf', () => {
  it('reads one JSON message', () => {
    expect(messagesOf(responseJson, 'application/json')).toEqual([response]);
  });

  it('reads a JSON batch as its elements', () => {
    expect(messagesOf(JSON.stringify([response, notification]), 'application/json')).toEqual([response, notification]);
  });

  it('treats a missing content type as JSON', () => {
    expect(messagesOf(responseJson, undefined)).toEqual([response]);
  });

  it('returns no messages for a body that is not JSON', () => {
    expect(messagesOf('not json', 'application/json')).toEqual([]);
    expect(messagesOf('', 'application/json')).toEqual([]);
    // An SSE body labelled as JSON is not parsed as SSE.
    expect(messagesOf(event(response), 'application/json')).toEqual([]);
  });

  it('reads every event of an SSE body, skipping data that is not JSON', () => {
    const body = sse(event(notification), 'event: message\ndata: not json\n\n', event(response));
    expect(messagesOf(body, 'text/event-stream')).toEqual([notification, response]);
  });

  it('recognises the SSE media type with parameters and in any case', () => {
    expect(messagesOf(event(response), 'text/event-stream; charset=utf-8')).toEqual([response]);
    expect(messagesOf(event(response), 'Text/Event-Stream')).toEqual([response]);
  });

  it('joins multi-line data fields', () => {
    const body = 'event: message\ndata: {"jsonrpc":"2.0",\ndata: "id":1,"result":{}}\n\n';
    expect(messagesOf(body, 'text/event-stream')).toEqual([{ jsonrpc: '2.0', id: 1, result: {} }]);
  });

  it('ignores comments, ids and retry fields', () => {
    const body = `: keep-alive\n\nid: 17\nretry: 1000\nevent: message\ndata: ${responseJson}\n\n`;
    expect(messagesOf(body, 'text/event-stream')).toEqual([response]);
  });

  it('skips a byte order mark at the start of an SSE body', () => {
    expect(messagesOf(`\uFEFFdata: ${responseJson}\n\n`, 'text/event-stream')).toEqual([response]);
  });

  it('keeps the last event of a stream cut without its final blank line', () => {
    expect(messagesOf(`event: message\ndata: ${responseJson}\n`, 'text/event-stream')).toEqual([response]);
    expect(messagesOf(`event: message\ndata: ${responseJson}`, 'text/event-stream')).toEqual([response]);
  });
});

describe('initializeOutcomeOf', () => {
  it('reads the protocol version from a JSON body', () => {
    expect(initializeOutcomeOf(responseJson, 'application/json', 1)).toEqual({ protocolVersion: '2025-03-26', result });
  });

  it('reads the protocol version from a JSON body with a string id', () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 'init', result });
    expect(initializeOutcomeOf(body, 'application/json; charset=utf-8', 'init')).toEqual({ protocolVersion: '2025-03-26', result });
  });

  it('reads an SSE body', () => {
    expect(initializeOutcomeOf(`event: message\ndata: ${responseJson}\n\n`, 'text/event-stream', 1)).toEqual({
      protocolVersion: '2025-03-26',
      result,
    });
  });

  it('reads an SSE body whose response follows a notification event', () => {
    const body = sse(event(notification), event(response));
    expect(initializeOutcomeOf(body, 'text/event-stream', 1)).toEqual({ protocolVersion: '2025-03-26', result });
  });

  it('reads an SSE body with CRLF line endings', () => {
    const body = sse(event(notification), event(response)).replaceAll('\n', '\r\n');
    expect(body).toContain('\r\n\r\n');
    expect(initializeOutcomeOf(body, 'text/event-stream', 1)).toEqual({ protocolVersion: '2025-03-26', result });
  });

  it('reads an SSE body with CR-only line endings', () => {
    const body = event(response).replaceAll('\n', '\r');
    expect(initializeOutcomeOf(body, 'text/event-stream', 1)).toEqual({ protocolVersion: '2025-03-26', result });
  });

  it('reads an SSE stream cut without the final blank line', () => {
    expect(initializeOutcomeOf(`event: message\ndata: ${responseJson}\n`, 'text/event-stream', 1)).toEqual({
      protocolVersion: '2025-03-26',
      result,
    });
    expect(initializeOutcomeOf(`event: message\ndata: ${responseJson}`, 'text/event-stream', 1)).toEqual({
      protocolVersion: '2025-03-26',
      result,
    });
    expect(initializeOutcomeOf(`event: message\r\ndata: ${responseJson}\r\n`, 'text/event-stream', 1)).toEqual({
      protocolVersion: '2025-03-26',
      result,
    });
    expect(initializeOutcomeOf(`event: message\r\ndata: ${responseJson}\r`, 'text/event-stream', 1)).toEqual({
      protocolVersion: '2025-03-26',
      result,
    });
  });

  it('is undefined for a stream cut inside the JSON', () => {
    const cut = `event: message\ndata: ${responseJson.slice(0, responseJson.length - 5)}`;
    expect(initializeOutcomeOf(cut, 'text/event-stream', 1)).toBeUndefined();
  });

  it('is undefined when the response answers another id', () => {
    expect(initializeOutcomeOf(responseJson, 'application/json', 2)).toBeUndefined();
    // Same digits, different type: ids are compared strictly.
    expect(initializeOutcomeOf(responseJson, 'application/json', '1')).toBeUndefined();
    expect(initializeOutcomeOf(event(response), 'text/event-stream', 99)).toBeUndefined();
  });

  it('is undefined for an error response', () => {
    const error = JSON.stringify({ jsonrpc: '2.0', id: 1, error: { code: -32602, message: 'Unsupported protocol version' } });
    expect(initializeOutcomeOf(error, 'application/json', 1)).toBeUndefined();
    expect(initializeOutcomeOf(`event: message\ndata: ${error}\n\n`, 'text/event-stream', 1)).toBeUndefined();
  });

  it('is undefined when protocolVersion is missing or not a string', () => {
    const missing = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { capabilities: {}, serverInfo: result.serverInfo } });
    expect(initializeOutcomeOf(missing, 'application/json', 1)).toBeUndefined();
    const numeric = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { ...result, protocolVersion: 20250326 } });
    expect(initializeOutcomeOf(numeric, 'application/json', 1)).toBeUndefined();
    const nullResult = JSON.stringify({ jsonrpc: '2.0', id: 1, result: null });
    expect(initializeOutcomeOf(nullResult, 'application/json', 1)).toBeUndefined();
  });

  it('is undefined for empty, garbled or mislabelled bodies', () => {
    expect(initializeOutcomeOf('', 'application/json', 1)).toBeUndefined();
    expect(initializeOutcomeOf('', 'text/event-stream', 1)).toBeUndefined();
    expect(initializeOutcomeOf('<html>502 Bad Gateway</html>', 'text/html', 1)).toBeUndefined();
    expect(initializeOutcomeOf('null', 'application/json', 1)).toBeUndefined();
    expect(initializeOutcomeOf('[1, "x", null]', 'application/json', 1)).toBeUndefined();
  });

  it('finds the response for the id inside a JSON batch', () => {
    const body = JSON.stringify([notification, { jsonrpc: '2.0', id: 7, result: { protocolVersion: 'other' } }, response]);
    expect(initializeOutcomeOf(body, 'application/json', 1)).toEqual({ protocolVersion: '2025-03-26', result });
    expect(initializeOutcomeOf(body, 'application/json', 7)).toEqual({ protocolVersion: 'other', result: { protocolVersion: 'other' } });
  });
});

describe('initialize outcome properties', () => {
  const contentType = fc.option(
    fc.oneof(fc.constantFrom('application/json', 'text/event-stream', 'text/event-stream; charset=utf-8', ''), fc.string()),
    { nil: undefined },
  );
  const body = fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary' }),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc
      .array(fc.oneof(fc.constantFrom('event: message', 'data: ', 'id: 1', 'retry: x', ':', '', 'data: {"id":1}'), fc.string()))
      .chain((lines) => fc.constantFrom('\n', '\r\n', '\r').map((eol) => lines.join(eol))),
  );
  const id = fc.oneof(fc.integer(), fc.string());

  it('messagesOf never throws on arbitrary strings and always returns an array', () => {
    fc.assert(
      fc.property(body, contentType, (b, ct) => {
        expect(Array.isArray(messagesOf(b, ct))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('initializeOutcomeOf never throws and returns undefined or a string protocol version', () => {
    fc.assert(
      fc.property(body, contentType, id, (b, ct, i) => {
        const outcome = initializeOutcomeOf(b, ct, i);
        if (outcome !== undefined) expect(typeof outcome.protocolVersion).toBe('string');
      }),
      { numRuns: 2000 },
    );
  });

  it('finds any protocol version in a JSON or SSE answer with the right id', () => {
    fc.assert(
      fc.property(fc.string(), id, fc.boolean(), (version, i, asSse) => {
        const answer = JSON.stringify({ jsonrpc: '2.0', id: i, result: { ...result, protocolVersion: version } });
        const outcome = asSse
          ? initializeOutcomeOf(`event: message\ndata: ${answer}\n\n`, 'text/event-stream', i)
          : initializeOutcomeOf(answer, 'application/json', i);
        expect(outcome).toEqual({ protocolVersion: version, result: { ...result, protocolVersion: version } });
      }),
    );
  });
});
