/** The pure parts of idempotency keys: key rules, canonical JSON, the body hash, stored entries. */
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  checkIdempotencyKey,
  IDEMPOTENCY_HEADER,
  parseEntry,
  submissionHash,
} from '../src/producer/idempotency.js';

describe('checkIdempotencyKey', () => {
  it.each(['a', 'order-42', 'x'.repeat(200), 'with spaces inside', '~!@#$%^&*()_+{}|:"<>?'])('accepts %j', (key) => {
    expect(() => checkIdempotencyKey(key)).not.toThrow();
  });

  it.each([
    ['', 'must not be empty'],
    ['x'.repeat(201), 'at most 200'],
    ['tab\there', 'printable'],
    ['é', 'printable'],
    ['nul\u0000', 'printable'],
  ])('rejects %j with CNV_INVALID_IDEMPOTENCY_KEY naming the header', (key, reason) => {
    try {
      checkIdempotencyKey(key);
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({ code: 'CNV_INVALID_IDEMPOTENCY_KEY', statusCode: 400, field: IDEMPOTENCY_HEADER });
      expect((error as Error).message).toContain(reason);
    }
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every level and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });

  it('drops undefined properties like JSON.stringify, and writes undefined array items as null', () => {
    expect(canonicalJson({ a: undefined, b: [undefined, 1] })).toBe('{"b":[null,1]}');
  });

  it('escapes strings and keys as JSON does', () => {
    expect(canonicalJson({ 'k"ey': 'line\nbreak' })).toBe('{"k\\"ey":"line\\nbreak"}');
  });
});

describe('submissionHash', () => {
  it('is the same for equal submissions in any key order, and differs for any change', () => {
    const a = submissionHash({ type: 'sleep', kwargs: { duration: 1 }, priority: 2 });
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(submissionHash({ priority: 2, kwargs: { duration: 1 }, type: 'sleep' })).toBe(a);
    expect(submissionHash({ type: 'sleep', kwargs: { duration: 2 }, priority: 2 })).not.toBe(a);
    expect(submissionHash({ type: 'sleep', kwargs: { duration: 1 } })).not.toBe(a);
  });
});

describe('parseEntry', () => {
  const id = '11111111-2222-4333-8444-555555555555';

  it('reads a claim in progress', () => {
    expect(parseEntry(`abc ${id}`)).toEqual({ hash: 'abc', id, accepted: null });
  });

  it('reads a finished claim with its accepted body', () => {
    const accepted = { id, type: 'noop', queue: 'default', state: 'PENDING', eta: null, expires: null };
    expect(parseEntry(`abc ${id} ${JSON.stringify(accepted)}`)).toEqual({ hash: 'abc', id, accepted });
  });

  it('returns null for something it did not write', () => {
    expect(parseEntry('garbage')).toBeNull();
    expect(parseEntry(`abc ${id} {not json`)).toBeNull();
  });
});
