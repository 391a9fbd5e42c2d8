/**
 * The shared ConfigStore suite (hono's `common.case.test.ts` idea): every implementation runs
 * the same behavioural tests through a small harness that knows how to write to it. It covers
 * ordering of list/get/types, the namespace filter, batching of watch events, unsubscribe,
 * revision counting, silence on identical re-writes, and creationTimestamp/generation bookkeeping.
 * Resources used are valid Istio objects so file-backed stores can round-trip them through YAML.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResourceTypes } from '../resource.ts';
import type { Resource, ResourceType } from '../resource.ts';
import type { ConfigStore, StoreEvent } from './types.ts';

/** What a store implementation provides to the suite. */
export interface StoreHarness {
  readonly store: ConfigStore;
  /** Adds/updates these resources as ONE change (one batch); resolves once the store has processed it. */
  write(resources: readonly Resource[]): Promise<void>;
  /** Removes one resource; resolves once the store has processed it. */
  remove(type: ResourceType, namespace: string, name: string): Promise<void>;
  /** Waits long enough for any late (spurious) batch to show up; default: nothing to wait for. */
  settle?(): Promise<void>;
  /** Releases the harness (temp dirs); the suite closes the store itself. */
  cleanup?(): Promise<void>;
}

/** A valid VirtualService resource as a store would hold it. */
export function virtualService(namespace: string, name: string, host = name, labels: Record<string, string> = {}): Resource {
  return Object.freeze({
    type: ResourceTypes.VirtualService,
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: Object.freeze({ name, namespace, labels: Object.freeze({ ...labels }), annotations: Object.freeze({}) }),
    spec: Object.freeze({ hosts: [host], http: [{ route: [{ destination: { host } }] }] }),
    source: Object.freeze({ file: '<memory>', line: 1 }),
  });
}

/** A valid DestinationRule resource as a store would hold it. */
export function destinationRule(namespace: string, name: string, host = name): Resource {
  return Object.freeze({
    type: ResourceTypes.DestinationRule,
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: Object.freeze({ name, namespace, labels: Object.freeze({}), annotations: Object.freeze({}) }),
    spec: Object.freeze({ host }),
    source: Object.freeze({ file: '<memory>', line: 1 }),
  });
}

/** Records every batch a store delivers. */
export function recordBatches(store: ConfigStore): { batches: Array<{ events: readonly StoreEvent[]; revision: number }>; stop: () => void } {
  const batches: Array<{ events: readonly StoreEvent[]; revision: number }> = [];
  const stop = store.watch((events, revision) => batches.push({ events, revision }));
  return { batches, stop };
}

function ids(rs: readonly Resource[]): string[] {
  return rs.map((r) => `${r.metadata.namespace}/${r.metadata.name}`);
}

function summary(events: readonly StoreEvent[]): string[] {
  return events.map((e) => `${e.kind} ${e.resource.kind} ${e.resource.metadata.namespace}/${e.resource.metadata.name}`).sort();
}

