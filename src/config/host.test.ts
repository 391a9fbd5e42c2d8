import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  exportedTo, exportScopes, exportScopesOverlap, gatewayServerAdmits, hostMatches, hostsIntersect, kubernetesServiceAliases,
  parseGatewayServerHost, resolveHost, serviceExportTo,
} from './host.ts';

test('resolveHost: short names expand in the rule namespace; dotted names, wildcards and IPs are taken as written', () => {
  assert.equal(resolveHost('reviews', 'default', 'cluster.local'), 'reviews.default.svc.cluster.local');
  assert.equal(resolveHost('Reviews', 'prod', 'corp.local'), 'Reviews.prod.svc.corp.local');
  assert.equal(resolveHost('reviews.prod', 'default', 'cluster.local'), 'reviews.prod');
  assert.equal(resolveHost('*.Example.com', 'default', 'cluster.local'), '*.Example.com');
  assert.equal(resolveHost('*', 'default', 'cluster.local'), '*');
  assert.equal(resolveHost('fd00::1', 'default', 'cluster.local'), 'fd00::1');
});

test('hostMatches: DNS names are case-insensitive; wildcards cover subdomains and narrower wildcards, never the bare domain', () => {
  assert.ok(hostMatches('API.example.com', 'api.EXAMPLE.com'));
  assert.ok(hostMatches('*.example.com', 'api.example.com'));
  assert.ok(hostMatches('*.example.com', 'a.b.example.com'));
  assert.ok(hostMatches('*.example.com', '*.api.example.com'));
  assert.ok(hostMatches('*.example.com', '*.example.com'));
  assert.ok(!hostMatches('*.example.com', 'example.com'));
  assert.ok(!hostMatches('*.example.com', 'notexample.com'));
  assert.ok(!hostMatches('*.api.example.com', '*.example.com'));
  assert.ok(!hostMatches('*.example.com', '*'));
  assert.ok(hostMatches('*', '*.anything.io'));
  assert.ok(hostMatches('*', 'a.io'));
  assert.ok(hostsIntersect('*.d', '*.productpage.d'));
  assert.ok(!hostsIntersect('*.a.com', '*.b.com'));
});

test('kubernetesServiceAliases: name.ns and name.ns.svc name the Service', () => {
  assert.deepEqual(kubernetesServiceAliases('reviews.prod', 'cluster.local'), ['reviews.prod', 'reviews.prod.svc.cluster.local']);
  assert.deepEqual(kubernetesServiceAliases('reviews.prod.svc', 'cluster.local'), ['reviews.prod.svc', 'reviews.prod.svc.cluster.local']);
  assert.deepEqual(kubernetesServiceAliases('api.example.com', 'cluster.local'), ['api.example.com']);
});

test('Gateway server hosts: ns/host, ./host, */host and bare hosts admit the namespaces Istio documents', () => {
  assert.deepEqual(parseGatewayServerHost('./Shop.example.com', 'istio-system'), { namespace: 'istio-system', host: 'shop.example.com' });
  assert.deepEqual(parseGatewayServerHost('*/shop.example.com', 'istio-system'), { namespace: '*', host: 'shop.example.com' });
  assert.deepEqual(parseGatewayServerHost('shop.example.com', 'istio-system'), { namespace: '*', host: 'shop.example.com' });
  assert.ok(gatewayServerAdmits('shop/*.example.com', 'istio-system', 'shop', 'a.example.com'));
  assert.ok(!gatewayServerAdmits('shop/*.example.com', 'istio-system', 'web', 'a.example.com'));
  assert.ok(!gatewayServerAdmits('./a.example.com', 'istio-system', 'default', 'a.example.com'));
  assert.ok(gatewayServerAdmits('./a.example.com', 'istio-system', 'istio-system', 'a.example.com'));
  assert.ok(gatewayServerAdmits('*/*', 'istio-system', 'any', 'x.io'));
  // A VirtualService wildcard host meets a concrete server host: the overlap is routed.
  assert.ok(gatewayServerAdmits('a.example.com', 'istio-system', 'default', '*.example.com'));
});

test('exportTo: unset and * are everywhere, . is the own namespace, ~ is nowhere', () => {
  assert.ok(exportedTo(undefined, 'a', 'b'));
  assert.ok(exportedTo(['.'], 'a', 'a'));
  assert.ok(!exportedTo(['.'], 'a', 'b'));
  assert.ok(exportedTo(['b', 'c'], 'a', 'c'));
  assert.ok(!exportedTo(['~'], 'a', 'a'));
  assert.deepEqual([...exportScopes(['.', 'x'], 'a')], ['a', 'x']);
  assert.deepEqual([...exportScopes(['x', '*'], 'a')], ['*']);
  assert.deepEqual([...exportScopes(['~'], 'a')], []);
  assert.ok(exportScopesOverlap(new Set(['*']), new Set(['q'])));
  assert.ok(!exportScopesOverlap(new Set(['a']), new Set(['b'])));
  assert.ok(!exportScopesOverlap(new Set(), new Set(['*'])));
  assert.deepEqual(serviceExportTo({ 'networking.istio.io/exportTo': 'hello1, hello2,.' }), ['hello1', 'hello2', '.']);
  assert.equal(serviceExportTo({}), undefined);
});
