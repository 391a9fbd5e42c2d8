/**
 * Simulation tests: synthetic requests through the resources translate() generates, checking the
 * behaviour Istio documents for its samples and the listener layouts of both capture modes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { translate } from './index.ts';
import { simulate, pickVirtualHost, routeMatches } from './simulate.ts';
import { node, snapshotFromYaml, loadCase, skipUnlessIncludesPresent } from './test-support.ts';
import { fileURLToPath } from 'node:url';

const endpoints = readFileSync(new URL('./testdata/bookinfo.yaml', import.meta.url), 'utf8').split('\n').slice(1).join('\n');
const samples = '../shared/istio-samples';
const bookinfoText = (vs: string) => `# include: ${samples}/bookinfo.yaml ${samples}/destination-rule-all.yaml ${samples}/${vs}\n${endpoints}`;
const bookinfo = (vs: string) => snapshotFromYaml(bookinfoText(vs));
/** Every test on the Bookinfo sample needs ../shared/istio-samples. */
const skip = skipUnlessIncludesPresent(bookinfoText('virtual-service-reviews-80-20.yaml'));
const productpage = node('sidecar', 'default', 'productpage-v1', { LABELS: { app: 'productpage', version: 'v1' }, TRELLIS_HTTP_PROXY_PORT: 15080 });

test('reviews 80/20: both subsets weighted, with their endpoints', { skip }, () => {
  const set = translate(bookinfo('virtual-service-reviews-80-20.yaml'), productpage);
  const r = simulate(set, { port: 9080, host: 'reviews:9080', path: '/reviews/0' });
  assert.equal(r.listener, '127.0.0.1_9080');
  assert.equal(r.routeConfig, '9080');
  assert.deepEqual(r.clusters, [
    { name: 'outbound|9080|v1|reviews.default.svc.cluster.local', weight: 80 },
    { name: 'outbound|9080|v2|reviews.default.svc.cluster.local', weight: 20 },
  ]);
  assert.deepEqual(r.endpoints['outbound|9080|v1|reviews.default.svc.cluster.local'], ['10.1.0.11:9080']);
  assert.deepEqual(r.endpoints['outbound|9080|v2|reviews.default.svc.cluster.local'], ['10.1.0.12:9080']);
});

test('jason goes to reviews v2, everyone else to v3', { skip }, () => {
  const set = translate(bookinfo('virtual-service-reviews-jason-v2-v3.yaml'), productpage);
  const jason = simulate(set, { port: 9080, host: 'reviews.default.svc.cluster.local:9080', headers: { 'end-user': 'jason' } });
  assert.deepEqual(jason.clusters.map((c) => c.name), ['outbound|9080|v2|reviews.default.svc.cluster.local']);
  const other = simulate(set, { port: 9080, host: 'reviews', headers: { 'end-user': 'bob' } });
  assert.deepEqual(other.clusters.map((c) => c.name), ['outbound|9080|v3|reviews.default.svc.cluster.local']);
  assert.deepEqual(other.endpoints['outbound|9080|v3|reviews.default.svc.cluster.local'], ['10.1.0.13:9080']);
});

test('a host without a VirtualService gets the default route; unknown hosts pass through (ALLOW_ANY)', { skip }, () => {
  const set = translate(bookinfo('virtual-service-reviews-80-20.yaml'), productpage);
  const d = simulate(set, { port: 9080, host: 'details:9080' });
  assert.deepEqual(d.clusters.map((c) => c.name), ['outbound|9080||details.default.svc.cluster.local']);
  const u = simulate(set, { port: 9080, host: 'example.com' });
  assert.deepEqual(u.clusters.map((c) => c.name), ['PassthroughCluster']);
});

test('the HTTP proxy listener routes by host:port across ports', { skip }, () => {
  const set = translate(bookinfo('virtual-service-reviews-80-20.yaml'), productpage);
  const r = simulate(set, { listener: '127.0.0.1_15080', host: 'ratings.default:9080' });
  assert.equal(r.routeConfig, 'http_proxy');
  assert.deepEqual(r.clusters.map((c) => c.name), ['outbound|9080||ratings.default.svc.cluster.local']);
});

