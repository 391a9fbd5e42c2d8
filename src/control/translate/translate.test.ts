/**
 * translate() behaviour beyond the goldens: purity, consistency and its repairs, the hash policy
 * hook for route translation, gateway and egress behaviour through the simulator, and bad input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { translate, hashPolicyFor } from './index.ts';
import { consistencyProblems } from '../../xds/consistency.ts';
import { repairRouteClusters } from './dangling-clusters.ts';
import { simulate } from './simulate.ts';
import { node, snapshotFromYaml, loadCase, skipUnlessIncludesPresent } from './test-support.ts';
import { TypeUrl } from '../../xds/types.ts';
import type { XdsJson, XdsResourceSet, XdsTypeUrl } from '../../xds/types.ts';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';

const data = (name: string) => fileURLToPath(new URL(`./testdata/${name}`, import.meta.url));
/** bookinfo.yaml includes Istio's samples from ../shared. */
const skipBookinfo = skipUnlessIncludesPresent(readFileSync(data('bookinfo.yaml'), 'utf8'));

test('translate is pure: equal inputs give equal outputs and inputs are not mutated', { skip: skipBookinfo }, () => {
  const { snapshot, proxies } = loadCase(data('bookinfo.yaml'));
  const before = JSON.stringify(snapshot.list('networking.istio.io/DestinationRule'));
  const a = translate(snapshot, proxies[0]);
  const b = translate(snapshot, proxies[0]);
  assert.deepEqual([...a].map(([t, m]) => [t, [...m]]), [...b].map(([t, m]) => [t, [...m]]));
  assert.equal(JSON.stringify(snapshot.list('networking.istio.io/DestinationRule')), before);
});

test('hashPolicyFor gives the route hash policy of consistent-hash rules, per port and subset', () => {
  const { snapshot } = loadCase(data('lb-policies.yaml'));
  const host = 'web.default.svc.cluster.local';
  assert.deepEqual(hashPolicyFor(snapshot, host, '', 9090, 'default'), [{ header: { header_name: 'x-user' } }]);
  assert.deepEqual(hashPolicyFor(snapshot, host, '', 5432, 'default'), [{ connection_properties: { source_ip: true } }]);
  assert.deepEqual(hashPolicyFor(snapshot, host, 'cookie', 80, 'default'), [{ cookie: { name: 'session', path: '/', ttl: '3600s' } }]);
  assert.deepEqual(hashPolicyFor(snapshot, host, 'query', 80, 'default'), [{ query_parameter: { name: 'shard' } }]);
  assert.equal(hashPolicyFor(snapshot, host, '', 80, 'default'), undefined);
  assert.equal(hashPolicyFor(snapshot, 'nope.example', '', 80, 'default'), undefined);
});

test('dangling route clusters become what Envoy would answer: direct 503/500, BlackHole in weights, mirrors dropped', () => {
  const has = (c: string) => c === 'ok';
  const rc = {
    name: 'r',
    virtual_hosts: [{
      name: 'v',
      routes: [
        { name: 'a', match: { prefix: '/a' }, route: { cluster: 'missing' } },
        { name: 'b', match: { prefix: '/b' }, route: { cluster: 'missing', cluster_not_found_response_code: 'INTERNAL_SERVER_ERROR' } },
        { name: 'c', match: { prefix: '/c' }, route: { weighted_clusters: { clusters: [{ name: 'ok', weight: 50 }, { name: 'm1', weight: 30 }, { name: 'm2', weight: 20 }] } } },
        { name: 'd', match: { prefix: '/d' }, route: { cluster: 'ok', request_mirror_policies: [{ cluster: 'm3' }] } },
        { name: 'e', match: { prefix: '/' }, route: { cluster: 'ok' } },
      ],
    }],
  };
  const fixed = repairRouteClusters(rc, has) as { virtual_hosts: { routes: Record<string, unknown>[] }[] };
  const routes = fixed.virtual_hosts[0].routes;
  assert.deepEqual(routes[0], { name: 'a', match: { prefix: '/a' }, direct_response: { status: 503 } });
  assert.deepEqual(routes[1].direct_response, { status: 500 });
  assert.deepEqual((routes[2].route as { weighted_clusters: unknown }).weighted_clusters, { clusters: [{ name: 'ok', weight: 50 }, { name: 'BlackHoleCluster', weight: 50 }] });
  assert.deepEqual(routes[3].route, { cluster: 'ok' });
  assert.equal(routes[4], rc.virtual_hosts[0].routes[4]);
  const clean = { name: 'r', virtual_hosts: [] };
  assert.equal(repairRouteClusters(clean, has), clean);
});

