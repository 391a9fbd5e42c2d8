import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PushQueue } from './push-queue.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a burst of triggers becomes one flush after the quiet time, with every reason', async () => {
  const flushes: string[][] = [];
  const q = new PushQueue({ debounceMs: 30, maxDelayMs: 1000, flush: (r) => flushes.push(r) });
  q.trigger('a');
  await sleep(10);
  q.trigger('b');
  await sleep(10);
  q.trigger('c');
  assert.equal(flushes.length, 0);
  await sleep(60);
  assert.deepEqual(flushes, [['a', 'b', 'c']]);
  q.close();
});

test('a steady trickle still flushes by maxDelay', async () => {
  const flushes: number[] = [];
  const start = Date.now();
  const q = new PushQueue({ debounceMs: 40, maxDelayMs: 100, flush: () => flushes.push(Date.now() - start) });
  for (let i = 0; i < 12; i++) {
    q.trigger(`t${i}`);
    await sleep(15);
  }
  assert.ok(flushes.length >= 1, 'flushed during the trickle');
  assert.ok(flushes[0] < 160, `first flush at ${flushes[0]} ms`);
  q.close();
});

test('flushNow pushes at once; close cancels what is pending and ignores later triggers', async () => {
  const flushes: string[][] = [];
  const q = new PushQueue({ debounceMs: 1000, flush: (r) => flushes.push(r) });
  q.trigger('x');
  assert.equal(q.pending, true);
  q.flushNow();
  assert.deepEqual(flushes, [['x']]);
  q.trigger('y');
  q.close();
  q.trigger('z');
  await sleep(20);
  assert.deepEqual(flushes, [['x']]);
  assert.equal(q.pending, false);
});
