import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigGate, blocksServing } from './config-gate.ts';
import { resourcesFromYaml } from '../registry/test-support.ts';
import { gatewayWithRoute } from './translate/routes/test-support.ts';
import { MemoryStore } from '../config/store/memory.ts';
import { openFileStore } from '../config/store/file.ts';
import type { RejectedResource } from '../config/store/types.ts';
import { resourceKey, ResourceTypes, type Resource } from '../config/resource.ts';

const routeTo = (backend: string) => gatewayWithRoute(`[{backendRefs: [{name: ${backend}, port: 8080}]}]`);

// That its requests then get 500 is checked on the generated routes by routes/conformance.test.ts
// and end to end by the conformance case HTTPRouteInvalidNonExistentBackendRef (test/conformance.test.ts).
test('an HTTPRoute to a missing backend is still served: a diagnostic (status ResolvedRefs=False), not NOT_SERVED', () => {
  const gate = new ConfigGate(new MemoryStore({ resources: resourcesFromYaml(routeTo('nonexistent')) }));
  const res = gate.update();
  assert.ok(res.diagnostics.some((d) => d.code === 'ROUTE_BACKEND_NOT_FOUND'));
  assert.ok(!res.diagnostics.some((d) => d.code === 'NOT_SERVED'));
  assert.equal(gate.list(ResourceTypes.HTTPRoute).length, 1);
});

test('blocksServing: status-expressed Gateway API route errors, conflicts and gateway credentials are exempt', () => {
  const resource = { kind: 'HTTPRoute', namespace: 'a', name: 'b' };
  assert.equal(blocksServing({ severity: 'error', code: 'ROUTE_BACKEND_NOT_FOUND', message: '', resource }), false);
  assert.equal(blocksServing({ severity: 'error', code: 'REF_NOT_PERMITTED', message: '', resource }), false);
  assert.equal(blocksServing({ severity: 'error', code: 'PARENT_NOT_FOUND', message: '', resource }), true);
  assert.equal(blocksServing({ severity: 'error', code: 'REF_NOT_PERMITTED', message: '', resource: { ...resource, kind: 'Gateway' } }), true);
  assert.equal(blocksServing({ severity: 'warning', code: 'X', message: '', resource }), false);
  // A conflict is reported on every side; withholding them all would serve less, not resolve it.
  assert.equal(blocksServing({ severity: 'error', code: 'GATEWAY_CONFLICT', message: '', resource: { ...resource, kind: 'Gateway' } }), false);
  assert.equal(blocksServing({ severity: 'error', code: 'VS_HOST_CONFLICT', message: '', resource: { ...resource, kind: 'VirtualService' } }), false);
  // A gateway credential is resolved per proxy at SDS time; a missing one fails that server's TLS only.
  assert.equal(blocksServing({ severity: 'error', code: 'SECRET_NOT_FOUND', message: '', resource: { ...resource, kind: 'Gateway' } }), false);
});

const mesh = (subset: string, extra = '') => resourcesFromYaml(`
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec: {selector: {app: reviews}, ports: [{name: http, port: 9080}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec: {host: reviews, subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec: {hosts: [reviews], http: [{route: [{destination: {host: reviews, subset: ${subset}}}]}]}
${extra}`);

function subsetOf(gate: ConfigGate): string | undefined {
  const vs = gate.list(ResourceTypes.VirtualService).find((r) => r.metadata.name === 'reviews');
  return (vs?.spec as { http: { route: { destination: { subset: string } }[] }[] } | undefined)?.http[0].route[0].destination.subset;
}

test('semantic errors: an edit that breaks a resource serves its last good version; a new broken resource is not served; the fix is served', () => {
  const store = new MemoryStore({ resources: mesh('v1') });
  const gate = new ConfigGate(store);
  gate.update();
  assert.equal(subsetOf(gate), 'v1');

  store.apply(mesh('v9'));
  const broken = gate.update();
  assert.equal(subsetOf(gate), 'v1', 'the last good version');
  assert.ok(broken.diagnostics.some((d) => d.code === 'SUBSET_NOT_FOUND'));
  assert.ok(broken.diagnostics.some((d) => d.code === 'LAST_KNOWN_GOOD' && /previous valid version is still served/.test(d.message)));
  assert.equal(broken.changed.length, 0, 'nothing new is served');

  store.apply(resourcesFromYaml(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec: {hosts: [ratings], http: [{route: [{destination: {host: nowhere}}]}]}`));
  const fresh = gate.update();
  assert.ok(fresh.diagnostics.some((d) => d.code === 'NOT_SERVED' && d.resource?.name === 'ratings'));
  assert.equal(gate.list(ResourceTypes.VirtualService).length, 1);

  store.apply(mesh('v2'));
  const fixed = gate.update();
  assert.equal(subsetOf(gate), 'v2');
  assert.deepEqual(fixed.changed.map((r) => `${r.kind}/${r.metadata.name}`).sort(), ['VirtualService/reviews', 'VirtualService/reviews'], 'the new and the old served version');
});

test('a resource broken by another resource keeps being served as it is', () => {
  const store = new MemoryStore({ resources: mesh('v2') });
  const gate = new ConfigGate(store);
  gate.update();
  // The DestinationRule loses subset v2: the unchanged VirtualService now has an error.
  store.apply(resourcesFromYaml(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec: {host: reviews, subsets: [{name: v1, labels: {version: v1}}]}`));
  const res = gate.update();
  assert.ok(res.diagnostics.some((d) => d.code === 'SUBSET_NOT_FOUND'));
  assert.equal(subsetOf(gate), 'v2');
  assert.ok(!res.diagnostics.some((d) => d.code === 'NOT_SERVED' || d.code === 'LAST_KNOWN_GOOD'));
});