test('Istio gateway: SNI picks the HTTPS server, TLS passthrough by SNI, TCP server, HTTP redirects', () => {
  const { snapshot, proxies } = loadCase(data('gateway-istio.yaml'));
  const s = translate(snapshot, proxies[0]);
  const web = simulate(s, { listener: '0.0.0.0_443', sni: 'web.example.com', host: 'web.example.com' });
  assert.equal(web.routeConfig, 'https.443.https-web.edge.istio-system');
  assert.deepEqual(web.clusters.map((c) => c.name), ['outbound|80||web.apps.svc.cluster.local']);
  assert.deepEqual(web.endpoints['outbound|80||web.apps.svc.cluster.local'], ['10.6.0.1:80']);
  const admin = simulate(s, { listener: '0.0.0.0_443', sni: 'admin.example.com', host: 'admin.example.com' });
  assert.equal(admin.routeConfig, 'https.443.https-admin.edge.istio-system');
  assert.equal(simulate(s, { listener: '0.0.0.0_443', sni: 'other.example.com' }).error, 'no filter chain');
  const pass = simulate(s, { listener: '0.0.0.0_8443', sni: 'a.pass.example.com' });
  assert.deepEqual(pass.clusters.map((c) => c.name), ['outbound|443||tlsapp.apps.svc.cluster.local']);
  const tcp = simulate(s, { port: 5432 });
  assert.deepEqual(tcp.clusters.map((c) => c.name), ['outbound|5432||db.apps.svc.cluster.local']);
  const plain = simulate(s, { listener: '0.0.0.0_80', host: 'web.example.com' });
  assert.equal(plain.routeConfig, 'http.80');
  const vh = (s.get(TypeUrl.RouteConfiguration)?.get('http.80')?.virtual_hosts as { require_tls?: string }[])[0];
  assert.equal(vh.require_tls, 'ALL');
  const l = s.get(TypeUrl.Listener)?.get('0.0.0.0_80') as { address: { socket_address: { port_value: number } } };
  assert.equal(l.address.socket_address.port_value, 8080, 'TRELLIS_GATEWAY_PORTS remaps the bind port');
  const hcm = (s.get(TypeUrl.Listener)?.get('0.0.0.0_80') as { filter_chains: { filters: { typed_config: { use_remote_address: boolean; http_filters: { name: string }[] } }[] }[] }).filter_chains[0].filters[0].typed_config;
  assert.equal(hcm.use_remote_address, true);
  assert.deepEqual(hcm.http_filters.map((f) => f.name), ['trellis.filters.http.stats', 'envoy.filters.http.fault', 'envoy.filters.http.cors', 'envoy.filters.http.router']);
});

test('Gateway API gateway: HTTPRoute through HTTP and HTTPS listeners, TLSRoute and TCPRoute', () => {
  const { snapshot, proxies } = loadCase(data('gateway-api.yaml'));
  const s = translate(snapshot, proxies[0]);
  for (const req of [{ port: 80, host: 'store.example.com' }, { port: 443, host: 'store.example.com', sni: 'store.example.com' }]) {
    const r = simulate(s, req);
    assert.deepEqual(r.clusters.map((c) => c.name), ['outbound|8080||store.apps.svc.cluster.local'], JSON.stringify(req));
    assert.deepEqual(r.endpoints['outbound|8080||store.apps.svc.cluster.local'], ['10.7.0.1:8080']);
  }
  assert.deepEqual(simulate(s, { port: 8443, sni: 'secure.example.com' }).clusters.map((c) => c.name), ['outbound|443||tls-backend.apps.svc.cluster.local']);
  assert.deepEqual(simulate(s, { port: 9000 }).clusters.map((c) => c.name), ['outbound|9000||tcp-backend.apps.svc.cluster.local']);
  // A proxy not matched to the Gateway gets no gateway listeners.
  const other = translate(snapshot, node('router', 'infra', 'x'));
  assert.equal(other.get(TypeUrl.Listener)?.size, 0);
});

