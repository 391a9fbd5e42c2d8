import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSnapshot } from './snapshot.ts';
import { affectsProxy } from './affects.ts';
import { resourcesFromYaml, sourceOf } from '../../registry/test-support.ts';
import { proxyNodeFromXds } from '../proxy-node.ts';
import { ResourceTypes } from '../../config/resource.ts';

const base = `
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: bookinfo }
spec: { ports: [{ name: http, port: 9080 }], selector: { app: reviews } }
---
apiVersion: v1
kind: Service
metadata: { name: ratings, namespace: other }
spec: { ports: [{ name: http, port: 9080 }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: root, namespace: istio-system }
spec: { host: "*.svc.cluster.local", trafficPolicy: { loadBalancer: { simple: RANDOM } } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: bookinfo }
spec: { host: reviews, subsets: [{ name: v1, labels: { version: v1 } }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews-client, namespace: client }
spec: { host: reviews.bookinfo.svc.cluster.local, exportTo: ["."] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: hidden, namespace: other }
spec: { host: ratings.other.svc.cluster.local, exportTo: ["."] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: bookinfo }
spec: { hosts: [reviews], http: [] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: edge, namespace: bookinfo }
spec: { hosts: ["*"], gateways: [bookinfo-gateway, mesh], exportTo: ["."] }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: istio-system }
spec: { egress: [{ hosts: ["./*"] }] }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: special, namespace: bookinfo }
spec: { workloadSelector: { labels: { app: special } }, egress: [{ hosts: ["*/*"] }] }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: bookinfo-gateway, namespace: bookinfo }
spec: { selector: { istio: ingressgateway }, servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ["*"] }] }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: gw, namespace: infra }
spec: { gatewayClassName: trellis, listeners: [{ name: http, port: 80, protocol: HTTP }] }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: r1, namespace: apps }
spec: { parentRefs: [{ name: gw, namespace: infra }, { kind: Service, group: "", name: reviews, namespace: bookinfo }] }
`;

test('snapshot holds frozen lists, registry, settings and indexes', () => {
  const s = buildSnapshot(sourceOf(resourcesFromYaml(base)));
  assert.equal(s.version, 1);
  assert.equal(s.mesh.rootNamespace, 'istio-system');
  assert.equal(s.mesh.outboundTrafficPolicy, 'ALLOW_ANY');
  assert.ok(Object.isFrozen(s.list(ResourceTypes.VirtualService)));
  assert.equal(s.list(ResourceTypes.VirtualService).length, 2);
  assert.equal(s.list(ResourceTypes.VirtualService, 'nope').length, 0);
  assert.equal(s.get(ResourceTypes.Service, 'bookinfo', 'reviews')?.metadata.name, 'reviews');
  assert.ok(s.registry.service('reviews.bookinfo.svc.cluster.local'));
});

test('destination rule lookup: proxy namespace, then service namespace, then root; exportTo respected', () => {
  const s = buildSnapshot(sourceOf(resourcesFromYaml(base)));
  const dr = s.destinationRules;
  assert.equal(dr.lookup('reviews.bookinfo.svc.cluster.local', 'client', 'bookinfo')?.resource.metadata.name, 'reviews-client');
  assert.equal(dr.lookup('reviews.bookinfo.svc.cluster.local', 'x', 'bookinfo')?.resource.metadata.name, 'reviews');
  assert.equal(dr.lookup('ratings.other.svc.cluster.local', 'x', 'other')?.resource.metadata.name, 'root', 'exportTo "." hides the other rule');
  assert.equal(dr.lookup('ratings.other.svc.cluster.local', 'other', 'other')?.resource.metadata.name, 'hidden');
  assert.equal(dr.lookup('api.example.com', 'x', 'y'), undefined);
});

