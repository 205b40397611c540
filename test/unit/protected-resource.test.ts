import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { metadataPathOf, metadataUrlOf, withResource, withResourceMetadata } from '../../src/mcp/protected-resource.js';

describe('protected-resource metadata under the public URL', () => {
  it('derives the metadata path as RFC 9728 does: the well-known segment before the resource path', () => {
    expect(metadataPathOf(new URL('https://mcp.example.com/mcp'))).toBe('/.well-known/oauth-protected-resource/mcp');
    expect(metadataPathOf(new URL('https://mcp.example.com/'))).toBe('/.well-known/oauth-protected-resource');
    expect(metadataPathOf(new URL('https://mcp.example.com/a/b/'))).toBe('/.well-known/oauth-protected-resource/a/b');
    expect(metadataUrlOf(new URL('http://127.0.0.1:8080/mcp'))).toBe('http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp');
  });

  it('rewrites resource_metadata in a challenge, quoted or not, and nothing else', () => {
    const url = 'https://proxy/.well-known/oauth-protected-resource/mcp';
    expect(
      withResourceMetadata(
        'Bearer error="invalid_token", error_description="Token has expired", resource_metadata="http://10.0.0.5:3000/.well-known/oauth-protected-resource/mcp"',
        url,
      ),
    ).toBe(`Bearer error="invalid_token", error_description="Token has expired", resource_metadata="${url}"`);
    expect(withResourceMetadata('Bearer resource_metadata=http://internal/x, scope="a b"', url)).toBe(
      `Bearer resource_metadata="${url}", scope="a b"`,
    );
    expect(withResourceMetadata('Bearer realm="x", error="invalid_token"', url)).toBe('Bearer realm="x", error="invalid_token"');
    expect(withResourceMetadata('Bearer resource_metadata="a\\"b"', url)).toBe(`Bearer resource_metadata="${url}"`);
  });

  it('never changes a challenge without resource_metadata (property)', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        fc.pre(!/resource_metadata/i.test(text));
        expect(withResourceMetadata(text, 'https://p/m')).toBe(text);
      }),
    );
  });

  it('sets resource in the metadata document and keeps every other member', () => {
    const upstream = {
      resource: 'http://10.0.0.5:3000/mcp',
      authorization_servers: ['https://idp.example.com'],
      scopes_supported: ['mcp'],
    };
    expect(JSON.parse(withResource(JSON.stringify(upstream), 'https://proxy/mcp')!)).toEqual({
      ...upstream,
      resource: 'https://proxy/mcp',
    });
    expect(withResource('not json', 'https://proxy/mcp')).toBeUndefined();
    expect(withResource('[1]', 'https://proxy/mcp')).toBeUndefined();
  });
});