test('inbound: the sidecar forwards to the app port from TRELLIS_APP_PORTS', { skip }, () => {
  const p = node('sidecar', 'default', 'reviews-v1', { LABELS: { app: 'reviews', version: 'v1' }, TRELLIS_APP_PORTS: { 9080: 19080 } });
  const set = translate(bookinfo('virtual-service-reviews-80-20.yaml'), p);
  const r = simulate(set, { listener: 'inbound_0.0.0.0_9080', host: 'reviews:9080' });
  assert.deepEqual(r.clusters.map((c) => c.name), ['inbound|9080||']);
  assert.deepEqual(r.endpoints['inbound|9080||'], ['127.0.0.1:19080']);
});

test('transparent capture: virtualOutbound/virtualInbound and bind_to_port=false port listeners', { skip }, () => {
  const p = node('sidecar', 'default', 'reviews-v1', { LABELS: { app: 'reviews', version: 'v1' }, TRELLIS_CAPTURE_MODE: 'transparent' });
  const set = translate(bookinfo('virtual-service-reviews-80-20.yaml'), p);
  const ls = set.get('type.googleapis.com/envoy.config.listener.v3.Listener')!;
  assert.equal(ls.get('virtualOutbound')?.use_original_dst, true);
  assert.equal(ls.get('0.0.0.0_9080')?.bind_to_port, false);
  // Istio's virtualInbound restores the original destination (original_dst filter) but never hands off.
  assert.equal(ls.get('virtualInbound')?.use_original_dst, undefined);
  // No mesh CA here, so no mTLS chains and no TLS inspector.
  assert.deepEqual((ls.get('virtualInbound')?.listener_filters as { name: string }[]).map((f) => f.name), ['envoy.filters.listener.original_dst']);
  const out = simulate(set, { listener: '0.0.0.0_9080', host: 'ratings:9080' });
  assert.deepEqual(out.clusters.map((c) => c.name), ['outbound|9080||ratings.default.svc.cluster.local']);
  const inbound = simulate(set, { listener: 'virtualInbound', port: 9080 });
  assert.equal(inbound.filterChain, 'inbound|9080||');
  assert.deepEqual(inbound.endpoints['inbound|9080||'], ['127.0.0.1:9080']);
  const other = simulate(set, { listener: 'virtualInbound', port: 7777 });
  assert.deepEqual(other.clusters.map((c) => c.name), ['PassthroughCluster']);
});

test('simulator: Envoy virtual host order and route matching', () => {
  const rc = {
    virtual_hosts: [
      { name: 'star', domains: ['*'] },
      { name: 'prefix', domains: ['api.*'] },
      { name: 'suffix', domains: ['*.example.com'] },
      { name: 'longer-suffix', domains: ['*.b.example.com'] },
      { name: 'exact', domains: ['a.example.com'] },
    ],
  };
  assert.equal(pickVirtualHost(rc, 'a.example.com')?.name, 'exact');
  assert.equal(pickVirtualHost(rc, 'x.b.example.com')?.name, 'longer-suffix');
  assert.equal(pickVirtualHost(rc, 'api.example.com')?.name, 'suffix');
  assert.equal(pickVirtualHost(rc, 'api.other')?.name, 'prefix');
  assert.equal(pickVirtualHost(rc, 'zzz')?.name, 'star');
  assert.equal(pickVirtualHost({ virtual_hosts: [] }, 'x'), undefined);
  const h = { ':method': 'GET' };
  assert.ok(routeMatches({ prefix: '/a' }, '/abc?x=1', h));
  assert.ok(!routeMatches({ path: '/a' }, '/abc', h));
  assert.ok(routeMatches({ safe_regex: { regex: '/v[0-9]+/.*' } }, '/v1/x', h));
  assert.ok(!routeMatches({ safe_regex: { regex: '/v[0-9]+' } }, '/v1/x', h));
  assert.ok(routeMatches({ path_separated_prefix: '/api' }, '/api/x', h));
  assert.ok(!routeMatches({ path_separated_prefix: '/api' }, '/apix', h));
  assert.ok(routeMatches({ prefix: '/', query_parameters: [{ name: 'q', string_match: { exact: '1' } }] }, '/?q=1', h));
  assert.ok(!routeMatches({ prefix: '/', query_parameters: [{ name: 'q', present_match: true }] }, '/', h));
  assert.ok(routeMatches({ prefix: '/', headers: [{ name: 'x', string_match: { prefix: 'ab' } }] }, '/', { ...h, x: 'abc' }));
  assert.ok(routeMatches({ prefix: '/', headers: [{ name: 'x', present_match: true, invert_match: true }] }, '/', h));
  assert.ok(routeMatches({ prefix: '/', headers: [{ name: ':method', exact_match: 'GET' }] }, '/', h));
});

