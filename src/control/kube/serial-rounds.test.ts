import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SerialRounds } from './serial-rounds.ts';

test('SerialRounds: one round at a time; requests during a round make exactly one more; pause can stop repeating', async () => {
  let rounds = 0;
  let concurrent = 0;
  let release: () => void = () => {};
  const r = new SerialRounds(async () => {
    rounds++;
    concurrent++;
    assert.equal(concurrent, 1);
    await new Promise<void>((res) => (release = res));
    concurrent--;
  });
  const first = r.run();
  const second = r.run();
  const third = r.run();
  assert.equal(second, first, 'callers share the work in progress');
  assert.equal(third, first);
  await new Promise((res) => setImmediate(res));
  release();
  await new Promise((res) => setImmediate(res));
  release();
  await first;
  assert.equal(rounds, 2, 'three calls while running: one more round, not three');
  assert.equal(r.current, undefined);

  let n = 0;
  const stopping = new SerialRounds(async () => {
    n++;
    stopping.repeat();
  }, async () => n < 3);
  await stopping.run();
  assert.equal(n, 3, 'repeat() from inside a round, until pause says stop');
});
