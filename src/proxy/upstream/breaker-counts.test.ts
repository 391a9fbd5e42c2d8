import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { LocalCounts, Requests, Retries, SharedCountTable, SlotAssigner, SlotCount, sharedMemory } from './breaker-counts.ts';
import { CircuitBreaker } from './circuit-breaker.ts';
import { skipUnlessAddon, skipUnlessLinux } from '../../../test/support/skip.ts';
import { defaultBreakers } from './cluster-config.ts';
import { newClusterStats } from './stats.ts';

test('local counts never go below zero', () => {
  const c = new LocalCounts();
  c.add(Requests, 2);
  c.add(Requests, -3);
  assert.equal(c.total(Requests), 0);
  c.add(Retries, 1);
  assert.equal(c.own(Retries), 1);
});

test('shared table: each worker writes its column, totals sum them, a dead worker is zeroed', () => {
  const table = new SharedCountTable(new ArrayBuffer(SharedCountTable.bytes(3)), 3);
  const w0 = table.counts(7, 0);
  const w2 = table.counts(7, 2);
  w0.add(Requests, 2);
  w2.add(Requests, 3);
  w2.add(Retries, 1);
  assert.equal(w0.total(Requests), 5);
  assert.equal(w0.own(Requests), 2);
  assert.equal(w2.total(Retries), 1);
  assert.equal(table.counts(8, 0).total(Requests), 0, 'slots are independent');
  assert.equal(table.slotTotal(7), 6);
  table.zeroColumn(2, [7]);
  assert.equal(w0.total(Requests), 2);
  w2.add(Requests, -1); // a late release after the zeroing
  assert.equal(w2.own(Requests), 0);
});

test('breakers in two workers over one shared table enforce one limit for the proxy', () => {
  const table = new SharedCountTable(new ArrayBuffer(SharedCountTable.bytes(2)), 2);
  const limits = { ...defaultBreakers, maxConnections: 1, maxPendingRequests: 1 };
  const a = new CircuitBreaker(limits, newClusterStats(), table.counts(0, 0));
  const b = new CircuitBreaker(limits, newClusterStats(), table.counts(0, 1));
  assert.equal(a.tryAcquireRequest(true), true, 'one active');
  assert.equal(b.tryAcquireRequest(true), true, 'one pending');
  assert.equal(a.tryAcquireRequest(true), false, 'over max pending in the other worker');
  assert.equal(b.tryAcquireRequest(true), false);
  a.releaseRequest(true);
  assert.equal(b.tryAcquireRequest(true), true, 'freed by the other worker');
  const retryLimits = { ...defaultBreakers, maxRetries: 1 };
  const ra = new CircuitBreaker(retryLimits, newClusterStats(), table.counts(1, 0));
  const rb = new CircuitBreaker(retryLimits, newClusterStats(), table.counts(1, 1));
  assert.equal(ra.tryAcquireRetry(), true);
  assert.equal(rb.tryAcquireRetry(), false);
  ra.releaseRetry();
  assert.equal(rb.tryAcquireRetry(), true);
});

test('slot assigner: a name keeps its slot; a removed name\'s slot is reused only once it is idle', () => {
  const table = new SharedCountTable(new ArrayBuffer(SharedCountTable.bytes(1)), 1);
  const slots = new SlotAssigner(table);
  const first = new Map(slots.assign(['a', 'b']));
  assert.deepEqual(new Map(slots.assign(['b', 'a'])), first);
  // Fill the table so the next name must reuse a retired slot.
  const many = Array.from({ length: SlotCount - 2 }, (_, i) => `c${i}`);
  slots.assign(['a', 'b', ...many]);
  table.counts(first.get('a')!, 0).add(Requests, 1); // 'a' still has a request in flight
  const after = new Map(slots.assign(['b', ...many, 'new']));
  assert.equal(after.get('new'), undefined, 'a busy slot is not handed out');
  table.counts(first.get('a')!, 0).add(Requests, -1);
  const later = new Map(slots.assign(['b', ...many, 'new']));
  assert.equal(later.get('new'), first.get('a'));
  assert.ok(slots.inUse().includes(first.get('b')!));
});

test('the addon maps one memfd in two processes: a write in one is read in the other', { skip: skipUnlessLinux('memfd') || skipUnlessAddon(typeof sharedMemory() === 'string' ? String(sharedMemory()) : undefined) }, () => {
  const mem = sharedMemory();
  if (typeof mem === 'string') return;
  const bytes = SharedCountTable.bytes(2);
  const fd = mem.createSharedFd(bytes);
  const mine = new SharedCountTable(mem.mapShared(fd, bytes), 2);
  mine.counts(3, 0).add(Requests, 4);
  const child = `
    import { SharedCountTable, sharedMemory, Requests } from ${JSON.stringify(new URL('./breaker-counts.ts', import.meta.url).href)};
    const mem = sharedMemory();
    const t = new SharedCountTable(mem.mapShared(3, ${bytes}), 2);
    const seen = t.counts(3, 1).total(Requests);
    t.counts(3, 1).add(Requests, 5);
    process.stdout.write(String(seen));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', child], { stdio: ['ignore', 'pipe', 'inherit', fd], encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0);
  assert.equal(r.stdout, '4', 'the child saw the parent\'s count');
  assert.equal(mine.counts(3, 0).total(Requests), 9, 'the parent sees the child\'s count');
});