test('simulator: bad requests report why nothing matched', { skip }, () => {
  const set = translate(bookinfo('virtual-service-reviews-80-20.yaml'), productpage);
  assert.equal(simulate(set, { listener: 'nope' }).error, 'no listener');
  assert.equal(simulate(set, { port: 1 }).error, 'no listener');
  assert.deepEqual(simulate(set, {}).clusters, []);
});

test('unknown-protocol ports are sniffed: HTTP by the inspector, anything else TCP', { skip }, () => {
  const { snapshot, proxies } = loadCase(fileURLToPath(new URL('./testdata/bookinfo.yaml', import.meta.url)));
  const set = translate(snapshot, proxies[0]);
  const http = simulate(set, { listener: '127.0.0.1_7000', host: 'legacy:7000', applicationProtocol: 'http/1.1' });
  assert.equal(http.routeConfig, '7000');
  assert.deepEqual(http.clusters.map((c) => c.name), ['outbound|7000||legacy.default.svc.cluster.local']);
  const tcp = simulate(set, { listener: '127.0.0.1_7000' });
  assert.equal(tcp.routeConfig, undefined);
  assert.deepEqual(tcp.clusters.map((c) => c.name), ['outbound|7000||legacy.default.svc.cluster.local']);
  const inbound = simulate(set, { listener: 'inbound_0.0.0.0_7000', applicationProtocol: 'h2c' });
  assert.deepEqual(inbound.clusters.map((c) => c.name), ['inbound|7000||']);
});

