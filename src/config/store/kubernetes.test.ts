/**
 * KubernetesStore against a real kube-apiserver + etcd (one per file): the shared store suite,
 * then what only a Kubernetes store has — relist after `410 Gone`, an API server restart that
 * loses nothing, last-known-good for an object that stops validating, discoverySelectors,
 * Secrets only when referenced, Pods reduced to what the registry reads, a CRD installed late.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { join } from 'node:path';
import { ResourceTypes } from '../resource.ts';
import type { Resource, ResourceType } from '../resource.ts';
import { runStoreSuite } from './common.case.ts';
import { KubernetesStore } from './kubernetes.ts';
import type { KubernetesStoreOptions } from './kubernetes.ts';
import { PodType, collectionPath, kubeKind } from './kubernetes-kinds.ts';
import type { KubeObject } from './kubernetes-rest.ts';
import { Cleanups, waitFor } from '../../../test/support/processes.ts';
import {
  applyObject, deleteObject, ensureNamespace, sharedK8s, installCrds, skipUnlessKube, startKubeCluster, yamlObjects,
} from '../../../test/support/kube-apiserver.ts';
import type { KubeCluster } from '../../../test/support/kube-apiserver.ts';

const skip = skipUnlessKube();
const cleanups = new Cleanups();
after(() => cleanups.run());

let clusterPromise: Promise<KubeCluster> | undefined;

/** The file's one cluster, with the Istio CRDs and the suite's namespaces. */
function cluster(): Promise<KubeCluster> {
  clusterPromise ??= (async () => {
    const c = await startKubeCluster(cleanups);
    const crds = yamlObjects(readFileSync(join(sharedK8s, 'istio', 'crd-all.gen.yaml'), 'utf8')).filter((o) => o.kind === 'CustomResourceDefinition');
    await installCrds(c.rest, crds);
    await ensureNamespace(c.rest, 'prod');
    return c;
  })();
  return clusterPromise;
}

function toObject(r: Resource): KubeObject {
  return {
    apiVersion: r.apiVersion,
    kind: r.kind,
    metadata: { name: r.metadata.name, namespace: r.metadata.namespace, labels: { ...r.metadata.labels }, annotations: { ...r.metadata.annotations } },
    spec: r.spec as Record<string, unknown>,
  };
}

async function clear(c: KubeCluster, types: readonly ResourceType[], namespaces: readonly string[]): Promise<void> {
  for (const t of types) {
    const kind = kubeKind(t)!;
    for (const ns of namespaces) await c.rest.request('DELETE', collectionPath(kind, ns));
  }
}

async function openStore(c: KubeCluster, options: KubernetesStoreOptions): Promise<KubernetesStore> {
  const store = new KubernetesStore(c.kubeConfig(), options);
  await store.ready();
  return store;
}

if (skip) {
  test('KubernetesStore: shared store suite', { skip }, () => {});
} else {
  runStoreSuite('KubernetesStore', async () => {
    const c = await cluster();
    const types = [ResourceTypes.VirtualService, ResourceTypes.DestinationRule];
    await clear(c, types, ['default', 'prod']);
    // A debounce wide enough that the harness's parallel writes land in one batch on a loaded machine.
    const store = new KubernetesStore(c.kubeConfig(), { types, debounceMs: 150, maxDelayMs: 2000 });
    // Content, not resourceVersion: an identical re-apply may still move the resourceVersion
    // (managedFields), and the store rightly keeps the object it had.
    const seen = (r: Resource) => {
      const got = store.get(r.type, r.metadata.namespace, r.metadata.name);
      return got !== undefined && isDeepStrictEqual(got.spec, r.spec) && isDeepStrictEqual(got.metadata.labels, r.metadata.labels);
    };
    return {
      store,
      async write(resources) {
        await Promise.all(resources.map((r) => applyObject(c.rest, toObject(r))));
        await waitFor('the store to show the writes', () => resources.every(seen), 20_000, 10);
        await new Promise((r) => setTimeout(r, 200)); // and the batch to be delivered to listeners
      },
      async remove(type, namespace, name) {
        const kind = kubeKind(type)!;
        await deleteObject(c.rest, { apiVersion: `${kind.group}/${kind.version}`, kind: kind.kind, metadata: { name, namespace } });
        await waitFor('the store to drop the object', () => store.get(type, namespace, name) === undefined, 20_000, 10);
      },
      settle: () => new Promise((r) => setTimeout(r, 400)),
    };
  });
}

