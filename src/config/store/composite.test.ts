import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResourceTypes } from '../resource.ts';
import { destinationRule, recordBatches, runStoreSuite, virtualService } from './common.case.ts';
import { CompositeStore } from './composite.ts';
import { MemoryStore } from './memory.ts';

runStoreSuite('CompositeStore(memory, memory)', async () => {
  const first = new MemoryStore();
  const second = new MemoryStore();
  const store = new CompositeStore([first, second]);
  return {
    store,
    write: async (rs) => void first.apply(rs),
    remove: async (type, ns, name) => void first.delete(type, ns, name),
  };
});

const VS = ResourceTypes.VirtualService;

test('CompositeStore: merges sources; the earlier source wins a duplicate, with a diagnostic', async () => {
  const files = new MemoryStore({ resources: [virtualService('default', 'reviews', 'from-files')] });
  const runtime = new MemoryStore({ resources: [virtualService('default', 'reviews', 'from-runtime'), destinationRule('default', 'reviews')] });
  const store = new CompositeStore([
    { store: files, name: 'files' },
    { store: runtime, name: 'runtime' },
  ]);
  await store.ready();
  assert.deepEqual((store.get(VS, 'default', 'reviews')?.spec as { hosts: string[] }).hosts, ['from-files']);
  assert.ok(store.get(ResourceTypes.DestinationRule, 'default', 'reviews'));
  const dups = store.diagnostics().filter((d) => d.code === 'DUPLICATE_RESOURCE');
  assert.equal(dups.length, 1);
  assert.match(dups[0].message, /VirtualService default\/reviews is defined in both files and runtime; using files/);
  await store.close();
});

test('CompositeStore: a later source shows through once the earlier one drops the key; shadowed changes are silent', async () => {
  const a = new MemoryStore({ resources: [virtualService('default', 'r', 'a')] });
  const b = new MemoryStore({ resources: [virtualService('default', 'r', 'b')] });
  const store = new CompositeStore([a, b]);
  const rec = recordBatches(store);
  b.apply(virtualService('default', 'r', 'b2'));
  assert.equal(rec.batches.length, 0, 'a change to a shadowed definition emits nothing');
  a.delete(VS, 'default', 'r');
  assert.equal(rec.batches.length, 1);
  assert.equal(rec.batches[0].events[0].kind, 'updated');
  assert.deepEqual((store.get(VS, 'default', 'r')?.spec as { hosts: string[] }).hosts, ['b2']);
  assert.equal(store.diagnostics().length, 0);
  b.delete(VS, 'default', 'r');
  assert.equal(rec.batches.length, 2);
  assert.equal(rec.batches[1].events[0].kind, 'deleted');
  assert.deepEqual(store.types(), []);
  await store.close();
});

test('CompositeStore: one child batch is one composite batch; relays child metadata', async () => {
  const a = new MemoryStore();
  const b = new MemoryStore();
  const store = new CompositeStore([a, b]);
  const rec = recordBatches(store);
  b.apply([virtualService('default', 'x'), virtualService('default', 'y'), destinationRule('default', 'x')]);
  assert.equal(rec.batches.length, 1);
  assert.equal(rec.batches[0].events.length, 3);
  assert.equal(store.get(VS, 'default', 'x'), b.get(VS, 'default', 'x'), 'same frozen object as the child holds');
  await store.close();
});

test('CompositeStore: close closes its sources unless told not to, and stops relaying', async () => {
  const a = new MemoryStore();
  const store = new CompositeStore([a], { closeSources: false });
  await store.close();
  a.apply(virtualService('default', 'late'));
  assert.equal(store.get(VS, 'default', 'late'), undefined);
  const owned = new MemoryStore();
  await new CompositeStore([owned]).close();
  assert.throws(() => owned.apply(virtualService('default', 'x')), /write after close/);
});

test('CompositeStore: ready rejects when a source fails to become ready', async () => {
  const failing = {
    ...new MemoryStore(),
    list: () => [],
    get: () => undefined,
    types: () => [],
    watch: () => () => {},
    diagnostics: () => [],
    rejected: () => new Map(),
    watchDiagnostics: () => () => {},
    revision: 0,
    ready: () => Promise.reject(new Error('nope')),
    close: async () => {},
  };
  const store = new CompositeStore([failing]);
  await assert.rejects(store.ready(), /nope/);
  await store.close();
});
