import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keepHeaderLines } from './header-lines.ts';
import type { HeaderMap } from './types.ts';

test('header lines: a field on several lines becomes their list; single-value fields and absent ones stay as they are', () => {
  const h: HeaderMap = { 'x-r1': 'up-1, up-2', 'x-one': 'v', 'content-type': 'a', 'set-cookie': ['a=1', 'b=2'] };
  keepHeaderLines(h, ['X-R1', 'up-1', 'x-r1', 'up-2', 'x-one', 'v', 'content-type', 'a', 'content-type', 'b', 'set-cookie', 'a=1', 'set-cookie', 'b=2', 'x-dropped', '1', 'x-dropped', '2']);
  assert.deepEqual(h, { 'x-r1': ['up-1', 'up-2'], 'x-one': 'v', 'content-type': 'a', 'set-cookie': ['a=1', 'b=2'] });
});
