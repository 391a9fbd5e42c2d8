/**
 * Unit and simulation tests for route translation: host rules, durations, retry policy, Gateway
 * API path semantics and precedence through the evaluator, and bad or dangling input (which must
 * never throw: it yields default routes, 500s or a status reason).
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { durationJson, parseDurationSeconds, retryPolicy, toDuration } from './envoy.ts';
import { gatewayDomains, hostMatches, intersectHosts, resolveHost } from './hosts.ts';
import { mergeMatch } from './virtual-service.ts';
import { redirectPort } from './gateway-api-route.ts';
import { buildGatewayApiRoute, buildIstioGatewayRoute, buildSidecarOutboundRoute, computeListenerStatus, computeRouteStatus } from './index.ts';
import { evaluate, gatewayWithRoute, inputsFromYaml, rewrittenRequest, testProxy } from './test-support.ts';

test('hosts: short names, wildcards, intersection', () => {
  assert.equal(resolveHost('reviews', 'bookinfo', 'cluster.local'), 'reviews.bookinfo.svc.cluster.local');
  assert.equal(resolveHost('reviews.bookinfo', 'x', 'cluster.local'), 'reviews.bookinfo', 'dotted names are taken as written (Istio)');
  assert.ok(hostMatches('*.example.com', 'a.b.example.com'));
  assert.ok(!hostMatches('*.example.com', 'example.com'));
  assert.ok(hostMatches('*', 'anything'));
  assert.ok(hostMatches('*.com', '*.example.com'));
  assert.equal(intersectHosts('*.example.com', 'foo.example.com'), 'foo.example.com');
  assert.equal(intersectHosts('foo.example.com', '*'), 'foo.example.com');
  assert.equal(intersectHosts('*.example.com', '*.foo.example.com'), '*.foo.example.com');
  assert.equal(intersectHosts('a.org', 'b.org'), undefined);
});

test('durations: Go syntax to proto JSON; malformed is undefined', () => {
  assert.equal(toDuration('1.5s'), '1.5s');
  assert.equal(toDuration('250ms'), '0.25s');
  assert.equal(toDuration('1h30m'), '5400s');
  assert.equal(toDuration('0'), '0s');
  assert.equal(durationJson(7), '7s');
  for (const bad of ['', 'abc', '10', '5 s', '-1s', '1x']) assert.equal(parseDurationSeconds(bad), undefined, bad);
});

test('retry policy: Istio defaults, status codes from retryOn, attempts 0 disables', () => {
  const d = retryPolicy()!;
  assert.equal(d.retry_on, 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes');
  assert.equal(d.num_retries, 2);
  assert.deepEqual(d.retriable_status_codes, [503]);
  const c = retryPolicy({ attempts: 5, retryOn: 'gateway-error, 502,404' })!;
  assert.equal(c.retry_on, 'gateway-error,retriable-status-codes');
  assert.deepEqual(c.retriable_status_codes, [404, 502]);
  assert.equal(retryPolicy({ attempts: 0 }), undefined);
});

test('delegate match merge: narrower uri kept, conflicts dropped, root source selection wins', () => {
  assert.deepEqual(mergeMatch({ uri: { prefix: '/a' }, sourceLabels: { app: 'x' } }, { uri: { prefix: '/a/b' }, sourceLabels: { app: 'y' } }), {
    uri: { prefix: '/a/b' },
    sourceLabels: { app: 'x' },
  });
  assert.equal(mergeMatch({ uri: { prefix: '/a' } }, { uri: { prefix: '/b' } }), null);
  assert.equal(mergeMatch({ headers: { h: { exact: '1' } } }, { headers: { h: { exact: '2' } } }), null);
  assert.deepEqual(mergeMatch({ uri: { exact: '/x' } }, { method: { exact: 'GET' } }), { uri: { exact: '/x' }, method: { exact: 'GET' } });
});

/**
 * The head of an HTTPRoute in namespace ns attached to Gateway gw, up to its `rules:` key (the
 * rules follow, indented by four spaces), with a creation time where precedence depends on age.
 */
const httpRouteHead = (name: string, created?: string) => `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${name}, namespace: ns${created !== undefined ? `, creationTimestamp: "${created}"` : ''}}
spec:
  parentRefs: [{name: gw}]
  rules:`;