const vs = (name: string, host: string, namespace = 'default'): KubeObject => ({
  apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace: namespace || 'default' },
  spec: { hosts: [host], http: [{ route: [{ destination: { host } }] }] },
});

test('KubernetesStore: an API server restart drops every watch; nothing is lost, an expired resourceVersion (410) relists', { skip }, async () => {
  const c = await cluster();
  await clear(c, [ResourceTypes.VirtualService], ['default']);
  await applyObject(c.rest, vs('before', 'before.example.com'));
  await applyObject(c.rest, vs('doomed', 'doomed.example.com'));
  const store = await openStore(c, { types: [ResourceTypes.VirtualService], backoffInitialMs: 100, backoffMaxMs: 1000 });
  try {
    assert.ok(store.get(ResourceTypes.VirtualService, 'default', 'before'));
    const lists0 = store.listCounts()[ResourceTypes.VirtualService];
    // Move etcd's revision on with writes the store does not watch, then compact it: the
    // store's resourceVersion is now older than anything the server can resume a watch from.
    for (let i = 0; i < 5; i++) await applyObject(c.rest, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `filler-${i}`, namespace: 'default' }, data: { i: String(i) } });
    await c.compactEtcd();
    await c.stopApiServer();
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(store.get(ResourceTypes.VirtualService, 'default', 'before'), 'last-known-good while the API server is down');
    await c.startApiServer();
    await deleteObject(c.rest, vs('doomed', ''));
    await applyObject(c.rest, vs('after', 'after.example.com'));
    await waitFor('the changes made after the restart', () => store.get(ResourceTypes.VirtualService, 'default', 'after') && !store.get(ResourceTypes.VirtualService, 'default', 'doomed'), 30_000);
    assert.deepEqual(store.list(ResourceTypes.VirtualService).map((r) => r.metadata.name), ['after', 'before'], 'nothing lost');
    assert.ok(store.listCounts()[ResourceTypes.VirtualService] > lists0, 'the reflector relisted after 410 Gone');
    await waitFor('the watch-failure diagnostic to clear', () => !store.diagnostics().some((d) => d.code === 'KUBE_WATCH_FAILING'), 10_000);
  } finally {
    await store.close();
  }
});

test('KubernetesStore: an object that stops validating leaves the store as rejected (the config gate keeps serving its last valid version)', { skip }, async () => {
  const c = await cluster();
  await clear(c, [ResourceTypes.VirtualService], ['default']);
  await applyObject(c.rest, vs('reviews', 'reviews'));
  const store = await openStore(c, { types: [ResourceTypes.VirtualService] });
  let announced = false;
  store.watchDiagnostics(() => (announced ||= store.rejected().size > 0 && store.get(ResourceTypes.VirtualService, 'default', 'reviews') !== undefined));
  try {
    // Valid for the CRD's schema, refused by Trellis's value checks: a regex that does not compile.
    const bad = vs('reviews', 'reviews');
    (bad.spec as { http: Record<string, unknown>[] }).http[0].match = [{ uri: { regex: '(' } }];
    await applyObject(c.rest, bad);
    await waitFor('the rejection', () => store.rejected().size > 0, 10_000);
    const rejected = [...store.rejected().values()][0];
    assert.deepEqual([rejected.kind, rejected.namespace, rejected.name], ['VirtualService', 'default', 'reviews']);
    assert.match(rejected.reason, /resourceVersion \d+/);
    assert.equal(store.get(ResourceTypes.VirtualService, 'default', 'reviews'), undefined);
    const errors = store.diagnostics().filter((d) => d.severity === 'error');
    assert.ok(errors.length > 0, 'the error names the object');
    assert.match(errors[0].file ?? '', /^kubernetes:default\/virtualservices\/reviews$/);
    assert.ok(announced, 'the rejection was announced before the object left the store');
  } finally {
    await store.close();
  }
});