test('Sidecar egress scoping and REGISTRY_ONLY: out-of-scope services are unknown hosts, which get 502', () => {
  const { snapshot, proxies } = loadCase(data('sidecar-egress.yaml'));
  const s = translate(snapshot, proxies[0]);
  assert.deepEqual(simulate(s, { port: 80, host: 'a' }).clusters.map((c) => c.name), ['outbound|80||a.team.svc.cluster.local']);
  const b = simulate(s, { port: 80, host: 'b.other' });
  assert.equal(b.directResponse, 502);
  assert.equal(s.get(TypeUrl.Cluster)?.has('outbound|80||b.other.svc.cluster.local'), false);
  assert.equal(s.get(TypeUrl.Cluster)?.has('outbound|80||hidden.shared.svc.cluster.local'), false, 'exportTo "." hides it');
  assert.deepEqual(simulate(s, { listener: 'inbound_0.0.0.0_9000' }).endpoints['inbound|9000||'], ['127.0.0.1:19000']);
});

test('proxyless gRPC: api listeners by the names gRPC asks for resolve to the service cluster', () => {
  const { snapshot, proxies } = loadCase(data('proxyless-grpc.yaml'));
  const s = translate(snapshot, proxies[0]);
  for (const name of ['greeter:50051', 'greeter.default.svc.cluster.local:50051', 'greeter', 'greeter.default']) {
    const r = simulate(s, { listener: name });
    assert.deepEqual(r.clusters.map((c) => c.name), ['outbound|50051||greeter.default.svc.cluster.local'], name);
    assert.deepEqual(r.endpoints['outbound|50051||greeter.default.svc.cluster.local'], ['10.8.0.1:50051']);
  }
  assert.equal(s.get(TypeUrl.Listener)?.has('multi.other'), false, 'no port-less name for a multi-port service');
  assert.equal(s.get(TypeUrl.Listener)?.has('multi.other:7002'), false, 'TCP ports are not for gRPC');
  assert.equal(s.get(TypeUrl.Cluster)?.has('BlackHoleCluster'), false);
});

test('ServiceEntries: DNS clusters carry their endpoints inline; static ones are EDS', () => {
  const { snapshot, proxies } = loadCase(data('service-entries.yaml'));
  const s = translate(snapshot, proxies[0]);
  const c = s.get(TypeUrl.Cluster)!;
  assert.equal(c.get('outbound|80||httpbin.org')?.type, 'STRICT_DNS');
  assert.equal(c.get('outbound|443||api.vendor.com')?.type, 'LOGICAL_DNS');
  assert.equal(c.get('outbound|8080||legacy.internal')?.type, 'EDS');
  assert.equal(c.get('outbound|443||*.wild.example')?.type, 'ORIGINAL_DST');
  assert.deepEqual(simulate(s, { port: 5432 }).endpoints['outbound|5432||db.vendor.com'], ['eu.db.vendor.com:6432', 'us.db.vendor.com:5432']);
  assert.deepEqual([...simulate(s, { port: 8080, host: 'legacy.internal' }).endpoints['outbound|8080||legacy.internal']].sort(), ['192.168.10.5:18080', '192.168.10.6:18080']);
  assert.ok(c.get('outbound|443||httpbin.org')?.transport_socket, 'port-level TLS applies to 443 only');
  assert.equal(c.get('outbound|80||httpbin.org')?.transport_socket, undefined);
});

test('bad input: unknown destinations, empty gateways, odd rules and selectors do not break translation', () => {
  const snapshot = snapshotFromYaml(`
apiVersion: v1
kind: Service
metadata: { name: s, namespace: default }
spec: { ports: [{ name: tcp, port: 1000 }, { name: dns, port: 53, protocol: UDP }, { port: 0 }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: v, namespace: default }
spec: { hosts: [s], tcp: [{ route: [{ destination: { host: nowhere } }] }], tls: [{ match: [{ sniHosts: [] }] }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: d, namespace: default }
spec: { host: s, trafficPolicy: { loadBalancer: { simple: BOGUS }, outlierDetection: { interval: "not-a-duration" }, connectionPool: { tcp: { connectTimeout: "x" } } }, subsets: [{ labels: { a: b } }, { name: "" }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: nohost, namespace: default }
spec: {}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: g, namespace: default }
spec: { selector: { istio: gw }, servers: [{ hosts: ["*"] }, { port: { number: 81, protocol: HTTPS }, hosts: ["*"] }] }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: none, namespace: default }
spec: { egress: [{ hosts: ["~/*"] }] }
`, { raw: true });
  const side = translate(snapshot, node('sidecar', 'default', 'p'));
  assert.deepEqual([...side.get(TypeUrl.Cluster)!.keys()], ['BlackHoleCluster', 'PassthroughCluster'], 'egress ~/* selects nothing');
  const other = translate(snapshot, node('sidecar', 'x', 'p'));
  const cl = other.get(TypeUrl.Cluster)!.get('outbound|1000||s.default.svc.cluster.local')!;
  assert.equal(cl.lb_policy, 'LEAST_REQUEST');
  assert.equal(cl.connect_timeout, '10s');
  assert.equal((cl.outlier_detection as Record<string, unknown>).interval, undefined);
  assert.deepEqual(simulate(other, { port: 1000 }).clusters.map((c) => c.name), ['BlackHoleCluster']);
  assert.equal(other.get(TypeUrl.Cluster)!.has('outbound|53||s.default.svc.cluster.local'), false, 'UDP skipped');
  const gw = translate(snapshot, node('router', 'default', 'g', { LABELS: { istio: 'gw' } }));
  assert.deepEqual(consistencyProblems(gw), []);
  assert.deepEqual([...gw.get(TypeUrl.Listener)!.keys()], ['0.0.0.0_81']);
});

