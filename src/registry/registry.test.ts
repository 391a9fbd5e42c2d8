import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildRegistry } from './registry.ts';
import { resourcesFromYaml, sourceOf } from './test-support.ts';

const yaml = `
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: bookinfo }
spec:
  clusterIP: 10.0.0.5
  selector: { app: reviews }
  ports: [{ name: http, port: 9080, targetPort: 9090 }, { name: grpc-x, port: 9081 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: reviews-abc, namespace: bookinfo, labels: { kubernetes.io/service-name: reviews } }
addressType: IPv4
ports: [{ name: http, port: 9090 }]
endpoints:
  - addresses: [10.1.0.2]
    zone: us-east-1a
    conditions: { ready: true }
    targetRef: { kind: Pod, name: reviews-v1-x }
  - addresses: [10.1.0.1]
    conditions: { ready: false }
---
apiVersion: v1
kind: Pod
metadata: { name: reviews-v1-x, namespace: bookinfo, labels: { app: reviews, version: v1, topology.kubernetes.io/region: us-east-1 } }
spec: { serviceAccountName: bookinfo-reviews }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: reviews-vm, namespace: bookinfo }
spec:
  address: 192.168.1.9
  labels: { app: reviews, version: v2 }
  ports: { http: 8000 }
  locality: eu/west/a
  weight: 3
  serviceAccount: vm-sa
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext, namespace: egress }
spec:
  hosts: [api.example.com, "*.wild.com"]
  ports: [{ number: 443, name: tls, protocol: TLS }]
  location: MESH_EXTERNAL
  resolution: DNS
  exportTo: ["."]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: static, namespace: default }
spec:
  hosts: [db.internal]
  ports: [{ number: 5432, name: tcp-pg, protocol: TCP, targetPort: 6432 }]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{ address: 10.9.9.9, labels: { role: primary }, locality: r1/z1 }, { address: 10.9.9.8, ports: { tcp-pg: 7000 } }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: selected, namespace: default }
spec:
  hosts: [vm.internal]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
  workloadSelector: { labels: { app: vm } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: vm1, namespace: default }
spec: { address: 10.7.0.1, labels: { app: vm, istio-locality: r2.z2.s2 } }
`;

const reg = buildRegistry(sourceOf(resourcesFromYaml(yaml)));

test('Kubernetes services get FQDNs, ports with protocols and cluster IPs', () => {
  const s = reg.service('reviews.bookinfo.svc.cluster.local');
  assert.ok(s);
  assert.deepEqual(s.addresses, ['10.0.0.5']);
  assert.deepEqual(s.ports.map((p) => [p.name, p.port, p.targetPort, p.protocol]), [['http', 9080, 9090, 'HTTP'], ['grpc-x', 9081, 9081, 'GRPC']]);
  assert.equal(s.resolution, 'STATIC');
  assert.equal(s.location, 'MESH_INTERNAL');
});

test('EndpointSlice endpoints carry readiness, pod labels, zone and region; WorkloadEntries are selected too', () => {
  const eps = reg.endpoints('reviews.bookinfo.svc.cluster.local', 9080);
  assert.deepEqual(eps.map((e) => [e.address, e.port, e.healthy]), [['10.1.0.1', 9090, false], ['10.1.0.2', 9090, true], ['192.168.1.9', 8000, true]]);
  const pod = eps[1];
  assert.equal(pod.labels.version, 'v1');
  assert.equal(pod.serviceAccount, 'bookinfo-reviews');
  assert.deepEqual(pod.locality, { region: 'us-east-1', zone: 'us-east-1a', subzone: '' });
  const vm = eps[2];
  assert.deepEqual(vm.locality, { region: 'eu', zone: 'west', subzone: 'a' });
  assert.equal(vm.weight, 3);
  assert.equal(vm.serviceAccount, 'vm-sa');
  // The grpc port has no slice port; only the WorkloadEntry (at the target port) serves it.
  assert.deepEqual(reg.endpoints('reviews.bookinfo.svc.cluster.local', 9081).map((e) => [e.address, e.port]), [['192.168.1.9', 9081]]);
  assert.deepEqual(reg.endpoints('reviews.bookinfo.svc.cluster.local', 1), []);
  assert.deepEqual(reg.endpoints('nope', 1), []);
});

test('short names, name.namespace and FQDNs resolve relative to the caller', () => {
  assert.equal(reg.lookupHost('reviews', 'bookinfo')?.name, 'reviews');
  assert.equal(reg.lookupHost('reviews', 'default'), undefined);
  assert.equal(reg.lookupHost('reviews.bookinfo', 'default')?.name, 'reviews');
  assert.equal(reg.lookupHost('reviews.bookinfo.svc', 'x')?.name, 'reviews');
  assert.equal(reg.lookupHost('reviews.bookinfo.svc.cluster.local', 'x')?.name, 'reviews');
  assert.equal(reg.qualify('a', 'b'), 'a.b.svc.cluster.local');
  assert.equal(reg.qualify('a.example.com', 'b'), 'a.example.com');
  assert.equal(reg.qualify('a.b', 'c'), 'a.b', 'Istio: a dotted host is an FQDN');
});

test('ServiceEntry hosts, wildcards and exportTo visibility', () => {
  assert.equal(reg.lookupHost('api.example.com', 'egress')?.resolution, 'DNS');
  assert.equal(reg.lookupHost('api.example.com', 'default'), undefined, 'exportTo "." hides it from other namespaces');
  assert.equal(reg.lookupHost('x.wild.com', 'egress')?.hostname, '*.wild.com');
  assert.equal(reg.lookupHost('wild.com', 'egress'), undefined);
  assert.deepEqual(reg.endpoints('api.example.com', 443).map((e) => [e.address, e.port]), [['api.example.com', 443]]);
  assert.deepEqual(reg.endpoints('*.wild.com', 443), []);
  assert.equal(reg.services().at(-1)?.hostname, '*.wild.com', 'wildcards sort last');
});

test('static ServiceEntry endpoints, target ports, per-port overrides and workloadSelector', () => {
  assert.deepEqual(reg.endpoints('db.internal', 5432).map((e) => [e.address, e.port, e.locality.region]), [['10.9.9.8', 7000, ''], ['10.9.9.9', 6432, 'r1']]);
  const vm = reg.endpoints('vm.internal', 80);
  assert.deepEqual(vm.map((e) => [e.address, e.port]), [['10.7.0.1', 80]]);
  assert.deepEqual(vm[0].locality, { region: 'r2', zone: 'z2', subzone: 's2' });
  assert.equal(reg.servicesInNamespace('default').length, 2);
});

test('the registry version changes with content and only with content', () => {
  const again = buildRegistry(sourceOf(resourcesFromYaml(yaml)));
  assert.equal(again.version, reg.version);
  const changed = buildRegistry(sourceOf(resourcesFromYaml(yaml.replace('10.9.9.9', '10.9.9.7'))));
  assert.notEqual(changed.version, reg.version);
});

test('bad input: missing lists and fields do not crash', () => {
  const r = buildRegistry(sourceOf(resourcesFromYaml(`
apiVersion: v1
kind: Service
metadata: { name: empty }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: e }
spec: { hosts: [h.example] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: s, labels: { kubernetes.io/service-name: empty } }
`)));
  assert.deepEqual(r.service('empty.default.svc.cluster.local')?.ports, []);
  assert.equal(r.service('h.example')?.resolution, 'NONE');
});
