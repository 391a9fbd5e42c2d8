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

test('header lines: fields each on one line leave the header object as it is (the common case, checked without allocating)', () => {
  const values: HeaderMap = { host: 'a', 'user-agent': 'fortio', 'x-request-id': 'r1', te: 'trailers' };
  const h: HeaderMap = { ...values };
  keepHeaderLines(h, ['Host', 'a', 'User-Agent', 'fortio', 'x-request-id', 'r1', 'TE', 'trailers, deflate']);
  assert.deepEqual(h, values);
  // A value the proxy changed (te) does not hide a later field on two lines.
  const joined: HeaderMap = { te: 'trailers', 'x-a': '1, 2' };
  keepHeaderLines(joined, ['te', 'trailers, deflate', 'x-a', '1', 'x-a', '2']);
  assert.deepEqual(joined, { te: 'trailers', 'x-a': ['1', '2'] });
  // Same value on two lines: node's joined value differs from each line.
  const same: HeaderMap = { 'x-a': 'v, v' };
  keepHeaderLines(same, ['x-a', 'v', 'x-a', 'v']);
  assert.deepEqual(same, { 'x-a': ['v', 'v'] });
  // Over HTTP/2 node keeps the first of two equal user-agent lines: still two lines.
  const h2: HeaderMap = { 'user-agent': 'raw-h2', 'content-type': 'text/plain' };
  keepHeaderLines(h2, ['user-agent', 'raw-h2', 'user-agent', 'raw-h2', 'content-type', 'text/plain'], true);
  assert.deepEqual(h2, { 'user-agent': ['raw-h2', 'raw-h2'], 'content-type': 'text/plain' });
});