test('same-host destination rules merge as in Istio: oldest first, first subset definition and first top-level policy win; exportTo decides who sees which', () => {
  const s = buildSnapshot(sourceOf(resourcesFromYaml(`
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: bookinfo }
spec: { ports: [{ name: http, port: 9080 }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: b-newer, namespace: bookinfo, creationTimestamp: "2026-02-01T00:00:00Z" }
spec:
  host: reviews
  trafficPolicy: { loadBalancer: { simple: RANDOM } }
  subsets: [{ name: v1, labels: { version: late } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: a-older, namespace: bookinfo, creationTimestamp: "2026-01-01T00:00:00Z" }
spec:
  host: reviews.bookinfo.svc.cluster.local
  subsets: [{ name: v1, labels: { version: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: c-local, namespace: bookinfo, creationTimestamp: "2026-03-01T00:00:00Z" }
spec:
  host: reviews
  exportTo: ["."]
  trafficPolicy: { loadBalancer: { simple: LEAST_REQUEST } }
  subsets: [{ name: v3, labels: { version: v3 } }]
`)));
  const host = 'reviews.bookinfo.svc.cluster.local';
  const fromOutside = s.destinationRules.lookup(host, 'x', 'bookinfo')!;
  assert.deepEqual(fromOutside.mergedFrom?.map((r) => r.metadata.name), ['a-older', 'b-newer']);
  assert.equal(fromOutside.resource.metadata.name, 'a-older');
  assert.deepEqual(fromOutside.spec.subsets?.map((x) => `${x.name}=${x.labels?.version}`), ['v1=v1', 'v2=v2']);
  assert.equal(fromOutside.spec.trafficPolicy?.loadBalancer?.simple, 'RANDOM', 'the oldest has none, so the next one\'s applies');
  assert.equal(s.destinationRules.lookup(host, 'y', 'bookinfo'), fromOutside, 'one merged object per set of rules (clusters are shared by rule identity)');
  const inside = s.destinationRules.lookup(host, 'bookinfo', 'bookinfo')!;
  assert.deepEqual(inside.mergedFrom?.map((r) => r.metadata.name), ['a-older', 'b-newer', 'c-local']);
  assert.deepEqual(inside.spec.subsets?.map((x) => x.name), ['v1', 'v2', 'v3']);
  assert.equal(inside.spec.trafficPolicy?.loadBalancer?.simple, 'RANDOM');
});

test('virtual services by gateway, sidecars by workload, gateways and routes by parent', () => {
  const s = buildSnapshot(sourceOf(resourcesFromYaml(base)));
  assert.deepEqual(s.virtualServices.forGateway('mesh', 'bookinfo').map((v) => v.resource.metadata.name), ['edge', 'reviews']);
  assert.deepEqual(s.virtualServices.forGateway('mesh', 'default').map((v) => v.resource.metadata.name), ['reviews']);
  assert.deepEqual(s.virtualServices.forGateway('bookinfo/bookinfo-gateway').map((v) => v.resource.metadata.name), ['edge']);
  assert.deepEqual(s.virtualServices.forHost('reviews.bookinfo.svc.cluster.local', 'mesh', 'x').map((v) => v.hosts[0]), ['reviews.bookinfo.svc.cluster.local']);
  assert.equal(s.sidecars.forProxy('bookinfo', { app: 'special' })?.resource.metadata.name, 'special');
  assert.equal(s.sidecars.forProxy('bookinfo', { app: 'x' })?.resource.metadata.name, 'default');
  assert.equal(s.gateways.istioGatewaysFor({ istio: 'ingressgateway' }).length, 1);
  assert.equal(s.gateways.istioGatewaysFor({}).length, 0);
  assert.equal(s.gateways.gatewayApiGatewaysFor('infra', { 'gateway.networking.k8s.io/gateway-name': 'gw' }, {}).length, 1);
  assert.equal(s.gateways.gatewayApiGatewaysFor('x', {}, { TRELLIS_GATEWAY: 'infra/gw' }).length, 1);
  assert.equal(s.routeParents.routesFor(ResourceTypes.HTTPRoute, 'Gateway', 'infra', 'gw').length, 1);
  assert.equal(s.routeParents.routesFor(ResourceTypes.HTTPRoute, 'Service', 'bookinfo', 'reviews').length, 1);
});

