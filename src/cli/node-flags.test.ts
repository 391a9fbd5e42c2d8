import { test } from 'node:test';
import assert from 'node:assert/strict';
import { missingNodeFlags, ProxySemiSpaceMb } from './node-flags.ts';

test('trellis proxy gets a capped young generation unless the operator chose one', () => {
  assert.deepEqual(missingNodeFlags(['proxy', '--xds', 'x:1'], [], undefined), [`--max-semi-space-size=${ProxySemiSpaceMb}`]);
  assert.deepEqual(missingNodeFlags(['proxy'], ['--max-semi-space-size=64'], undefined), []);
  assert.deepEqual(missingNodeFlags(['proxy'], [], '--max-old-space-size=512 --max_semi_space_size=4'), []);
  assert.deepEqual(missingNodeFlags(['control'], [], undefined), []);
  assert.deepEqual(missingNodeFlags([], [], undefined), []);
});
