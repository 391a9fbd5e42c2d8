/**
 * Issue 18 finding 1, second half: a proxy worker that dies is replaced, with exponential
 * backoff while replacements keep dying young (a crash loop must not become a fork storm that
 * starves the worker still serving), and the primary logs why it died. Workers are killed from
 * outside here (SIGKILL): no request can crash one any more (test/proxy-hardening.test.ts).
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { after, test } from 'node:test';
import { Cleanups, waitFor } from './support/processes.ts';
import { edgeVirtualService, exchange, startGatewayPair } from './support/gateway-pair.ts';
import { findTool } from './support/tools.ts';
import { skipUnlessTools } from './support/skip.ts';

const run = promisify(execFile);

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

test('the issue\'s load: 100 rps with 5 `GET / HTTP/2.0` requests a second on two workers: no failed request, no worker lost', { skip: skipUnlessTools('fortio'), timeout: 120_000 }, async (t) => {
  const pair = await startGatewayPair(cleanups, {
    trellisArgs: ['--concurrency', '2'],
    files: { 'vs.yaml': edgeVirtualService('  - route: [{destination: {host: backend.default.svc.cluster.local, port: {number: 8080}}}]\n') },
  });
  const workers = childPids(pair.trellis.child.pid!).sort();
  const load = run(findTool('fortio')!, ['load', '-qps', '100', '-c', '4', '-t', '6s', '-uniform', '-nocatchup', '-keepalive=true', '-json', '-',
    `http://127.0.0.1:${pair.trellis.port}/steady`], { maxBuffer: 16 * 1024 * 1024, timeout: 60_000 });
  const answers: number[] = [];
  const attack = (async () => {
    for (let i = 0; i < 30; i++) {
      const r = await exchange(pair.trellis.port, 'GET / HTTP/2.0\r\nHost: x\r\n\r\n', 2000);
      answers.push(r.statuses[0] ?? 0);
      await new Promise((res) => setTimeout(res, 200));
    }
  })();
  const [{ stdout }] = await Promise.all([load, attack]);
  const result = JSON.parse(stdout) as { RetCodes: Record<string, number>; DurationHistogram: { Count: number } };
  const failed = result.DurationHistogram.Count - (result.RetCodes['200'] ?? 0);
  t.diagnostic(`${result.DurationHistogram.Count} requests, ${failed} failed; the 30 HTTP/2.0 request lines got ${JSON.stringify([...new Set(answers)])}`);
  assert.equal(failed, 0, JSON.stringify(result.RetCodes));
  assert.deepEqual([...new Set(answers)], [426]);
  assert.deepEqual(childPids(pair.trellis.child.pid!).sort(), workers, 'the same two workers serve');
});