test('consistent-hash DestinationRules put hash_policy on the routes to them', () => {
  const { snapshot, proxies } = loadCase(data('lb-policies.yaml'));
  const s = translate(snapshot, proxies[0]);
  const route = (name: string) => ((s.get(TypeUrl.RouteConfiguration)?.get(name)?.virtual_hosts as { name: string; routes: { route?: Record<string, unknown> }[] }[])
    .find((v) => v.name.startsWith('web.'))!.routes[0].route!);
  assert.deepEqual(route('9090').hash_policy, [{ header: { header_name: 'x-user' } }]);
  assert.equal(route('80').hash_policy, undefined);
});

test('proxies in different namespaces share cluster and endpoint objects when the same DestinationRule applies; a namespace-local rule gets its own', () => {
  const snapshot = snapshotFromYaml(`
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec: { ports: [{ name: http, port: 80 }], selector: { app: web } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web, namespace: shop }
spec: { host: web.shop.svc.cluster.local, trafficPolicy: { loadBalancer: { simple: RANDOM } } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web-local, namespace: billing }
spec: { host: web.shop.svc.cluster.local, trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } } }
`);
  const cluster = (ns: string) => translate(snapshot, node('sidecar', ns, `p-${ns}`)).get(TypeUrl.Cluster as XdsTypeUrl)!.get('outbound|80||web.shop.svc.cluster.local')!;
  const a = cluster('team-a');
  const b = cluster('team-b');
  const billing = cluster('billing');
  assert.equal(a, b, 'same rule (the service namespace one) -> the same object');
  assert.equal(a.lb_policy, 'RANDOM');
  assert.notEqual(billing, a);
  assert.equal(billing.lb_policy, 'ROUND_ROBIN');
  const eds = (ns: string) => translate(snapshot, node('sidecar', ns, `p-${ns}`)).get(TypeUrl.ClusterLoadAssignment as XdsTypeUrl)!.get('outbound|80||web.shop.svc.cluster.local');
  assert.equal(eds('team-a'), eds('team-b'));
});

test('explicit capture with a port map: a port the map lacks gets no listener (it would collide between sidecars) but stays reachable through the HTTP proxy', () => {
  const snapshot = snapshotFromYaml(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec: {hosts: [api.external.test], ports: [{number: 80, name: http, protocol: HTTP}], resolution: STATIC, endpoints: [{address: 10.1.1.1}]}
`);
  const s = translate(snapshot, node('sidecar', 'default', 'client', { TRELLIS_OUTBOUND_PORTS: { 8080: 18080 }, TRELLIS_HTTP_PROXY_PORT: 15080 }));
  assert.deepEqual([...s.get(TypeUrl.Listener)!.keys()], ['127.0.0.1_15080']);
  const r = simulate(s, { listener: '127.0.0.1_15080', host: 'api.external.test' });
  assert.deepEqual(r.clusters.map((c) => c.name), ['outbound|80||api.external.test']);
  const mapped = translate(snapshot, node('sidecar', 'default', 'client', { TRELLIS_OUTBOUND_PORTS: { 80: 18081 } }));
  assert.deepEqual((mapped.get(TypeUrl.Listener)!.get('127.0.0.1_80')!.address as { socket_address: { port_value: number } }).socket_address.port_value, 18081);
});