const gwYaml = `
apiVersion: v1
kind: Service
metadata: {name: a, namespace: ns}
spec: {selector: {app: a}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: ns}
spec: {selector: {app: b}, ports: [{name: http, port: 80}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns}
spec:
  listeners: [{name: http, port: 80, protocol: HTTP}]
`;

test('Gateway API PathPrefix is element-wise: /foo matches /foo and /foo/bar, not /foobar', () => {
  const inputs = inputsFromYaml(`${gwYaml}
${httpRouteHead('r')}
    - matches: [{path: {type: PathPrefix, value: /foo/}}]
      backendRefs: [{name: a, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /}}]
      backendRefs: [{name: b, port: 80}]
`);
  const rc = buildGatewayApiRoute(inputs, 'http.80', inputs.gateways[0], 80);
  const a = 'outbound|80||a.ns.svc.cluster.local';
  const b = 'outbound|80||b.ns.svc.cluster.local';
  assert.equal(evaluate(rc, { host: 'h', path: '/foo' }).cluster, a);
  assert.equal(evaluate(rc, { host: 'h', path: '/foo/' }).cluster, a);
  assert.equal(evaluate(rc, { host: 'h', path: '/foo/bar?x=1' }).cluster, a);
  assert.equal(evaluate(rc, { host: 'h', path: '/foobar' }).cluster, b);
});

test('Gateway API precedence across routes: exact > longer prefix > method > headers > query > older', () => {
  const inputs = inputsFromYaml(`${gwYaml}
${httpRouteHead('z-old', '2020-01-01T00:00:00Z')}
    - matches: [{path: {value: /p}}]
      backendRefs: [{name: a, port: 80}]
${httpRouteHead('a-new', '2021-01-01T00:00:00Z')}
    - matches: [{path: {value: /p}}]
      backendRefs: [{name: b, port: 80}]
    - matches: [{path: {value: /p}, headers: [{name: h, value: "1"}]}]
      backendRefs: [{name: b, port: 80}]
    - matches: [{path: {value: /p}, method: DELETE}]
      filters: [{type: RequestRedirect, requestRedirect: {hostname: method.example}}]
    - matches: [{path: {type: Exact, value: /p/x}}]
      filters: [{type: RequestRedirect, requestRedirect: {hostname: exact.example}}]
`);
  const rc = buildGatewayApiRoute(inputs, 'http.80', inputs.gateways[0], 80);
  assert.equal(evaluate(rc, { host: 'h', path: '/p' }).cluster, 'outbound|80||a.ns.svc.cluster.local', 'older route wins a tie');
  assert.equal(evaluate(rc, { host: 'h', path: '/p', headers: { h: '1' } }).cluster, 'outbound|80||b.ns.svc.cluster.local');
  assert.equal(evaluate(rc, { host: 'h', path: '/p', method: 'DELETE', headers: { h: '1' } }).redirect?.host_redirect, 'method.example');
  assert.equal(evaluate(rc, { host: 'h', path: '/p/x', method: 'DELETE' }).redirect?.host_redirect, 'exact.example');
  const red = evaluate(rc, { host: 'h', path: '/p/x' });
  assert.equal(red.redirect?.response_code, 'FOUND', 'Gateway API redirects default to 302');
});

test('Gateway API ReplacePrefixMatch rewrites keep the rest of the path', () => {
  const inputs = inputsFromYaml(`${gwYaml}
${httpRouteHead('r')}
    - matches: [{path: {value: /strip}}]
      filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]
      backendRefs: [{name: a, port: 80}]
    - matches: [{path: {value: /old}}]
      filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new/}}}]
      backendRefs: [{name: a, port: 80}]
    - matches: [{path: {value: /}}]
      filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /root}}}]
      backendRefs: [{name: a, port: 80}]
`);
  const rc = buildGatewayApiRoute(inputs, 'http.80', inputs.gateways[0], 80);
  const rw = (p: string): string => rewrittenRequest(evaluate(rc, { host: 'h', path: p }).route!, p).path;
  assert.equal(rw('/strip'), '/');
  assert.equal(rw('/strip/a/b'), '/a/b');
  assert.equal(rw('/old/x'), '/new/x');
  assert.equal(rw('/old'), '/new');
  assert.equal(rw('/x'), '/root/x');
});

