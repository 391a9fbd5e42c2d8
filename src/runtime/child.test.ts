import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { skipUnlessLinux } from '../../test/support/skip.ts';
import { alive, procStat, stopGroup } from './child.ts';
import { sleep } from './wait.ts';

/** Pids in process group `pgid` whose state is zombie. */
function zombiesIn(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    const st = procStat(name);
    if (st !== undefined && st[0] === 'Z' && st[1] === pgid) out.push(Number(name));
  }
  return out;
}

test('a zombie is not alive, and a group left with only zombies counts as stopped', { skip: skipUnlessLinux('reads /proc') }, async () => {
  // `sleep 0` exits at once; its parent becomes `sleep 60` (exec), which never reaps it: a zombie
  // in the group for as long as the group lives, as orphans are where PID 1 does not reap.
  const child = spawn('sh', ['-c', 'sleep 0 & exec sleep 60'], { detached: true, stdio: 'ignore' });
  const pgid = child.pid!;
  let zombies: number[] = [];
  for (let i = 0; i < 100 && zombies.length === 0; i++) {
    await sleep(20);
    zombies = zombiesIn(pgid);
  }
  assert.equal(zombies.length, 1, 'the exited `sleep 0` is a zombie');
  assert.equal(alive(zombies[0]), false);
  assert.equal(alive(pgid), true);
  const t0 = Date.now();
  await stopGroup(pgid, 60_000, () => child.exitCode !== null || child.signalCode !== null);
  assert.ok(Date.now() - t0 < 30_000, 'stopGroup returned once only zombies could remain, not after the 60 s grace');
  assert.equal(alive(pgid), false);
});
