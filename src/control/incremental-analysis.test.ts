import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { analyzeConfig } from '../config/analyze/index.ts';
import { loadConfigPaths } from '../config/load.ts';
import type { Resource, ResourceType } from '../config/resource.ts';
import { resourceKey, ResourceTypes } from '../config/resource.ts';
import { IncrementalAnalysis } from './incremental-analysis.ts';
import { sharedDir, skipUnlessShared } from '../../test/support/skip.ts';
import { yamlFilesUnder } from '../../test/support/yaml-files.ts';

/** Lists by type, each sorted by namespace then name, as stores list them. */
function listsOf(resources: Iterable<Resource>): Map<ResourceType, readonly Resource[]> {
  const byType = new Map<ResourceType, Resource[]>();
  for (const r of resources) {
    let l = byType.get(r.type);
    if (l === undefined) byType.set(r.type, (l = []));
    l.push(r);
  }
  const key = (r: Resource) => `${r.metadata.namespace}/${r.metadata.name}`;
  const out = new Map<ResourceType, readonly Resource[]>();
  for (const t of [...byType.keys()].sort()) out.set(t, Object.freeze(byType.get(t)!.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))));
  return out;
}

/** A small deterministic PRNG (mulberry32), so a failure replays. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Edits `resources` at random, step by step — deletes, re-adds, another resource's spec, a move
 * to another namespace — and after every step compares the incremental analysis with a full one.
 */
function checkAgainstFull(name: string, resources: readonly Resource[], steps: number, seed: number): { incremental: number; full: number } {
  const rnd = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const live = new Map(resources.map((r) => [resourceKey(r), r]));
  const removed: Resource[] = [];
  const namespaces = [...new Set(resources.map((r) => r.metadata.namespace).filter((n) => n !== ''))];
  // Never fall back for size, so the reach model is what is tested.
  const analysis = new IncrementalAnalysis({ fullShare: 1 });
  const modes = { incremental: 0, full: 0 };
  const compare = (step: string) => {
    const lists = listsOf(live.values());
    const got = analysis.update(lists);
    if (analysis.last.mode !== 'none') modes[analysis.last.mode]++;
    const all = [...lists.values()].flat();
    assert.deepEqual(got, analyzeConfig(all), `${name}: after ${step} (seed ${seed}, ${analysis.last.mode} analysis of ${analysis.last.subjects} subjects)`);
  };
  compare('the first load');
  for (let i = 0; i < steps; i++) {
    const r = pick([...live.values()]);
    const roll = rnd();
    let step: string;
    if (r !== undefined && (roll < 0.3 || removed.length === 0)) {
      live.delete(resourceKey(r));
      removed.push(r);
      step = `deleting ${resourceKey(r)}`;
    } else if (r === undefined || roll < 0.6) {
      const back = removed.splice(Math.floor(rnd() * removed.length), 1)[0];
      live.set(resourceKey(back), back);
      step = `re-adding ${resourceKey(back)}`;
    } else if (roll < 0.8) {
      const same = [...live.values()].filter((o) => o.type === r.type && o !== r);
      if (same.length === 0) continue;
      const donor = pick(same);
      live.set(resourceKey(r), Object.freeze({ ...r, spec: donor.spec, body: donor.body }));
      step = `giving ${resourceKey(r)} the spec of ${resourceKey(donor)}`;
    } else {
      if (r.metadata.namespace === '') continue;
      const ns = pick(namespaces);
      const moved = Object.freeze({ ...r, metadata: Object.freeze({ ...r.metadata, namespace: ns }) });
      live.delete(resourceKey(r));
      live.set(resourceKey(moved), moved);
      step = `moving ${resourceKey(r)} to namespace ${ns}`;
    }
    compare(step);
  }
  return modes;
}


/**
 * Each file a mesh of its own (test corpora reuse names across files, and a load keeps the first
 * of a name), and each directory one too; random edits on every one, each step checked.
 */
