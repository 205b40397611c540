import { describe, expect, it } from 'vitest';
import { createCredentialBinding } from '../../src/session/binding.js';

const KEY = Buffer.alloc(32, 7);
const jwt = (claims: object) => `Bearer e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;

describe('credential binding: identity of opaque tokens', () => {
  const binding = createCredentialBinding(undefined, KEY);

  it('a JWT with a subject is its own identity: no separate identity digest', () => {
    const headers = { authorization: jwt({ iss: 'https://idp', sub: 'alice', exp: 1 }) };
    expect(binding.identityOf(headers)).toBeUndefined();
    // A refreshed JWT of the same subject still matches the session's credential digest.
    expect(binding.matches(binding.of(headers), { authorization: jwt({ iss: 'https://idp', sub: 'alice', exp: 2 }) })).toBe(true);
  });

  it('no credentials at all: no identity digest', () => {
    expect(binding.identityOf({})).toBeUndefined();
  });

  it('an opaque token: the credential digest changes with a refresh, the identity digest does not', () => {
    const before = { authorization: 'Bearer opaque-token-1' };
    const after = { authorization: 'Bearer opaque-token-2' };
    expect(binding.matches(binding.of(before), after)).toBe(false);
    const identity = binding.identityOf(before);
    expect(identity).toBeInstanceOf(Buffer);
    expect(binding.identityMatches(identity!, after)).toBe(true);
  });

  it('the identity of an opaque token never matches a JWT, nor a request without credentials', () => {
    const identity = binding.identityOf({ authorization: 'Bearer opaque' })!;
    expect(binding.identityMatches(identity, { authorization: jwt({ iss: 'https://idp', sub: 'alice' }) })).toBe(false);
    expect(binding.identityMatches(identity, {})).toBe(false);
  });

  it('a JWT without a subject is opaque to the binding', () => {
    const identity = binding.identityOf({ authorization: jwt({ iss: 'https://idp' }) });
    expect(identity).toBeInstanceOf(Buffer);
    expect(binding.identityMatches(identity!, { authorization: 'Bearer something-else' })).toBe(true);
  });

  it('digests depend on the key: another proxy secret never matches', () => {
    const other = createCredentialBinding(undefined, Buffer.alloc(32, 8));
    const identity = binding.identityOf({ authorization: 'Bearer a' })!;
    expect(other.identityMatches(identity, { authorization: 'Bearer a' })).toBe(false);
  });
});

describe('credential binding with an identity header', () => {
  const binding = createCredentialBinding('x-user-id', KEY);

  it('an opaque token refreshed under the same identity header matches the identity', () => {
    const identity = binding.identityOf({ authorization: 'Bearer t1', 'x-user-id': 'alice' })!;
    expect(binding.identityMatches(identity, { authorization: 'Bearer t2', 'x-user-id': 'alice' })).toBe(true);
  });

  it('another identity header value never matches, whatever the token', () => {
    const identity = binding.identityOf({ authorization: 'Bearer t1', 'x-user-id': 'alice' })!;
    expect(binding.identityMatches(identity, { authorization: 'Bearer t1', 'x-user-id': 'bob' })).toBe(false);
    expect(binding.identityMatches(identity, { authorization: 'Bearer t2' })).toBe(false);
  });

  it('the identity header alone (no Authorization): the credential digest is the identity', () => {
    expect(binding.identityOf({ 'x-user-id': 'alice' })).toBeUndefined();
  });
});
