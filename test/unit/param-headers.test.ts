import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeParamValue,
  isParamHeaderRefusal,
  paramHeadersOf,
  paramHeaderValues,
  toolParamHeadersOf,
} from '../../src/mcp/param-headers.js';

function decode(value: string): string {
  const m = /^=\?base64\?(.*)\?=$/.exec(value);
  return m === null ? value : Buffer.from(m[1]!, 'base64').toString('utf8');
}

describe('Mcp-Param-* headers from x-mcp-header declarations', () => {
  it('finds declarations through properties chains only, with valid header names', () => {
    const schema = {
      type: 'object',
      'x-mcp-header': 'Root',
      properties: {
        region: { type: 'string', 'x-mcp-header': 'Region' },
        nested: { type: 'object', properties: { id: { type: 'integer', 'x-mcp-header': 'Id' } } },
        list: { type: 'array', items: { type: 'string', 'x-mcp-header': 'Item' } },
        bad: { type: 'string', 'x-mcp-header': 'has space' },
      },
    };
    expect(paramHeadersOf(schema)).toEqual([
      { path: ['region'], name: 'Region' },
      { path: ['nested', 'id'], name: 'Id' },
    ]);
    expect(
      toolParamHeadersOf({
        tools: [
          { name: 't', inputSchema: schema },
          { name: 'plain', inputSchema: { type: 'object' } },
        ],
      }),
    ).toEqual(new Map([['t', paramHeadersOf(schema)]]));
    expect(toolParamHeadersOf({ content: [] })).toBeUndefined();
  });

  it('mirrors primitive arguments, skips absent and non-primitive ones', () => {
    const declarations = [
      { path: ['a'], name: 'A' },
      { path: ['b'], name: 'B' },
      { path: ['c'], name: 'C' },
      { path: ['d', 'e'], name: 'E' },
    ];
    expect(paramHeaderValues(declarations, { a: 'x', b: false, c: { no: 1 }, d: { e: 2.5 } })).toEqual({
      'mcp-param-a': 'x',
      'mcp-param-b': 'false',
      'mcp-param-e': '2.5',
    });
    expect(paramHeaderValues(declarations, undefined)).toEqual({});
    expect(paramHeaderValues([{ path: ['__proto__'], name: 'P' }], JSON.parse('{"__proto__":"v"}'))).toEqual({ 'mcp-param-p': 'v' });
  });

  it('encodes any string so that it is a valid header value and decodes back to itself', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (value) => {
        const encoded = encodeParamValue(value);
        expect(encoded).toMatch(/^[\t\x20-\x7e]*$/);
        expect(encoded).toBe(encoded.trim());
        // Lone surrogates become U+FFFD in UTF-8, as anywhere else.
        expect(decode(encoded)).toBe(Buffer.from(value, 'utf8').toString('utf8'));
      }),
    );
    expect(encodeParamValue('eu-west')).toBe('eu-west');
    expect(encodeParamValue('')).toBe('=?base64??=');
    expect(encodeParamValue(' x')).not.toBe(' x');
  });

  it('knows the v2 server refusal of a call for its Mcp-Param headers', () => {
    expect(isParamHeaderRefusal({ code: -32020, message: 'm', data: { mismatch: { header: 'Mcp-Param-Region', body: 'b' } } })).toBe(true);
    expect(isParamHeaderRefusal({ code: -32020, data: { mismatch: { header: 'Mcp-Method' } } })).toBe(false);
    expect(isParamHeaderRefusal(undefined)).toBe(false);
  });
});
