import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimitedLog } from './rate-limited-log.ts';

test('the first event of a kind is logged, then one line per interval with the count left out', () => {
  const lines: { msg: string; fields?: Record<string, unknown> }[] = [];
  let now = 0;
  const log = new RateLimitedLog((_l, msg, fields) => lines.push({ msg, fields }), 1000, () => now);
  for (let i = 0; i < 500; i++) log.event('protocol_error', 'info', 'bad request', { i });
  log.event('internal_error', 'error', 'bug');
  assert.deepEqual(lines.map((l) => l.msg), ['bad request', 'bug']);
  now = 1500;
  log.event('protocol_error', 'info', 'bad request', { i: 500 });
  assert.equal(lines.length, 3);
  assert.deepEqual(lines[2].fields, { i: 500, kind: 'protocol_error', suppressedSinceLast: 499 });
  now = 1600;
  log.event('protocol_error', 'info', 'bad request');
  assert.equal(lines.length, 3);
});

test('without a log function nothing happens', () => {
  new RateLimitedLog(undefined).event('x', 'error', 'y');
});