test('bad and dangling input never throws', () => {
  const inputs = inputsFromYaml(`${gwYaml}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bad, namespace: ns}
spec:
  hosts: [a]
  http:
    - match: [{uri: {prefix: /d}}]
      delegate: {name: missing}
    - match: [{uri: {prefix: /t}}]
      timeout: soon
      route: [{destination: {host: a}}]
    - match: [{uri: {prefix: /z}}]
      route: [{destination: {host: a}, weight: 0}, {destination: {host: b}, weight: 0}]
    - route: [{destination: {}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: empty, namespace: ns}
spec: {hosts: [b]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: to-missing-gw, namespace: ns}
spec: {hosts: ["*"], gateways: [nope], http: [{route: [{destination: {host: a}}]}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: dangling, namespace: ns}
spec:
  parentRefs: [{name: nope}, {name: gw, sectionName: nope}, {name: gw, port: 81}, {kind: Foo, group: x.io, name: f}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: empty, namespace: ns}
spec: {}
`);
  const rc = buildSidecarOutboundRoute(inputs, testProxy('ns'), 80);
  const aRoutes = (rc.virtual_hosts as { name: string; routes: { match: { prefix?: string } }[] }[]).find((v) => v.name.startsWith('a.'))!.routes;
  assert.ok(!aRoutes.some((r) => r.match.prefix === '/d'), 'delegate to a missing VS yields no route for its matches');
  assert.equal(evaluate(rc, { host: 'a', path: '/other' }).status, 503, 'a destination without host -> 503');
  assert.equal((evaluate(rc, { host: 'a', path: '/t' }).route!.route as Record<string, unknown>).timeout, '0s', 'malformed timeout -> Istio default');
  assert.equal(evaluate(rc, { host: 'a', path: '/z' }).status, 503, 'all-zero weights -> 503');
  assert.equal(evaluate(rc, { host: 'b' }).cluster, 'outbound|80||b.ns.svc.cluster.local', 'VS without http routes -> default route');
  const gw = buildIstioGatewayRoute(inputs, testProxy('ns', {}, 'router'), 'http.80', []);
  assert.equal(evaluate(gw, { host: 'x' }).status, 404, 'no servers -> blackhole');
  const st = computeRouteStatus(inputs);
  const reasons = st.get('gateway.networking.k8s.io/HTTPRoute:ns/dangling')!.map((p) => p.conditions[0].reason);
  assert.deepEqual(reasons, ['NoMatchingParent', 'NoMatchingParent', 'NoMatchingParent', 'NoMatchingParent']);
  assert.deepEqual(st.get('gateway.networking.k8s.io/HTTPRoute:ns/empty'), []);
  assert.equal(computeListenerStatus(inputs).get('ns/gw')![0].attachedRoutes, 0);
  const gapi = buildGatewayApiRoute(inputs, 'http.80', inputs.gateways[0], 80);
  assert.equal(evaluate(gapi, { host: 'x' }).status, 404);
});

test('REGISTRY_ONLY: unknown hosts get 502 from block_all', () => {
  const inputs = inputsFromYaml(gwYaml, { outboundTrafficPolicy: 'REGISTRY_ONLY' });
  const rc = buildSidecarOutboundRoute(inputs, testProxy('ns'), 80);
  assert.equal(evaluate(rc, { host: 'example.com' }).status, 502);
  assert.equal(evaluate(rc, { host: 'a.ns:80' }).cluster, 'outbound|80||a.ns.svc.cluster.local');
});

test('observedGeneration follows metadata.generation', () => {
  const inputs = inputsFromYaml(`${gwYaml}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: ns}
spec: {parentRefs: [{name: gw}], rules: [{backendRefs: [{name: a, port: 80}]}]}
`);
  const route = inputs.httpRoutes[0];
  const bumped = { ...inputs, httpRoutes: [{ ...route, metadata: { ...route.metadata, generation: 7 } }] };
  const parents = computeRouteStatus(bumped, 'example.io/ctl').get('gateway.networking.k8s.io/HTTPRoute:ns/r')!;
  assert.equal(parents[0].controllerName, 'example.io/ctl');
  assert.ok(parents[0].conditions.every((c) => c.observedGeneration === 7));
});

