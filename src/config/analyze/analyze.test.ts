import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeConfig } from './index.ts';
import { resourcesFromYaml } from './test-support.ts';
import { matchCovers } from './shadowing.ts';
import { isKnownConditionKey } from './security.ts';
import { hostMatches as hostCovers, resolveHost } from '../host.ts';

const services = `
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { selector: { app: reviews }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: ratings, namespace: default }
spec: { selector: { app: ratings }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }, { name: v3, labels: { version: v3 } }]
`;

function codes(yaml: string): string[] {
  return analyzeConfig(resourcesFromYaml(services + '---\n' + yaml)).map((d) => d.code);
}

function vs(http: string, extra = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews }
spec:
  hosts: [reviews]
${extra}  http:
${http}`;
}

test('hosts: short names resolve in the rule namespace; wildcards cover subdomains only', () => {
  assert.equal(resolveHost('reviews', 'default', 'cluster.local'), 'reviews.default.svc.cluster.local');
  assert.equal(resolveHost('reviews.prod', 'default', 'cluster.local'), 'reviews.prod');
  assert.equal(resolveHost('*.example.com', 'default', 'cluster.local'), '*.example.com');
  assert.ok(hostCovers('*.example.com', 'api.example.com'));
  assert.ok(!hostCovers('*.example.com', 'example.com'));
  assert.ok(hostCovers('*', 'anything.io'));
});

test('a consistent config has no diagnostics', () => {
  assert.deepEqual(codes(vs(`  - route:
    - destination: { host: reviews, subset: v1 }
      weight: 50
    - destination: { host: reviews.default.svc.cluster.local, subset: v2 }
      weight: 30
    - destination: { host: reviews.default, subset: v3 }
      weight: 20
`)), []);
});

test('VS_HOST_NOT_FOUND and SUBSET_NOT_FOUND name the field', () => {
  const d = analyzeConfig(resourcesFromYaml(services + '---\n' + vs(`  - match: [{ uri: { prefix: /a } }]
    route:
    - destination: { host: reviewz }
  - route:
    - destination: { host: reviews, subset: v9 }
`)));
  assert.deepEqual(d.map((x) => [x.code, x.fieldPath]), [
    ['SUBSET_NOT_FOUND', 'spec.http[1].route[0].destination.subset'],
    ['VS_HOST_NOT_FOUND', 'spec.http[0].route[0].destination.host'],
  ]);
  assert.match(d[0].message, /defines subsets \[v1, v2, v3\]/);
  assert.deepEqual(d[0].resource, { kind: 'VirtualService', namespace: 'default', name: 'reviews' });
});

test('a short host in another namespace is not the same service', () => {
  const d = codes(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: x, namespace: prod }
spec:
  hosts: [reviews]
  http:
  - route: [{ destination: { host: reviews } }]
`);
  assert.deepEqual(d, ['VS_HOST_NOT_FOUND']);
});

