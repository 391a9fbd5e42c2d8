import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keepHeaderLines } from './header-lines.ts';
import type { HeaderMap } from './types.ts';

test('header lines: a field on several lines becomes their list; single-value fields and absent ones stay as they are', () => {
  const h: HeaderMap = { 'x-r1': 'up-1, up-2', 'x-one': 'v', 'content-type': 'a', 'set-cookie': ['a=1', 'b=2'] };
  keepHeaderLines(h, ['X-R1', 'up-1', 'x-r1', 'up-2', 'x-one', 'v', 'content-type', 'a', 'content-type', 'b', 'set-cookie', 'a=1', 'set-cookie', 'b=2', 'x-dropped', '1', 'x-dropped', '2']);
  assert.deepEqual(h, { 'x-r1': ['up-1', 'up-2'], 'x-one': 'v', 'content-type': 'a', 'set-cookie': ['a=1', 'b=2'] });
});

test('header lines over HTTP/2: node kept the first line of user-agent and the like, the raw list has them all; cookie stays joined', () => {
  const h: HeaderMap = { 'user-agent': 'a', cookie: 'x=1; y=2' };
  keepHeaderLines(h, ['user-agent', 'a', 'user-agent', 'b', 'cookie', 'x=1', 'cookie', 'y=2'], true);
  assert.deepEqual(h, { 'user-agent': ['a', 'b'], cookie: 'x=1; y=2' });
});
