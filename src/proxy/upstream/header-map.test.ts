import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasAnyField, withoutFields } from './header-map.ts';

test('withoutFields copies the other fields in order, repeated values as lists, and leaves the source alone', () => {
  const h = { host: 'a', 'x-b': ['1', '2'], 'x-envoy-attempt-count': '1', 'x-c': 'c' };
  const out = withoutFields(h, ['x-envoy-attempt-count', 'x-absent']);
  assert.deepEqual(Object.entries(out), [['host', 'a'], ['x-b', ['1', '2']], ['x-c', 'c']]);
  assert.equal(h['x-envoy-attempt-count'], '1');
  assert.notEqual(out, h);
});

test('hasAnyField sees own fields only', () => {
  assert.equal(hasAnyField({ a: '1', b: '2' }, ['c', 'b']), true);
  assert.equal(hasAnyField({ a: '1' }, ['c', 'constructor']), false);
});
