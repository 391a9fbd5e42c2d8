import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigPaths, parseConfigText } from './load.ts';
import { endpointSliceBody } from './kinds.ts';
import type { EndpointSliceResource, HTTPRouteResource, ServiceResource, WorkloadResource } from './kinds.ts';

const good = `apiVersion: v1
kind: Service
metadata:
  name: reviews
spec:
  selector: {app: reviews}
  ports:
  - name: http
    port: 9080
`;

test('one bad document does not stop the others; identity of the bad one is kept', () => {
  const text = `${good}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: shop
spec:
  host: reviews
  trafficPolicy:
    outlierDetection:
      interval: soon
---
apiVersion: v1
kind: Namespace
metadata:
  name: shop
`;
  const r = parseConfigText(text, 'mix.yaml');
  assert.deepEqual(r.resources.map((x) => x.type), ['core/Service', 'core/Namespace']);
  assert.deepEqual(r.rejected, [{ file: 'mix.yaml', line: 11, type: 'networking.istio.io/DestinationRule', name: 'reviews', namespace: 'shop' }]);
  const d = r.diagnostics.find((x) => x.code === 'BAD_DURATION');
  assert.ok(d);
  assert.deepEqual(d.resource, { kind: 'DestinationRule', namespace: 'shop', name: 'reviews' });
  assert.equal(d.fieldPath, 'spec.trafficPolicy.outlierDetection.interval');
  assert.equal(d.line, 20);
  assert.equal(d.file, 'mix.yaml');
});

test('defaults: namespace, Service port protocol/targetPort, cluster-scoped namespace is empty', () => {
  const r = parseConfigText(`${good}---\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n`, 'x.yaml');
  const svc = r.resources[0] as ServiceResource;
  assert.equal(svc.metadata.namespace, 'default');
  assert.deepEqual(svc.spec.ports, [{ name: 'http', port: 9080, protocol: 'TCP', targetPort: 9080 }]);
  assert.equal(r.resources[1].metadata.namespace, '');
});

test('Gateway API defaults: matches, path type, backendRef group/kind/weight, parentRef group/kind, allowedRoutes', () => {
  const r = parseConfigText(`apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata: {name: r, namespace: shop}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches:
    - headers: [{name: x-user, value: jason}]
    backendRefs: [{name: reviews, port: 9080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: shop}
spec:
  gatewayClassName: trellis
  listeners: [{name: http, port: 80, protocol: HTTP}]
`, 'gw.yaml');
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), []);
  const route = r.resources[0] as HTTPRouteResource;
  assert.equal(route.apiVersion, 'gateway.networking.k8s.io/v1beta1');
  const rule = route.spec.rules![0];
  assert.deepEqual(rule.matches![0].headers, [{ name: 'x-user', value: 'jason', type: 'Exact' }]);
  assert.deepEqual(rule.matches![0].path, { type: 'PathPrefix', value: '/' });
  assert.deepEqual(rule.backendRefs, [{ name: 'reviews', port: 9080, group: '', kind: 'Service', weight: 1 }]);
  assert.deepEqual(route.spec.parentRefs, [{ name: 'gw', group: 'gateway.networking.k8s.io', kind: 'Gateway' }]);
  const gw = r.resources[1].spec as { listeners: { allowedRoutes: unknown }[] };
  assert.deepEqual(gw.listeners[0].allowedRoutes, { namespaces: { from: 'Same' } });
});

test('resources are deep-frozen and carry lazy source lines', () => {
  const r = parseConfigText(`# leading comment\n${good}`, 'svc.yaml');
  const svc = r.resources[0];
  assert.ok(Object.isFrozen(svc) && Object.isFrozen(svc.spec) && Object.isFrozen(svc.metadata.labels));
  assert.throws(() => { (svc.spec as { ports: unknown[] }).ports.push(1); });
  assert.equal(svc.source?.line, 2);
  assert.equal(svc.source?.lineOf?.('spec.ports[0].port'), 10);
  assert.equal(svc.source?.lineOf?.('spec.selector.app'), 7);
  assert.equal(svc.source?.lineOf?.('spec.nothing.here'), 6); // nearest existing parent
});

