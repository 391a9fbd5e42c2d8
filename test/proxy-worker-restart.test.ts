/**
 * Issue 18 finding 1, second half: a proxy worker that dies is replaced, with exponential
 * backoff while replacements keep dying young (a crash loop must not become a fork storm that
 * starves the worker still serving), and the primary logs why it died. Workers are killed from
 * outside here (SIGKILL): no request can crash one any more (test/proxy-hardening.test.ts).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, test } from 'node:test';
import { Cleanups, waitFor } from './support/processes.ts';
import { edgeVirtualService, exchange, startGatewayPair } from './support/gateway-pair.ts';

const cleanups = new Cleanups();
after(() => cleanups.run());

function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

test('a worker killed again and again is restarted with growing delays, the primary says why, the other worker keeps serving', { timeout: 120_000 }, async () => {
  const pair = await startGatewayPair(cleanups, {
    trellisArgs: ['--concurrency', '2'],
    files: { 'vs.yaml': edgeVirtualService('  - route: [{destination: {host: backend.default.svc.cluster.local, port: {number: 8080}}}]\n') },
  });
  const primary = pair.trellis.child.pid!;
  const [, victimSlot] = childPids(primary);
  let victim = victimSlot;
  const failures: string[] = [];
  for (let i = 0; i < 4; i++) {
    const before = new Set(childPids(primary));
    process.kill(victim, 'SIGKILL');
    // Connections the kernel queued on the dying worker's socket die with it (SO_REUSEPORT); after that, none go there.
    await waitFor('the killed worker gone', () => !childPids(primary).includes(victim), 10_000, 10);
    // While the victim's slot waits, the other worker answers everything (each request a new connection).
    for (let j = 0; j < 5; j++) {
      const r = await exchange(pair.trellis.port, `GET /during-${i}-${j} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 5000);
      if (r.statuses[0] !== 200) failures.push(`${i}/${j}: ${JSON.stringify(r.text.slice(0, 80))}`);
    }
    const gone = victim;
    victim = await waitFor(`replacement ${i + 1}`, () => {
      const now = childPids(primary);
      return now.length === 2 && !now.includes(gone) ? now.find((p) => !before.has(p)) : undefined;
    }, 30_000, 50);
  }
  assert.deepEqual(failures, []);
  const log = pair.trellis.output();
  const lines = log.split('\n').filter((l) => l.includes('proxy worker died'));
  assert.equal(lines.length, 4, log.slice(-3000));
  for (const l of lines) assert.match(l, /killed by SIGKILL/);
  // Each died young: no wait the first time, then 250, 500, 1000 ms.
  assert.deepEqual(lines.map((l) => Number(/"restartInMs":(\d+)/.exec(l)?.[1])), [0, 250, 500, 1000]);
  const after = await exchange(pair.trellis.port, 'GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 5000);
  assert.deepEqual(after.statuses, [200]);
});