/** Registers the shared suite for one ConfigStore implementation. */
export function runStoreSuite(name: string, makeStore: () => Promise<StoreHarness>): void {
  const VS = ResourceTypes.VirtualService;
  const DR = ResourceTypes.DestinationRule;

  async function withStore(fn: (h: StoreHarness) => Promise<void>): Promise<void> {
    const h = await makeStore();
    try {
      await h.store.ready();
      await fn(h);
    } finally {
      await h.store.close();
      await h.cleanup?.();
    }
  }

  test(`${name}: an empty store lists nothing`, () =>
    withStore(async ({ store }) => {
      assert.deepEqual(store.list(VS), []);
      assert.deepEqual(store.list(VS, 'default'), []);
      assert.equal(store.get(VS, 'default', 'nope'), undefined);
      assert.deepEqual(store.types(), []);
      assert.equal(typeof store.revision, 'number');
    }));

  test(`${name}: list is sorted by namespace then name; get and types; namespace filter`, () =>
    withStore(async ({ store, write }) => {
      await write([
        virtualService('prod', 'b'),
        virtualService('default', 'z'),
        virtualService('prod', 'a'),
        virtualService('default', 'c'),
        destinationRule('prod', 'a'),
      ]);
      assert.deepEqual(ids(store.list(VS)), ['default/c', 'default/z', 'prod/a', 'prod/b']);
      assert.deepEqual(ids(store.list(VS, 'prod')), ['prod/a', 'prod/b']);
      assert.deepEqual(ids(store.list(VS, 'nowhere')), []);
      assert.deepEqual(ids(store.list(DR)), ['prod/a']);
      assert.deepEqual(store.types(), [DR, VS].sort());
      const got = store.get(VS, 'prod', 'b');
      assert.ok(got);
      assert.equal(got.type, VS);
      assert.equal(got.kind, 'VirtualService');
      assert.deepEqual((got.spec as { hosts: string[] }).hosts, ['b']);
      assert.equal(store.get(VS, 'default', 'b'), undefined, 'get is namespace-exact');
      assert.equal(store.get(DR, 'prod', 'b'), undefined, 'get is type-exact');
      assert.ok(Object.isFrozen(got), 'resources are frozen');
    }));

  test(`${name}: one write is one batch, with revision +1 seen by listener and store`, () =>
    withStore(async (h) => {
      const { store, write } = h;
      const rev0 = store.revision;
      const rec = recordBatches(store);
      await write([virtualService('default', 'a'), virtualService('default', 'b'), destinationRule('default', 'a')]);
      await h.settle?.();
      assert.equal(rec.batches.length, 1, 'exactly one batch');
      const [batch] = rec.batches;
      assert.deepEqual(summary(batch.events), [
        'added DestinationRule default/a',
        'added VirtualService default/a',
        'added VirtualService default/b',
      ]);
      assert.equal(batch.revision, rev0 + 1);
      assert.equal(store.revision, rev0 + 1);
      rec.stop();
    }));

  test(`${name}: an update is one 'updated' event; identical re-write emits nothing`, () =>
    withStore(async (h) => {
      const { store, write } = h;
      await write([virtualService('default', 'a'), virtualService('default', 'b')]);
      const rec = recordBatches(store);
      const rev = store.revision;
      await write([virtualService('default', 'a'), virtualService('default', 'b')]);
      await h.settle?.();
      assert.equal(rec.batches.length, 0, 'identical content: no batch');
      assert.equal(store.revision, rev, 'identical content: same revision');

      await write([virtualService('default', 'a', 'other-host'), virtualService('default', 'b')]);
      await h.settle?.();
      assert.equal(rec.batches.length, 1);
      assert.deepEqual(summary(rec.batches[0].events), ['updated VirtualService default/a']);
      assert.deepEqual((rec.batches[0].events[0].resource.spec as { hosts: string[] }).hosts, ['other-host']);
      assert.equal(store.revision, rev + 1);
      rec.stop();
    }));

  test(`${name}: creationTimestamp is set once and kept; generation bumps on spec change only`, () =>
    withStore(async ({ store, write }) => {
      await write([virtualService('default', 'a')]);
      const first = store.get(VS, 'default', 'a');
      assert.ok(first);
      const created = first.metadata.creationTimestamp;
      assert.match(created ?? '', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
      const gen1 = first.metadata.generation ?? 0;
      assert.ok(gen1 >= 1);

      await write([virtualService('default', 'a', 'changed')]);
      const second = store.get(VS, 'default', 'a');
      assert.ok(second);
      assert.equal(second.metadata.creationTimestamp, created, 'creationTimestamp kept across updates');
      assert.equal(second.metadata.generation, gen1 + 1, 'generation bumped on spec change');

      await write([virtualService('default', 'a', 'changed', { team: 'x' })]);
      const third = store.get(VS, 'default', 'a');
      assert.ok(third);
      assert.deepEqual(third.metadata.labels, { team: 'x' });
      assert.equal(third.metadata.generation, gen1 + 1, 'label-only change keeps generation');
      assert.equal(third.metadata.creationTimestamp, created);
    }));

  test(`${name}: remove emits 'deleted' and the type disappears when empty`, () =>
    withStore(async (h) => {
      const { store, write, remove } = h;
      await write([virtualService('default', 'a'), destinationRule('default', 'a')]);
      const rec = recordBatches(store);
      const rev = store.revision;
      await remove(DR, 'default', 'a');
      await h.settle?.();
      assert.equal(rec.batches.length, 1);
      assert.deepEqual(summary(rec.batches[0].events), ['deleted DestinationRule default/a']);
      assert.equal(rec.batches[0].revision, rev + 1);
      assert.equal(store.get(DR, 'default', 'a'), undefined);
      assert.deepEqual(store.types(), [VS]);
      assert.ok(store.get(VS, 'default', 'a'), 'the other resource stays');
      rec.stop();
    }));

  test(`${name}: unsubscribe stops delivery to that listener only`, () =>
    withStore(async (h) => {
      const { store, write } = h;
      const a = recordBatches(store);
      const b = recordBatches(store);
      await write([virtualService('default', 'one')]);
      a.stop();
      a.stop(); // idempotent
      await write([virtualService('default', 'two')]);
      await h.settle?.();
      assert.equal(a.batches.length, 1);
      assert.equal(b.batches.length, 2);
      assert.ok(b.batches[1].revision > b.batches[0].revision, 'revisions increase');
      b.stop();
    }));

  test(`${name}: diagnostics() is an array and revision never decreases`, () =>
    withStore(async ({ store, write, remove }) => {
      assert.ok(Array.isArray(store.diagnostics()));
      const seen: number[] = [store.revision];
      await write([virtualService('default', 'x')]);
      seen.push(store.revision);
      await remove(VS, 'default', 'x');
      seen.push(store.revision);
      await write([virtualService('default', 'x')]);
      seen.push(store.revision);
      for (let i = 1; i < seen.length; i++) assert.equal(seen[i], seen[i - 1] + 1);
      assert.deepEqual(store.list(VS).length, 1);
    }));
}
