import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describe, expected, UsageError } from '../../src/util/errors.js';

test("expected() builds a UsageError in sharp's shape", () => {
  const err = expected('positive integer', '--batch', -3);
  assert.ok(err instanceof UsageError);
  assert.ok(err instanceof Error);
  assert.equal(err.name, 'UsageError');
  assert.equal(err.message, 'Expected positive integer for --batch but received -3');
});

test('describe() quotes strings and shortens long values', () => {
  assert.equal(describe('vgg'), '"vgg"');
  assert.equal(describe(''), '""');
  assert.equal(describe(undefined), 'undefined');
  assert.equal(describe(NaN), 'NaN');
  assert.equal(describe(5n), '5n');
  assert.equal(describe([1, 2]), '[1,2]');
  const long = describe('x'.repeat(200));
  assert.equal(long.length, 80);
  assert.ok(long.endsWith('...'));
  const cyclic: { self?: unknown } = {};
  cyclic.self = cyclic;
  assert.equal(describe(cyclic), '[object Object]');
});
