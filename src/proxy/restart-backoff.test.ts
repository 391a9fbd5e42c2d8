import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RestartBackoff } from './restart-backoff.ts';

test('a worker dying young again and again waits longer each time, up to the cap; one that lived long restarts at once', () => {
  const b = new RestartBackoff({ baseMs: 250, maxMs: 4000, stableMs: 30_000 });
  const delays = Array.from({ length: 8 }, () => b.next(0, 100).delayMs);
  assert.deepEqual(delays, [0, 250, 500, 1000, 2000, 4000, 4000, 4000]);
  assert.deepEqual(b.next(0, 60_000), { delayMs: 0, inARow: 1 });
  assert.deepEqual(b.next(0, 10), { delayMs: 250, inARow: 2 });
  // Slots are counted apart.
  assert.deepEqual(b.next(1, 10), { delayMs: 0, inARow: 1 });
});