async function checkCorpus(dir: string, steps: number, seeds: readonly number[]): Promise<{ meshes: number; incremental: number; full: number }> {
  const total = { meshes: 0, incremental: 0, full: 0 };
  for (const paths of [...yamlFilesUnder(dir).map((f) => [f]), [dir]]) {
    const { resources } = await loadConfigPaths(paths);
    if (resources.length < 2) continue;
    total.meshes++;
    for (const seed of seeds) {
      const modes = checkAgainstFull(paths[0], resources, steps, seed);
      total.incremental += modes.incremental;
      total.full += modes.full;
    }
  }
  return total;
}

const repo = join(import.meta.dirname, '../..');

test('incremental analysis equals a full analysis after every random edit: Trellis config corpus and examples', async (ctx) => {
  for (const dir of ['test/config-corpus', 'examples']) {
    const t = await checkCorpus(join(repo, dir), 40, [1, 2]);
    ctx.diagnostic(`${dir}: ${JSON.stringify(t)}`);
    assert.ok(t.meshes > 1 && t.incremental > t.full, `${dir}: ${JSON.stringify(t)}`);
  }
});

test('incremental analysis equals a full analysis after every random edit: Istio samples and analyzer inputs, Gateway API conformance', { skip: skipUnlessShared('istio-samples', 'istio-analyzer', 'conformance') }, async (ctx) => {
  for (const dir of ['istio-samples', 'istio-analyzer/testdata', 'conformance']) {
    const t = await checkCorpus(join(sharedDir, dir), 30, [7]);
    ctx.diagnostic(`${dir}: ${JSON.stringify(t)}`);
    assert.ok(t.meshes > 3 && t.incremental > t.full, `${dir}: ${JSON.stringify(t)}`);
  }
});

test('a change to one VirtualService re-analyses it and what shares its hosts, not the mesh', async () => {
  const yaml: Resource[] = [];
  const { resourcesFromYaml } = await import('../registry/test-support.ts');
  for (let i = 0; i < 40; i++) {
    const ns = `ns-${i % 4}`;
    yaml.push(...resourcesFromYaml(`
apiVersion: v1
kind: Service
metadata: {name: svc-${i}, namespace: ${ns}}
spec: {selector: {app: svc-${i}}, ports: [{name: http, port: 8080}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc-${i}, namespace: ${ns}}
spec: {host: svc-${i}.${ns}.svc.cluster.local, subsets: [{name: v1, labels: {version: v1}}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc-${i}, namespace: ${ns}}
spec: {hosts: [svc-${i}.${ns}.svc.cluster.local], http: [{route: [{destination: {host: svc-${i}.${ns}.svc.cluster.local, subset: v1}}]}]}
`));
  }
  const analysis = new IncrementalAnalysis();
  const live = new Map(yaml.map((r) => [resourceKey(r), r]));
  analysis.update(listsOf(live.values()));
  const vs = yaml.find((r) => r.type === ResourceTypes.VirtualService && r.metadata.name === 'svc-5')!;
  const broken = Object.freeze({ ...vs, spec: { ...(vs.spec as object), http: [{ route: [{ destination: { host: 'svc-5.ns-1.svc.cluster.local', subset: 'v9' } }] }] } });
  live.set(resourceKey(vs), broken);
  const found = analysis.update(listsOf(live.values()));
  assert.equal(analysis.last.mode, 'incremental');
  assert.equal(analysis.last.subjects, 2, 'the VirtualService and the DestinationRule whose subsets it routes to (SUBSET_NO_WORKLOADS)');
  // Input: the VirtualService, the Services of its namespace (gateways named without a namespace
  // are looked up there), its DestinationRule, one of each other type.
  assert.ok(analysis.last.input <= 13, `input of ${analysis.last.input}`);
  assert.deepEqual(found.map((d) => d.code), ['SUBSET_NOT_FOUND']);
  // An EndpointSlice change re-analyses nothing.
  const slice = resourcesFromYaml(`
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: svc-1-a, namespace: ns-1, labels: {kubernetes.io/service-name: svc-1}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1]}]
`)[0];
  live.set(resourceKey(slice), slice);
  analysis.update(listsOf(live.values()));
  assert.equal(analysis.last.mode, 'incremental');
  assert.equal(analysis.last.subjects, 1);
});