test('transparent capture, ClusterIP matching: a Service VIP picks that Service\'s routes whatever the Host; pod IPs pass through', () => {
  const { snapshot, proxies } = loadCase(fileURLToPath(new URL('./testdata/cluster-ip-matching.yaml', import.meta.url)));
  const [explicit, transparent] = proxies.map((p) => translate(snapshot, p));
  const headerSet = (set: typeof transparent, rc: string) => {
    const cfg = set.get('type.googleapis.com/envoy.config.route.v3.RouteConfiguration')!.get(rc)!;
    return JSON.stringify(cfg).includes('X-Header-Set');
  };
  // MeshFrontendHostname: to echo-v2's VIP with Host echo-v1 -> echo-v2's HTTPRoute.
  const v2 = simulate(transparent, { port: 80, destinationIp: '10.96.1.2', host: 'echo-v1' });
  assert.equal(v2.filterChain, 'echo-v2.mesh.svc.cluster.local:80');
  assert.equal(v2.routeConfig, 'echo-v2.mesh.svc.cluster.local:80');
  assert.deepEqual(v2.clusters.map((c) => c.name), ['outbound|80||echo-v2.mesh.svc.cluster.local']);
  assert.ok(headerSet(transparent, v2.routeConfig!));
  // To echo-v1's VIP with Host echo-v2 -> echo-v1's VirtualService (not echo-v2's route).
  const v1 = simulate(transparent, { port: 80, destinationIp: '10.96.1.1', host: 'echo-v2', path: '/' });
  assert.equal(v1.routeConfig, 'echo-v1.mesh.svc.cluster.local:80');
  assert.deepEqual(v1.clusters.map((c) => c.name), ['outbound|80||echo-v1.mesh.svc.cluster.local']);
  assert.ok(!headerSet(transparent, v1.routeConfig!));
  assert.deepEqual(simulate(transparent, { port: 80, destinationIp: '10.96.1.1', host: 'anything', path: '/v2/x' }).clusters.map((c) => c.name), ['outbound|80||echo-v2.mesh.svc.cluster.local']);
  // MeshFrontend: straight to a pod IP -> the Host-based chain; an IP Host is unknown -> passthrough to the pod.
  const pod = simulate(transparent, { port: 8080, destinationIp: '10.1.0.7', host: '10.1.0.7:8080' });
  assert.equal(pod.routeConfig, '8080');
  assert.deepEqual(pod.clusters.map((c) => c.name), ['PassthroughCluster']);
  // A headless service (no VIP) and non-VIP destinations keep Host-based routing.
  assert.deepEqual(simulate(transparent, { port: 80, destinationIp: '10.1.0.8', host: 'legacy' }).clusters.map((c) => c.name), ['outbound|80||legacy.mesh.svc.cluster.local']);
  // Unknown-protocol port: sniffed per VIP (HTTP -> the service's routes, else TCP to it).
  const sniffedHttp = simulate(transparent, { port: 7000, destinationIp: '10.96.1.3', host: 'x', applicationProtocol: 'http/1.1' });
  assert.equal(sniffedHttp.routeConfig, 'sniffed.mesh.svc.cluster.local:7000');
  const sniffedTcp = simulate(transparent, { port: 7000, destinationIp: '10.96.1.3' });
  assert.deepEqual(sniffedTcp.clusters.map((c) => c.name), ['outbound|7000||sniffed.mesh.svc.cluster.local']);
  // Explicit capture has no original destination: Host decides, as before.
  const e = simulate(explicit, { port: 80, host: 'echo-v1' });
  assert.equal(e.routeConfig, '80');
  assert.deepEqual(e.clusters.map((c) => c.name), ['outbound|80||echo-v1.mesh.svc.cluster.local']);
});

test('the HTTP proxy listener terminates CONNECT to a mesh service into the outbound listener of that port', () => {
  const set = translate(bookinfo('virtual-service-reviews-80-20.yaml'), productpage);
  const r = simulate(set, { listener: '127.0.0.1_15080', host: 'reviews:9080', method: 'CONNECT' });
  assert.deepEqual(r.clusters.map((c) => c.name), ['http_proxy_connect|9080']);
  // The hairpin lands on the sidecar's own outbound listener for 9080, where the VirtualService applies per request.
  const outbound = set.get('type.googleapis.com/envoy.config.listener.v3.Listener')!.get('127.0.0.1_9080') as { address: { socket_address: { port_value: number } } };
  assert.deepEqual(r.endpoints['http_proxy_connect|9080'], [`127.0.0.1:${outbound.address.socket_address.port_value}`]);
  const inside = simulate(set, { listener: '127.0.0.1_9080', host: 'reviews:9080' });
  assert.deepEqual(inside.clusters.map((c) => c.name).sort(), ['outbound|9080|v1|reviews.default.svc.cluster.local', 'outbound|9080|v2|reviews.default.svc.cluster.local']);
  const hcm = ((set.get('type.googleapis.com/envoy.config.listener.v3.Listener')!.get('127.0.0.1_15080') as { filter_chains: { filters: { typed_config: { upgrade_configs: { upgrade_type: string }[] } }[] }[] }).filter_chains[0].filters[0].typed_config);
  assert.deepEqual(hcm.upgrade_configs.map((u) => u.upgrade_type), ['websocket', 'CONNECT']);
  // An unknown host has no CONNECT route (no tunnel to arbitrary destinations).
  assert.deepEqual(simulate(set, { listener: '127.0.0.1_15080', host: 'example.com:443', method: 'CONNECT' }).clusters, []);
});
