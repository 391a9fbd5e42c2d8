import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeadlineList, type DeadlineEntry } from './deadline-list.ts';

function entry(fired: string[], name: string): DeadlineEntry & { firedAt?: number } {
  const e: DeadlineEntry & { firedAt?: number } = {
    deadlinePrev: undefined, deadlineNext: undefined, deadlineList: undefined, deadlineFrom: 0,
    onDeadline() {
      e.firedAt = performance.now();
      fired.push(name);
    },
  };
  return e;
}

test('entries fire once, no earlier than their own deadline, oldest first; stopped ones never', async () => {
  const list = new DeadlineList(40);
  const fired: string[] = [];
  const a = entry(fired, 'a');
  const b = entry(fired, 'b');
  const c = entry(fired, 'c');
  list.start(a);
  await sleep(15);
  list.start(b);
  list.start(c);
  list.stop(c);
  await sleep(80);
  assert.deepEqual(fired, ['a', 'b']);
  assert.ok(a.firedAt! - a.deadlineFrom >= 40);
  assert.ok(b.firedAt! - b.deadlineFrom >= 40);
  assert.equal(a.deadlineList, undefined);
});

test('restarting a wait (activity) moves its deadline; an entry fired can restart others', async () => {
  const list = new DeadlineList(200);
  const fired: string[] = [];
  const a = entry(fired, 'a');
  const b = entry(fired, 'b');
  list.start(a);
  list.start(b);
  b.onDeadline = () => {
    fired.push('b');
    list.start(a);
  };
  for (let i = 0; i < 15; i++) {
    await sleep(20);
    list.start(a);
  }
  // a kept active: only b fired (and restarted a once more).
  assert.deepEqual(fired, ['b']);
  await sleep(300);
  assert.deepEqual(fired, ['b', 'a']);
});
