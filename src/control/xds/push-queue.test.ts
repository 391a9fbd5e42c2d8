/**
 * PushQueue on node:test's mock clock (setTimeout and Date): the debounce and maxDelay rules are
 * checked to the millisecond, and a loaded machine cannot stretch a sleep past the quiet time.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PushQueue } from './push-queue.ts';

test('a burst of triggers becomes one flush after the quiet time, with every reason', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const flushes: string[][] = [];
  const q = new PushQueue({ debounceMs: 30, maxDelayMs: 1000, flush: (r) => flushes.push(r) });
  q.trigger('a');
  t.mock.timers.tick(10);
  q.trigger('b');
  t.mock.timers.tick(10);
  q.trigger('c');
  t.mock.timers.tick(29);
  assert.equal(flushes.length, 0, 'no flush before 30 ms of quiet');
  t.mock.timers.tick(1);
  assert.deepEqual(flushes, [['a', 'b', 'c']]);
  q.close();
});

test('a steady trickle still flushes by maxDelay', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const flushes: number[] = [];
  const start = Date.now();
  const q = new PushQueue({ debounceMs: 40, maxDelayMs: 100, flush: () => flushes.push(Date.now() - start) });
  // A trigger every 15 ms never leaves 40 ms of quiet: only maxDelay can flush.
  // The clock moves 1 ms at a time so each flush is stamped with the millisecond it fired.
  for (let ms = 0; ms < 300; ms++) {
    if (ms % 15 === 0) q.trigger(`t${ms}`);
    t.mock.timers.tick(1);
  }
  assert.deepEqual(flushes, [100, 205], '100 ms after the first trigger of each burst (the second starts at 105)');
  q.close();
});

test('flushNow pushes at once; close cancels what is pending and ignores later triggers', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const flushes: string[][] = [];
  const q = new PushQueue({ debounceMs: 1000, flush: (r) => flushes.push(r) });
  q.trigger('x');
  assert.equal(q.pending, true);
  q.flushNow();
  assert.deepEqual(flushes, [['x']]);
  q.trigger('y');
  q.close();
  q.trigger('z');
  t.mock.timers.tick(2000);
  assert.deepEqual(flushes, [['x']]);
  assert.equal(q.pending, false);
});