test('ServiceEntry hosts, including wildcards, are known destinations', () => {
  assert.deepEqual(codes(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext }
spec: { hosts: ['*.googleapis.com'], ports: [{ number: 443, name: https, protocol: TLS }], location: MESH_EXTERNAL, resolution: DNS }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ext }
spec:
  hosts: [storage.googleapis.com]
  tls:
  - match: [{ port: 443, sniHosts: [storage.googleapis.com] }]
    route: [{ destination: { host: storage.googleapis.com, port: { number: 443 } } }]
`), []);
});

test('weights: single destination needs none; sum != 100 warns; all zero errors', () => {
  assert.deepEqual(codes(vs(`  - route: [{ destination: { host: reviews } }]\n`)), []);
  const warn = analyzeConfig(resourcesFromYaml(services + '---\n' + vs(`  - route:
    - { destination: { host: reviews, subset: v1 }, weight: 80 }
    - { destination: { host: reviews, subset: v2 }, weight: 30 }
`)));
  assert.deepEqual(warn.map((d) => [d.code, d.severity]), [['WEIGHTS_NOT_100', 'warning']]);
  const err = analyzeConfig(resourcesFromYaml(services + '---\n' + vs(`  - route:
    - { destination: { host: reviews, subset: v1 } }
    - { destination: { host: reviews, subset: v2 } }
`)));
  assert.deepEqual(err.map((d) => [d.code, d.severity]), [['WEIGHTS_NOT_100', 'error']]);
});

test('shadowing: catch-all first shadows everything after it', () => {
  assert.deepEqual(codes(vs(`  - route: [{ destination: { host: reviews, subset: v1 } }]
  - match: [{ headers: { end-user: { exact: jason } } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
`)), ['ROUTE_SHADOWED']);
});

test('shadowing: prefix covers longer prefix and exact, even with extra conditions', () => {
  assert.ok(matchCovers({ uri: { prefix: '/api' } }, { uri: { prefix: '/api/v1' }, headers: { a: { exact: 'b' } } }));
  assert.ok(matchCovers({ uri: { prefix: '/api' } }, { uri: { exact: '/apis' } }));
  assert.ok(matchCovers({ uri: { prefix: '/' } }, {}));
  assert.ok(matchCovers({ name: 'x' }, { uri: { regex: '.*' } }));
});

test('shadowing: no false positives', () => {
  // A later route with a different header is reachable.
  assert.ok(!matchCovers({ headers: { u: { exact: 'jason' } } }, { headers: { u: { exact: 'bob' } } }));
  // Exact does not cover prefix; regex never covers; narrower does not cover wider.
  assert.ok(!matchCovers({ uri: { exact: '/api' } }, { uri: { prefix: '/api' } }));
  assert.ok(!matchCovers({ uri: { regex: '/.*' } }, { uri: { exact: '/a' } }));
  assert.ok(!matchCovers({ uri: { prefix: '/api/v1' } }, { uri: { prefix: '/api' } }));
  // Case-insensitive later clause accepts what a case-sensitive earlier one rejects.
  assert.ok(!matchCovers({ uri: { prefix: '/api' } }, { uri: { prefix: '/api/v1' }, ignoreUriCase: true }));
  // An earlier clause with an extra condition the later one lacks.
  assert.ok(!matchCovers({ uri: { prefix: '/' }, method: { exact: 'GET' } }, { uri: { prefix: '/x' } }));
  assert.deepEqual(codes(vs(`  - match: [{ headers: { end-user: { exact: jason } } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
  - match: [{ headers: { end-user: { exact: bob } } }]
    route: [{ destination: { host: reviews, subset: v3 } }]
  - route: [{ destination: { host: reviews, subset: v1 } }]
`)), []);
});

test('shadowing: one covered clause among several is ROUTE_MATCH_INEFFECTIVE', () => {
  const d = analyzeConfig(resourcesFromYaml(services + '---\n' + vs(`  - match: [{ uri: { prefix: /api } }]
    route: [{ destination: { host: reviews, subset: v1 } }]
  - match: [{ uri: { prefix: /api/v2 } }, { uri: { prefix: /v2 } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
`)));
  assert.deepEqual(d.map((x) => [x.code, x.fieldPath]), [['ROUTE_MATCH_INEFFECTIVE', 'spec.http[1].match[0]']]);
});

test('GATEWAY_NOT_FOUND: short names resolve in the VS namespace; mesh is special', () => {
  const gw = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec: { selector: { istio: ingressgateway }, servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ['*'] }] }
---
`;
  assert.deepEqual(codes(gw + vs(`  - route: [{ destination: { host: reviews } }]\n`, '  gateways: [mesh, istio-system/gw]\n')), []);
  assert.deepEqual(codes(gw + vs(`  - route: [{ destination: { host: reviews } }]\n`, '  gateways: [gw]\n')), ['GATEWAY_NOT_FOUND']);
});

test('VS_HOST_CONFLICT: error for mesh, not across exportTo islands', () => {
  const two = (a: string, b: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: a }
spec: { hosts: [reviews], ${a} http: [{ route: [{ destination: { host: reviews } }] }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: b }
spec: { hosts: [reviews.default.svc.cluster.local], ${b} http: [{ route: [{ destination: { host: reviews } }] }] }
`;
  assert.deepEqual(codes(two('', '')), ['VS_HOST_CONFLICT', 'VS_HOST_CONFLICT']);
  assert.deepEqual(codes(two("exportTo: ['.'],", "exportTo: ['other'],")), []);
});

test('AuthorizationPolicy condition keys', () => {
  for (const k of ['request.headers[x-user]', 'source.ip', 'request.auth.claims[groups]', 'request.auth.claims[nested][key]', 'destination.port', 'experimental.envoy.filters.network.mysql_proxy[db.table]']) {
    assert.ok(isKnownConditionKey(k), k);
  }
  for (const k of ['request.headers', 'request.header[x]', 'source.user', 'request.auth.claims', 'experimental.envoy.filters.']) {
    assert.ok(!isKnownConditionKey(k), k);
  }
});

test('MTLS_CONFLICT: STRICT namespace policy vs DISABLE destination rule', () => {
  assert.deepEqual(codes(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default }
spec: { mtls: { mode: STRICT } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ratings }
spec: { host: ratings, trafficPolicy: { tls: { mode: DISABLE } } }
`), ['MTLS_CONFLICT']);
});

test('SELECTOR_NO_MATCH uses Service selectors widened by subsets, and stays quiet when unsure', () => {
  const pa = (labels: string): string => `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: p }
spec: { selector: { matchLabels: ${labels} }, mtls: { mode: PERMISSIVE } }
`;
  assert.deepEqual(codes(pa('{ app: reviews, version: v2 }')), []);
  assert.deepEqual(codes(pa('{ app: reviews, team: x }')), []);
  assert.deepEqual(codes(pa('{ app: reveiws }')), ['SELECTOR_NO_MATCH']);
});

test('output order is deterministic', () => {
  const r = resourcesFromYaml(services + '---\n' + vs(`  - match: [{ uri: { prefix: /a } }]
    route: [{ destination: { host: nope } }]
  - route: [{ destination: { host: reviews, subset: v7 } }]
`));
  assert.deepEqual(analyzeConfig(r), analyzeConfig([...r].reverse()));
});

test('odd shapes never throw (nulls, scalars where objects belong)', () => {
  const odd = resourcesFromYaml(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: odd }
spec: { hosts: [null, 3], gateways: [null], http: [null, 5, { match: [null, { uri: null }], route: [null, { destination: null }] }], tcp: 7 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: odd }
spec: { host: 5, subsets: [null, { name: null }], trafficPolicy: null }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: odd }
spec: { selector: null, servers: [null, { tls: null }, { tls: { mode: SIMPLE, credentialName: 5 } }] }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: odd }
spec: { rules: [null, { when: [null, { key: 5 }] }] }
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: odd }
spec: { jwtRules: [null, 4] }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: odd }
spec: { parentRefs: [null, {}], rules: [null, { backendRefs: [null, { name: 3 }] }] }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: odd }
spec: { listeners: [null, { tls: { certificateRefs: [null, {}] } }] }
---
apiVersion: v1
kind: Service
metadata: { name: odd }
spec: { selector: null, ports: [null] }
`);
  assert.doesNotThrow(() => analyzeConfig(odd));
  assert.doesNotThrow(() => analyzeConfig([...odd, ...resourcesFromYaml(services)]));
});