test('Gateway API CORS origins: `*` is a match-all regex (Envoy rejects an empty prefix), inner `*` spans dots', () => {
  const inputs = inputsFromYaml(`${gwYaml}
${httpRouteHead('r')}
    - filters: [{type: CORS, cors: {allowOrigins: ['*', 'https://*.bar.com']}}]
      backendRefs: [{name: a, port: 80}]
`);
  const rc = buildGatewayApiRoute(inputs, 'http.80', inputs.gateways[0], 80);
  const cors = JSON.stringify(rc).match(/"allow_origin_string_match":(\[[^\]]*\])/)?.[1];
  assert.ok(cors, 'cors policy present');
  const origins = JSON.parse(cors) as { safe_regex?: { regex: string }; prefix?: string }[];
  assert.ok(origins.every((o) => o.prefix !== ''), 'no empty prefix');
  assert.equal(origins[0].safe_regex?.regex, '.*');
  assert.ok(new RegExp(origins[1].safe_regex!.regex).test('https://xpto.www.bar.com'));
  assert.ok(!new RegExp(origins[1].safe_regex!.regex).test('https://foobar.com'));
});

test('gateway domains: host and host:*, but a wildcard host alone (Envoy allows one wildcard per domain)', () => {
  assert.deepEqual(gatewayDomains('*'), ['*']);
  assert.deepEqual(gatewayDomains('bar.com'), ['bar.com', 'bar.com:*']);
  assert.deepEqual(gatewayDomains('*.bar.com'), ['*.bar.com']);
});

test('Gateway API retry stanza retries connection resets too', () => {
  const inputs = inputsFromYaml(`${gwYaml}
${httpRouteHead('r')}
    - retry: {attempts: 3}
      backendRefs: [{name: a, port: 80}]
`);
  const rc = buildGatewayApiRoute(inputs, 'http.80', inputs.gateways[0], 80);
  const on = String(JSON.stringify(rc).match(/"retry_on":"([^"]*)"/)?.[1]);
  assert.ok(on.split(',').includes('reset'), on);
  assert.ok(on.split(',').includes('connect-failure'), on);
});

test('HTTPS listeners sharing a port: a Host another listener owns is misdirected (421)', () => {
  const inputs = inputsFromYaml(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns}
spec:
  gatewayClassName: trellis
  listeners:
  - {name: any, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: c}]}}
  - {name: second, port: 443, protocol: HTTPS, hostname: second.org, tls: {certificateRefs: [{name: c}]}}
  - {name: wild, port: 443, protocol: HTTPS, hostname: "*.wild.org", tls: {certificateRefs: [{name: c}]}}
  - {name: fourth, port: 443, protocol: HTTPS, hostname: four.wild.org, tls: {certificateRefs: [{name: c}]}}