test('KubernetesStore: discoverySelectors limit namespaces; relabelling a namespace adds and removes its objects in one batch', { skip }, async () => {
  const c = await cluster();
  await ensureNamespace(c.rest, 'team-a', { mesh: 'on' });
  await ensureNamespace(c.rest, 'team-b');
  await applyObject(c.rest, vs('a', 'a.example.com', 'team-a'));
  await applyObject(c.rest, vs('b', 'b.example.com', 'team-b'));
  const store = await openStore(c, { types: [ResourceTypes.VirtualService], discoverySelectors: [{ matchLabels: { mesh: 'on' } }] });
  try {
    const names = () => store.list(ResourceTypes.VirtualService).filter((r) => r.metadata.namespace.startsWith('team-')).map((r) => `${r.metadata.namespace}/${r.metadata.name}`);
    assert.deepEqual(names(), ['team-a/a']);
    await ensureNamespace(c.rest, 'team-b', { mesh: 'on' });
    await waitFor('team-b selected', () => names().length === 2);
    await ensureNamespace(c.rest, 'team-a', {});
    await waitFor('team-a deselected', () => names().join() === 'team-b/b');
  } finally {
    await store.close();
    await clear(c, [ResourceTypes.VirtualService], ['team-a', 'team-b']);
  }
});

test('KubernetesStore: Secrets are read only when a Gateway references them; Pods keep labels, service account and IP', { skip }, async () => {
  const c = await cluster();
  await ensureNamespace(c.rest, 'edge');
  const secret = (name: string): KubeObject => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'edge' }, type: 'kubernetes.io/tls', data: { 'tls.crt': 'Y2VydA==', 'tls.key': 'a2V5' } });
  await applyObject(c.rest, secret('wanted'));
  await applyObject(c.rest, secret('unrelated'));
  await applyObject(c.rest, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-1', namespace: 'edge', labels: { app: 'web', version: 'v1' } }, spec: { serviceAccountName: 'web-sa', containers: [{ name: 'app', image: 'web' }] } });
  const store = await openStore(c, { types: [ResourceTypes.Secret, ResourceTypes.IstioGateway, PodType] });
  try {
    assert.deepEqual(store.list(ResourceTypes.Secret, 'edge').map((r) => r.metadata.name), [], 'no gateway references them yet');
    await applyObject(c.rest, { apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'gw', namespace: 'edge' }, spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['*'], tls: { mode: 'SIMPLE', credentialName: 'wanted' } }] } });
    await waitFor('the referenced secret', () => store.list(ResourceTypes.Secret, 'edge').length === 1);
    assert.equal(store.list(ResourceTypes.Secret, 'edge')[0].metadata.name, 'wanted');
    const pod = store.get(PodType, 'edge', 'web-1');
    assert.ok(pod);
    assert.deepEqual(pod.metadata.labels, { app: 'web', version: 'v1' });
    assert.equal((pod.spec as { serviceAccountName: string }).serviceAccountName, 'web-sa');
    // A kubelet's status write (IP, Ready) shows up.
    await c.rest.request('PATCH', '/api/v1/namespaces/edge/pods/web-1/status', { contentType: 'application/merge-patch+json', body: { status: { phase: 'Running', podIP: '127.0.0.9', conditions: [{ type: 'Ready', status: 'True' }] } } });
    await waitFor('pod IP', () => (store.get(PodType, 'edge', 'web-1')?.body as { status?: { podIP?: string } } | undefined)?.status?.podIP === '127.0.0.9');
  } finally {
    await store.close();
  }
});

test('KubernetesStore: a kind whose CRD is absent reads as empty and is picked up once installed', { skip }, async () => {
  const c = await cluster();
  const store = await openStore(c, { types: [ResourceTypes.HTTPRoute], absentRetryMs: 300 });
  try {
    assert.equal(store.reflectorStates()[ResourceTypes.HTTPRoute], 'absent');
    const crds = yamlObjects(readFileSync(join(sharedK8s, 'gateway-api', 'gateway.networking.k8s.io_httproutes.yaml'), 'utf8'));
    await installCrds(c.rest, crds);
    await applyObject(c.rest, { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'r', namespace: 'default' }, spec: { parentRefs: [{ name: 'gw' }], rules: [{ backendRefs: [{ name: 'svc', port: 80 }] }] } });
    await waitFor('the HTTPRoute', () => store.get(ResourceTypes.HTTPRoute, 'default', 'r'), 20_000);
    assert.equal(store.reflectorStates()[ResourceTypes.HTTPRoute], 'synced');
  } finally {
    await store.close();
  }
});