/** A memory store whose source also rejects definitions, as a file or Kubernetes store does. */
class RejectingStore extends MemoryStore {
  reject(r: Resource, reason: string): void {
    const rej: RejectedResource = { type: r.type, kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name, reason, file: 'x.yaml', line: 7 };
    this.report([{ severity: 'error', code: 'SCHEMA', message: `${r.metadata.name}: bad`, file: 'x.yaml', line: 7 }], new Map([[resourceKey(r), rej]]));
    this.delete(r.type, r.metadata.namespace, r.metadata.name);
  }
}

test('store rejections: the last good version is served and analysed, with LAST_KNOWN_GOOD naming the place; the gate is the only one keeping it', () => {
  const store = new RejectingStore({ resources: mesh('v1') });
  const gate = new ConfigGate(store);
  gate.update();
  const dr = store.get(ResourceTypes.DestinationRule, 'default', 'reviews')!;
  store.reject(dr, 'the definition at x.yaml:7 is invalid');
  assert.equal(store.get(ResourceTypes.DestinationRule, 'default', 'reviews'), undefined);
  const res = gate.update();
  assert.equal(gate.list(ResourceTypes.DestinationRule)[0], dr, 'the last good version itself');
  assert.equal(res.changed.length, 0);
  const lkg = res.diagnostics.find((d) => d.code === 'LAST_KNOWN_GOOD');
  assert.match(lkg?.message ?? '', /DestinationRule default\/reviews: the definition at x\.yaml:7 is invalid; still serving its last valid version/);
  assert.deepEqual([lkg?.file, lkg?.line], ['x.yaml', 7]);
  assert.ok(res.diagnostics.some((d) => d.code === 'SCHEMA'), "the store's reason too");
  assert.ok(!res.diagnostics.some((d) => d.code === 'SUBSET_NOT_FOUND'), 'the analysis sees the DestinationRule proxies get');
});

test('a rejection of a resource never served leaves nothing to serve', () => {
  const store = new RejectingStore();
  const gate = new ConfigGate(store);
  gate.update();
  const [vs] = resourcesFromYaml(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: x, namespace: default}
spec: {hosts: [x]}`);
  store.reject(vs, 'the definition at x.yaml:7 is invalid');
  const res = gate.update();
  assert.equal(gate.list(ResourceTypes.VirtualService).length, 0);
  assert.ok(!res.diagnostics.some((d) => d.code === 'LAST_KNOWN_GOOD'));
});

test('over a FileStore: valid -> invalid YAML -> schema-invalid -> fixed -> deleted; what is served is never empty until the delete', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-gate-'));
  const file = join(dir, 'mesh.yaml');
  const vs = (host: string) => `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [${host}]\n`;
  const store = await openFileStore(dir, { debounceMs: 20, maxDelayMs: 200, rescanIntervalMs: 0 });
  const gate = new ConfigGate(store, { analyze: false });
  const views: string[] = [];
  const follow = () => {
    gate.update();
    views.push(gate.list(ResourceTypes.VirtualService).map((r) => (r.spec as { hosts: string[] }).hosts[0]).join(',') || '-');
  };
  store.watch(follow);
  store.watchDiagnostics(follow);
  // Each version replaces the file at once: a store reading between writeFile's truncate and its
  // write would see an empty file, which is a legitimate delete of everything (seen under load).
  const put = async (text: string) => {
    await writeFile(`${file}.tmp`, text);
    await rename(`${file}.tmp`, file);
  };
  const until = async (what: string, cond: () => boolean) => {
    const end = Date.now() + 5000;
    while (!cond()) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}: ${views.join(' ')}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  try {
    await put(vs('v1'));
    await until('v1', () => views.at(-1) === 'v1');
    await put(`${vs('v2')}  bad: [unclosed\n`);
    await until('the rejection', () => store.rejected().size === 1);
    await put(vs('42\n  http: 7'));
    await until('a second bad edit', () => store.diagnostics().length > 0 && views.length > 3);
    assert.equal(views.at(-1), 'v1');
    await put(vs('v4'));
    await until('the fix', () => views.at(-1) === 'v4');
    await rm(file);
    await until('the delete', () => views.at(-1) === '-');
    assert.ok(views.slice(0, -1).every((v) => v !== '-'), `served views: ${views.join(' ')}`);
    assert.ok(views.includes('v1') && views.includes('v4'));
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