---
apiVersion: v1
kind: Service
metadata: {name: a, namespace: ns}
spec: {ports: [{port: 80}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: a, port: 80}]}]
`);
  const gw = inputs.gateways[0];
  const status = (rc: ReturnType<typeof buildGatewayApiRoute>, host: string) => evaluate(rc, { host, path: '/' }).status ?? 200;
  const any = buildGatewayApiRoute(inputs, 'https.443.any.gw.ns', gw, 443, ['any']);
  assert.equal(status(any, 'example.org'), 200);
  assert.equal(status(any, 'second.org'), 421);
  assert.equal(status(any, 'x.wild.org'), 421);
  const wild = buildGatewayApiRoute(inputs, 'https.443.wild.gw.ns', gw, 443, ['wild']);
  assert.equal(status(wild, 'x.wild.org'), 200);
  assert.equal(status(wild, 'four.wild.org'), 421);
  assert.equal(status(wild, 'example.org'), 421);
  const four = buildGatewayApiRoute(inputs, 'https.443.fourth.gw.ns', gw, 443, ['fourth']);
  assert.equal(status(four, 'four.wild.org'), 200);
  assert.equal(status(four, 'x.wild.org'), 421);
  // Plain HTTP listeners never answer 421.
  const http = buildGatewayApiRoute(inputs, 'http.443', gw, 443, ['any', 'second', 'wild', 'fourth']);
  assert.notEqual(status(http, 'second.org'), 421);
});

test('Gateway API redirect port: given, else the scheme\'s well-known port, else the listener\'s; 80/443 left out where Envoy\'s Location already means them', () => {
  const http = (port: number) => ({ port, scheme: 'http' as const });
  const https = (port: number) => ({ port, scheme: 'https' as const });
  const host = 'example.org';
  // Neither scheme nor port: the listener's port (Envoy would otherwise keep the Host's port, or none).
  assert.equal(redirectPort({}, http(8080)), 8080);
  assert.equal(redirectPort({ hostname: host }, http(8080)), 8080);
  assert.equal(redirectPort({ hostname: host }, http(80)), undefined);
  assert.equal(redirectPort({}, http(80)), undefined);
  assert.equal(redirectPort({ hostname: host }, https(443)), undefined);
  assert.equal(redirectPort({}, https(8443)), 8443);
  // A scheme: its well-known port. With the host replaced Location has no port; from a Host that
  // may carry a non-default listener port, the port must be set to replace it.
  assert.equal(redirectPort({ scheme: 'https', hostname: host }, http(8080)), undefined);
  assert.equal(redirectPort({ scheme: 'https' }, http(8080)), 443);
  assert.equal(redirectPort({ scheme: 'https' }, http(80)), undefined, 'Envoy drops :80 when the scheme changes');
  assert.equal(redirectPort({ scheme: 'http' }, http(8080)), 80);
  assert.equal(redirectPort({ scheme: 'http', hostname: host }, https(443)), undefined);
  // A port: as given, except a default one Envoy's Location already means.
  assert.equal(redirectPort({ port: 8083 }, http(80)), 8083);
  assert.equal(redirectPort({ port: 80, hostname: host }, http(8080)), undefined);
  assert.equal(redirectPort({ port: 80 }, http(8080)), 80);
  assert.equal(redirectPort({ scheme: 'https', port: 443 }, http(80)), undefined);
  assert.equal(redirectPort({ scheme: 'https', port: 8443 }, http(80)), 8443);
});

test('Gateway API redirect on a listener at 8080: Location keeps :8080 (port_redirect), at 80 none', () => {
  const yaml = (port: number) => gatewayWithRoute('[{filters: [{type: RequestRedirect, requestRedirect: {hostname: example.org}}]}]', port);
  for (const [port, want] of [[8080, 8080], [80, undefined]] as const) {
    const inputs = inputsFromYaml(yaml(port));
    const out = evaluate(buildGatewayApiRoute(inputs, `http.${port}`, inputs.gateways[0], port), { host: `gw:${port}`, path: '/' });
    assert.equal(out.redirect?.port_redirect, want, `listener ${port}`);
    assert.equal(out.redirect?.host_redirect, 'example.org');
  }
});

test('GAMMA consumer route: routes its own namespace\'s clients to a Service elsewhere without a ReferenceGrant; others keep the producer\'s routes; a Gateway parent still needs the grant', () => {
  const inputs = inputsFromYaml(`
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: mesh}
spec: {selector: {app: echo}, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: consumer}
spec: {gatewayClassName: trellis, listeners: [{name: http, port: 80, protocol: HTTP}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: consumer-route, namespace: consumer}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, namespace: mesh}, {name: gw}]
  rules:
  - filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-Header-Set, value: set}]}}]
    backendRefs: [{name: echo, namespace: mesh, port: 80}]
`);
  const host = 'echo.mesh.svc.cluster.local';
  const consumer = evaluate(buildSidecarOutboundRoute(inputs, testProxy('consumer'), 80), { host, path: '/' });
  assert.equal(consumer.cluster, `outbound|80||${host}`, 'consumer clients reach the Service');
  assert.deepEqual(consumer.route?.response_headers_to_add, [{ header: { key: 'X-Header-Set', value: 'set' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }]);
  const producer = evaluate(buildSidecarOutboundRoute(inputs, testProxy('mesh'), 80), { host, path: '/' });
  assert.equal(producer.route?.name, 'default', 'clients elsewhere keep the default (producer) route');
  assert.equal(producer.route?.response_headers_to_add, undefined);
  const viaGateway = evaluate(buildGatewayApiRoute(inputs, 'http.80', inputs.gateways[0], 80), { host: 'any', path: '/' });
  assert.equal(viaGateway.status, 500, 'the Gateway parent has no ReferenceGrant for mesh/echo');
  const [service, gateway] = computeRouteStatus(inputs).get('gateway.networking.k8s.io/HTTPRoute:consumer/consumer-route')!;
  assert.deepEqual(service.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`), ['Accepted=True/Accepted', 'ResolvedRefs=True/ResolvedRefs']);
  assert.deepEqual(gateway.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`), ['Accepted=True/Accepted', 'ResolvedRefs=False/RefNotPermitted']);
});
