import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasCode } from '../errors.ts';
import { parseMeshConfig } from './mesh-config.ts';

test('MeshConfig: plain, ConfigMap data.mesh and meshConfig forms', () => {
  const plain = parseMeshConfig('trustDomain: example.org\noutboundTrafficPolicy: {mode: REGISTRY_ONLY}\nenableAutoMtls: false\naccessLogFile: /dev/stdout\n', 'm.yaml');
  assert.equal(plain.trustDomain, 'example.org');
  assert.equal(plain.outboundTrafficPolicy, 'REGISTRY_ONLY');
  assert.equal(plain.enableAutoMtls, false);
  assert.deepEqual(plain.ignored, ['accessLogFile']);
  const cm = parseMeshConfig('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |\n    rootNamespace: mesh-root\n');
  assert.equal(cm.rootNamespace, 'mesh-root');
  assert.equal(parseMeshConfig('meshConfig:\n  trustDomain: td\n').trustDomain, 'td');
  assert.equal(parseMeshConfig('').trustDomain, undefined);
});

test('MeshConfig errors name file and field', () => {
  const cases: [string, RegExp][] = [
    ['outboundTrafficPolicy: {mode: BLOCK}', /m\.yaml: outboundTrafficPolicy\.mode: expected ALLOW_ANY or REGISTRY_ONLY/],
    ['trustDomain: "a/b"', /m\.yaml: trustDomain: 'a\/b' is not a valid SPIFFE trust domain/],
    ['enableAutoMtls: "yes"', /m\.yaml: enableAutoMtls: expected true or false/],
    ['extensionProviders: [{ext: 1}]', /m\.yaml: extensionProviders\[0\]\.name/],
    ['kind: ConfigMap\ndata: {}', /m\.yaml: data\.mesh/],
    ['a: [', /m\.yaml: not valid YAML/],
  ];
  for (const [text, re] of cases) assert.throws(() => parseMeshConfig(text, 'm.yaml'), (e: unknown) => hasCode(e, 'MESH_CONFIG_INVALID') && re.test((e as Error).message), text);
});

test('MeshConfig: ext_authz extension providers typed, and the trellis block', () => {
  const m = parseMeshConfig(`
extensionProviders:
- name: hmac
  envoyExtAuthzHttp: { service: authz.shop.svc.cluster.local, port: 8000, includeRequestHeadersInCheck: [x-signature], headersToUpstreamOnAllow: [x-user] }
- name: opa
  envoyExtAuthzGrpc: { service: opa.shop.svc.cluster.local, port: 9191, timeout: 2s, failOpen: true }
- name: zipkin
  zipkin: { service: zipkin.istio-system.svc.cluster.local, port: 9411 }
trellis: { authorizationDenialNamesPolicy: false }
`, 'm.yaml');
  assert.equal(m.authorizationDenialNamesPolicy, false);
  assert.deepEqual(m.extAuthzProviders?.map((p) => [p.kind, p.name, p.port]), [['http', 'hmac', 8000], ['grpc', 'opa', 9191]]);
  for (const [text, re] of [
    ['extensionProviders: [{ name: a, envoyExtAuthzHttp: { service: x, port: 0 } }]', /m\.yaml: extensionProviders\[0\]\.envoyExtAuthzHttp\.port: must be in/],
    ['extensionProviders: [{ name: a, envoyExtAuthzHttp: { service: x, port: 1, includeRequestHeadersInCheck: ["*"] } }]', /includeRequestHeadersInCheck: a single wildcard/],
    ['extensionProviders: [{ name: a, envoyExtAuthzGrpc: { service: x, port: 1, statusOnError: nope } }]', /statusOnError: invalid status/],
    ['extensionProviders: [{ name: a, envoyExtAuthzGrpc: { service: x, port: 1 } }, { name: a, envoyExtAuthzGrpc: { service: y, port: 1 } }]', /extensionProviders\[1\]\.name: extension provider name must be unique/],
    ['trellis: { namePolicy: true }', /trellis\.namePolicy: unknown field/],
    ['trellis: { authorizationDenialNamesPolicy: "no" }', /trellis\.authorizationDenialNamesPolicy: expected true or false/],
  ] as const) assert.throws(() => parseMeshConfig(text, 'm.yaml'), (e: unknown) => hasCode(e, 'MESH_CONFIG_INVALID') && re.test((e as Error).message), text);
});