test('rebuilding reuses the registry and unchanged indexes by identity', () => {
  const resources = resourcesFromYaml(base);
  const s1 = buildSnapshot(sourceOf(resources));
  const s2 = buildSnapshot(sourceOf(resources), {}, s1);
  assert.equal(s2.version, 2);
  assert.equal(s2.registry, s1.registry);
  assert.equal(s2.destinationRules, s1.destinationRules);
  const vsChanged = resources.filter((r) => !(r.type === ResourceTypes.VirtualService && r.metadata.name === 'edge'));
  const s3 = buildSnapshot(sourceOf(vsChanged), {}, s2);
  assert.equal(s3.registry, s1.registry);
  assert.notEqual(s3.virtualServices, s2.virtualServices);
  // Same content, new objects: the registry is still reused (by version).
  const s4 = buildSnapshot(sourceOf(resourcesFromYaml(base)), {}, s3);
  assert.equal(s4.registry, s1.registry);
  const s5 = buildSnapshot(sourceOf(resourcesFromYaml(base.replace('port: 9080 }], selector', 'port: 9081 }], selector'))), {}, s4);
  assert.notEqual(s5.registry, s1.registry);
});

test('affectsProxy: gateway-only config skips sidecars, sidecar scoping by namespace and selector, unknown is affected', () => {
  const r = resourcesFromYaml(base);
  const find = (type: string, name: string) => r.find((x) => x.type === type && x.metadata.name === name)!;
  const sidecar = proxyNodeFromXds({ id: 'sidecar~10.0.0.1~p.bookinfo~bookinfo.svc.cluster.local', metadata: { LABELS: { app: 'x' } } });
  const router = proxyNodeFromXds({ id: 'router~10.0.0.2~gw.istio-system~istio-system.svc.cluster.local' });
  assert.equal(affectsProxy([find(ResourceTypes.IstioGateway, 'bookinfo-gateway')], sidecar), false);
  assert.equal(affectsProxy([find(ResourceTypes.IstioGateway, 'bookinfo-gateway')], router), true);
  assert.equal(affectsProxy([find(ResourceTypes.Sidecar, 'special')], sidecar), false);
  assert.equal(affectsProxy([find(ResourceTypes.Sidecar, 'default')], sidecar), true);
  assert.equal(affectsProxy([find(ResourceTypes.VirtualService, 'reviews')], router), false);
  assert.equal(affectsProxy([find(ResourceTypes.VirtualService, 'edge')], router), true);
  assert.equal(affectsProxy([find(ResourceTypes.VirtualService, 'edge')], sidecar), true);
  assert.equal(affectsProxy([find(ResourceTypes.Service, 'reviews')], router), true);
  assert.equal(affectsProxy([], router), false);
});

test('a DestinationRule with a workloadSelector applies only to the selected proxies of its namespace, before other rules', () => {
  const s = buildSnapshot(sourceOf(resourcesFromYaml(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext, namespace: istio-system }
spec: { hosts: [api.example.com], ports: [{ number: 443, name: https, protocol: HTTPS }], resolution: DNS }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: everyone, namespace: istio-system }
spec: { host: api.example.com, trafficPolicy: { tls: { mode: SIMPLE } } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: egress-only, namespace: istio-system }
spec:
  host: api.example.com
  workloadSelector: { matchLabels: { istio: egressgateway } }
  trafficPolicy: { tls: { mode: SIMPLE, credentialName: api-ca } }
`)));
  const lookup = (ns: string, labels: Record<string, string>) => s.destinationRules.lookup('api.example.com', ns, 'istio-system', labels)?.resource.metadata.name;
  assert.equal(lookup('istio-system', { istio: 'egressgateway', app: 'istio-egressgateway' }), 'egress-only');
  assert.equal(lookup('istio-system', { istio: 'ingressgateway' }), 'everyone', 'not selected');
  assert.equal(lookup('default', { istio: 'egressgateway' }), 'everyone', 'selectors do not cross namespaces');
  assert.equal(s.destinationRules.lookup('api.example.com', 'istio-system', 'istio-system')?.resource.metadata.name, 'everyone', 'no labels given: no workload rule');
});

test('a Secret change is pushed to sidecars too (DestinationRule credentialName)', () => {
  const secret = resourcesFromYaml('apiVersion: v1\nkind: Secret\nmetadata: { name: api-ca, namespace: default }\ndata: {}\n')[0];
  const sidecar = proxyNodeFromXds({ id: 'sidecar~10.0.0.1~a.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default' } });
  assert.equal(affectsProxy([secret], sidecar), true);
});
