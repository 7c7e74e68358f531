import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertStreamName, isValidStreamName, parseSeq } from '../../../src/domain/stream-name.ts';
import { GatewayError } from '../../../src/errors/gateway-error.ts';

test('stream names of 1-64 characters of [A-Za-z0-9_-] are accepted', () => {
  for (const name of ['a', 'stream-1', 'My_Stream', 'x'.repeat(64), '0']) assert.equal(isValidStreamName(name), true, name);
});

test('slashes, dots, traversal, NUL, percent-escapes, spaces and overlong names are refused', () => {
  for (const name of ['', '..', 'a/b', 'a.b', '../etc', 'a\0b', 'a%2Fb', 'a b', 'x'.repeat(65), 'ü', undefined, 42]) {
    assert.equal(isValidStreamName(name), false, JSON.stringify(name));
  }
});

test('a refused stream key is not echoed in the error message', () => {
  assert.throws(() => assertStreamName('secret/../key', 'stream key'), (e: GatewayError) => e.code === 'INVALID_NAME' && e.status === 400 && !e.message.includes('secret'));
  assert.throws(() => assertStreamName('a/b', 'manifest ID'), (e: GatewayError) => e.message.includes('"a/b"'));
});

test('sequence numbers are canonical non-negative decimal integers', () => {
  assert.equal(parseSeq('0'), 0);
  assert.equal(parseSeq('42'), 42);
  for (const bad of ['', '-1', '01', '1.5', '1e3', ' 1', '99999999999', 'abc']) assert.equal(parseSeq(bad), undefined, bad);
});
