import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '../../errors.ts';
import { ResourceTypes } from '../resource.ts';
import type { Resource } from '../resource.ts';
import { destinationRule, recordBatches, runStoreSuite, virtualService } from './common.case.ts';
import { MemoryStore } from './memory.ts';

runStoreSuite('MemoryStore', async () => {
  const store = new MemoryStore();
  return {
    store,
    write: async (rs) => void store.apply(rs),
    remove: async (type, ns, name) => void store.delete(type, ns, name),
  };
});

const VS = ResourceTypes.VirtualService;

test('MemoryStore: apply accepts a single resource; last of a repeated key wins', () => {
  const store = new MemoryStore();
  store.apply(virtualService('default', 'a'));
  const events = store.apply([virtualService('default', 'b', 'h1'), virtualService('default', 'b', 'h2')]);
  assert.equal(events.length, 1);
  assert.equal(events[0].kind, 'added');
  assert.deepEqual((store.get(VS, 'default', 'b')?.spec as { hosts: string[] }).hosts, ['h2']);
});

test('MemoryStore: replaceAll is one batch of adds, updates and deletes', () => {
  const store = new MemoryStore({ resources: [virtualService('default', 'keep'), virtualService('default', 'gone'), virtualService('default', 'change')] });
  assert.equal(store.revision, 1);
  const rec = recordBatches(store);
  store.replaceAll([virtualService('default', 'keep'), virtualService('default', 'change', 'x'), destinationRule('default', 'new')]);
  assert.equal(rec.batches.length, 1);
  assert.deepEqual(
    rec.batches[0].events.map((e) => `${e.kind} ${e.resource.metadata.name}`),
    ['added new', 'updated change', 'deleted gone'],
  );
  assert.equal(store.revision, 2);
  store.replaceAll(store.all());
  assert.equal(rec.batches.length, 1, 'replacing with the same content is silent');
});

test('MemoryStore: delete of a missing resource is silent and returns false', () => {
  const store = new MemoryStore();
  const rec = recordBatches(store);
  assert.equal(store.delete(VS, 'default', 'none'), false);
  assert.equal(rec.batches.length, 0);
  assert.equal(store.revision, 0);
  store.apply(virtualService('default', 'a'));
  assert.equal(store.delete(VS, 'default', 'a'), true);
  assert.deepEqual(store.types(), []);
});

test('MemoryStore: keeps a given creationTimestamp; stamps resourceVersion with the revision', () => {
  const base = virtualService('default', 'a');
  const given: Resource = { ...base, metadata: { ...base.metadata, creationTimestamp: '2020-01-01T00:00:00Z' } };
  const store = new MemoryStore({ now: () => Date.parse('2030-01-01T00:00:00.123Z') });
  store.apply(given);
  assert.equal(store.get(VS, 'default', 'a')?.metadata.creationTimestamp, '2020-01-01T00:00:00Z');
  store.apply(virtualService('default', 'b'));
  const b = store.get(VS, 'default', 'b');
  assert.equal(b?.metadata.creationTimestamp, '2030-01-01T00:00:00Z');
  assert.equal(b?.metadata.resourceVersion, '2');
  assert.equal(b?.metadata.generation, 1);
});

test('MemoryStore: a deleted then re-created resource gets a fresh creationTimestamp', () => {
  let now = Date.parse('2030-01-01T00:00:00Z');
  const store = new MemoryStore({ now: () => now });
  store.apply(virtualService('default', 'a'));
  store.delete(VS, 'default', 'a');
  now += 60_000;
  store.apply(virtualService('default', 'a'));
  assert.equal(store.get(VS, 'default', 'a')?.metadata.creationTimestamp, '2030-01-01T00:01:00Z');
});

test('MemoryStore: a throwing listener does not stop other listeners or the write', () => {
  const errors: unknown[] = [];
  const store = new MemoryStore({ onListenerError: (e) => errors.push(e) });
  store.watch(() => {
    throw new Error('boom');
  });
  const rec = recordBatches(store);
  store.apply(virtualService('default', 'a'));
  assert.equal(rec.batches.length, 1);
  assert.equal(errors.length, 1);
  assert.ok(store.get(VS, 'default', 'a'));
});

test('MemoryStore: writes from inside a listener are delivered after the current batch, in order', () => {
  const store = new MemoryStore();
  const order: number[] = [];
  store.watch((_events, revision) => {
    if (revision === 1) store.apply(virtualService('default', 'nested'));
  });
  store.watch((_events, revision) => order.push(revision));
  store.apply(virtualService('default', 'a'));
  assert.deepEqual(order, [1, 2]);
});

test('MemoryStore: the same listener subscribed twice is called twice and unsubscribed independently', () => {
  const store = new MemoryStore();
  let calls = 0;
  const l = (): void => void calls++;
  const off1 = store.watch(l);
  store.watch(l);
  store.apply(virtualService('default', 'a'));
  assert.equal(calls, 2);
  off1();
  store.apply(virtualService('default', 'b'));
  assert.equal(calls, 3);
});

test('MemoryStore: rejects resources without identity; writes after close throw STORE_CLOSED', async () => {
  const store = new MemoryStore();
  const bad = { ...virtualService('default', 'a'), metadata: { name: '', namespace: 'default', labels: {}, annotations: {} } };
  assert.throws(() => store.apply(bad), (e) => hasCode(e, 'STORE_INVALID_RESOURCE'));
  assert.equal(store.revision, 0);
  await store.close();
  assert.throws(() => store.apply(virtualService('default', 'a')), (e) => hasCode(e, 'STORE_CLOSED'));
  await store.close(); // idempotent
});