test('Workload defaults; EndpointSlice body accessor', () => {
  const r = parseConfigText(`apiVersion: trellis.dev/v1alpha1
kind: Workload
metadata: {name: reviews-v1, labels: {app: reviews}}
spec:
  command: [node, reviews.js]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: reviews-1, labels: {kubernetes.io/service-name: reviews}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1], conditions: {ready: true}}]
ports: [{name: http, port: 9080}]
`, 'w.yaml');
  assert.deepEqual(r.diagnostics, []);
  const w = r.resources[0] as WorkloadResource;
  assert.deepEqual({ ...w.spec }, { command: ['node', 'reviews.js'], replicas: 1, env: {}, ports: [], serviceAccount: 'default', captureMode: 'explicit' });
  const body = endpointSliceBody(r.resources[1] as EndpointSliceResource);
  assert.equal(body.addressType, 'IPv4');
  assert.deepEqual(body.endpoints[0].addresses, ['10.0.0.1']);
});

test('JSON input, kind: List, top-level arrays, unmanaged and foreign kinds', () => {
  const json = JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'a' }, spec: { ports: [{ port: 80 }] } }, null, 2);
  assert.equal(parseConfigText(json, 'a.json').resources.length, 1);
  const bad = parseConfigText('{"apiVersion": "v1",}', 'b.json');
  assert.equal(bad.diagnostics[0].code, 'JSON_SYNTAX');
  const list = parseConfigText(`apiVersion: v1\nkind: List\nitems:\n- ${json.replace(/\n/g, ' ')}\n`, 'l.yaml');
  assert.equal(list.resources.length, 1);
  const arr = parseConfigText(`[${json}, ${json.replace('"a"', '"b"')}]`, 'arr.json');
  assert.equal(arr.resources.length, 2);
  const other = parseConfigText('apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: d}\n---\napiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c}\n', 'o.yaml');
  assert.deepEqual(other.diagnostics.map((d) => `${d.severity} ${d.code}`), ['info IGNORED_KIND', 'info IGNORED_KIND']);
  assert.deepEqual(other.rejected, []);
  // Kubernetes workloads load (for their labels), their specs kept as written.
  const deploy = parseConfigText('apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {template: {metadata: {labels: {app: d}}}, anything: [1]}\n', 'd.yaml');
  assert.deepEqual(deploy.diagnostics, []);
  assert.equal(deploy.resources[0].type, 'apps/Deployment');
});

test('loadConfigPaths: directories recursively, sorted, cross-file duplicates, unreadable paths', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-load-'));
  try {
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'a.yaml'), good);
    await writeFile(join(dir, 'sub', 'b.yml'), good);
    await writeFile(join(dir, 'notes.txt'), 'not config');
    const r = await loadConfigPaths([dir, join(dir, 'missing.yaml')]);
    assert.equal(r.resources.length, 1);
    assert.equal(r.resources[0].source?.file, join(dir, 'a.yaml'));
    assert.deepEqual(r.diagnostics.map((d) => d.code).sort(), ['DUPLICATE_RESOURCE', 'READ_ERROR']);
    assert.equal(r.rejected.length, 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('10,000 services load in seconds', (t) => {
  let text = '';
  for (let i = 0; i < 10000; i++) text += `apiVersion: v1\nkind: Service\nmetadata: {name: s${i}, namespace: n${i % 20}}\nspec:\n  ports: [{name: http, port: 80}]\n---\n`;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const r = parseConfigText(text, 'big.yaml');
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  assert.equal(r.resources.length, 10000);
  t.diagnostic(`10,000 services parsed: ${cpuMs.toFixed(0)} ms of CPU, ${(performance.now() - t0).toFixed(0)} ms of wall time`);
  // CPU time, about 10x the idle figure (~1.2 s): catches a quadratic loader, not a busy machine
  // (under load the wall time reached 17 s).
  assert.ok(cpuMs < 15_000, `${cpuMs.toFixed(0)} ms of CPU`);
});
