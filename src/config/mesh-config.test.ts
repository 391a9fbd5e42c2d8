import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasCode } from '../errors.ts';
import { extensionProviderKind, parseMeshConfig } from './mesh-config.ts';

test('MeshConfig: plain, ConfigMap data.mesh and meshConfig forms', () => {
  const plain = parseMeshConfig('trustDomain: example.org\noutboundTrafficPolicy: {mode: REGISTRY_ONLY}\nenableAutoMtls: false\naccessLogFile: /dev/stdout\nlocalityLbSetting: {enabled: true}\n', 'm.yaml');
  assert.equal(plain.trustDomain, 'example.org');
  assert.equal(plain.outboundTrafficPolicy, 'REGISTRY_ONLY');
  assert.equal(plain.enableAutoMtls, false);
  assert.equal(parseMeshConfig('enablePrometheusMerge: false\n', 'm.yaml').enablePrometheusMerge, false);
  assert.deepEqual(plain.ignored, ['localityLbSetting']);
  assert.equal(plain.telemetry?.accessLogFile, '/dev/stdout');
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
    ['enablePrometheusMerge: 1', /m\.yaml: enablePrometheusMerge: expected true or false/],
    ['extensionProviders: [{ext: 1}]', /m\.yaml: extensionProviders\[0\]\.name/],
    ['kind: ConfigMap\ndata: {}', /m\.yaml: data\.mesh/],
    ['a: [', /m\.yaml: not valid YAML/],
    ['extensionProviders: [{name: otel, opentelemetry: {port: 4318}}]', /m\.yaml: extensionProviders\[0\]\.opentelemetry\.service: the collector service/],
    ['extensionProviders: [{name: z, zipkin: {service: zipkin, port: "x"}}]', /m\.yaml: extensionProviders\[0\]\.zipkin\.port: expected a port number/],
    ['defaultProviders: {tracing: [nope]}', /m\.yaml: defaultProviders\.tracing: no extension provider named 'nope'/],
    ['defaultConfig: {tracing: {sampling: 101}}', /m\.yaml: defaultConfig\.tracing\.sampling: expected a percentage/],
    ['accessLogEncoding: XML', /m\.yaml: accessLogEncoding: expected TEXT or JSON/],
    ['extensionProviders: [{name: f, envoyFileAccessLog: {path: /tmp/x, logFormat: {text: a, labels: {b: c}}}}]', /m\.yaml: extensionProviders\[0\]\.envoyFileAccessLog\.logFormat: text and labels are exclusive/],
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

test('MeshConfig: the ingress gateway selector and extension provider types', () => {
  const m = parseMeshConfig('ingressSelector: edge\nextensionProviders:\n- name: otel\n  opentelemetry: {service: otel.obs.svc.cluster.local, port: 4317}\n- name: broken\n', 'm.yaml');
  assert.equal(m.ingressSelector, 'edge');
  assert.deepEqual(m.extensionProviders?.map(extensionProviderKind), ['opentelemetry', undefined]);
  assert.throws(() => parseMeshConfig('ingressSelector: ""', 'm.yaml'), (e: unknown) => hasCode(e, 'MESH_CONFIG_INVALID') && /ingressSelector/.test((e as Error).message));
});

test('MeshConfig telemetry: providers typed, Istio built-ins, defaults', () => {
  const m = parseMeshConfig([
    'defaultConfig: {tracing: {sampling: 25}}',
    'defaultProviders: {tracing: [otel], accessLogging: [envoy]}',
    'extensionProviders:',
    '- {name: otel, opentelemetry: {service: observability/otel.obs.svc.cluster.local, port: 4318, http: {path: v1/traces, timeout: 2s, headers: [{name: x-k, value: v}]}}}',
    '- {name: zip, zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411}}',
    '- {name: json-log, envoyFileAccessLog: {path: /dev/stdout, logFormat: {labels: {code: "%RESPONSE_CODE%"}}}}',
    '- {name: sky, skywalking: {service: sw, port: 11800}}',
  ].join('\n'), 'm.yaml');
  const t = m.telemetry!;
  assert.equal(t.defaultSamplingPercent, 25);
  assert.equal(t.enableTracing, true);
  assert.deepEqual(t.defaultProviders, { tracing: ['otel'], accessLogging: ['envoy'], metrics: ['prometheus'] });
  assert.deepEqual(t.providers.find((p) => p.name === 'otel'), { kind: 'opentelemetry', name: 'otel', service: 'otel.obs.svc.cluster.local', port: 4318, http: { path: '/v1/traces', timeoutMs: 2000, headers: [{ name: 'x-k', value: 'v' }] }, maxTagLength: undefined });
  assert.equal(t.providers.find((p) => p.name === 'zip')?.kind, 'zipkin');
  assert.deepEqual(t.providers.find((p) => p.name === 'json-log'), { kind: 'envoyFileAccessLog', name: 'json-log', path: '/dev/stdout', text: undefined, labels: { code: '%RESPONSE_CODE%' } });
  assert.deepEqual(t.providers.find((p) => p.name === 'sky'), { kind: 'other', name: 'sky', type: 'skywalking' });
  assert.deepEqual(t.providers.find((p) => p.name === 'envoy'), { kind: 'envoyFileAccessLog', name: 'envoy', path: '/dev/stdout', text: undefined, labels: undefined }, 'Istio\'s built-in envoy provider');
  assert.equal(parseMeshConfig('').telemetry?.defaultSamplingPercent, 1, 'Istio\'s default sampling');
});

test('MeshConfig pathNormalization: the four modes, DEFAULT as BASE, anything else an error naming the field', () => {
  for (const mode of ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES']) {
    assert.equal(parseMeshConfig(`pathNormalization:\n  normalization: ${mode}\n`).pathNormalization, mode);
  }
  assert.equal(parseMeshConfig('pathNormalization: {normalization: DEFAULT}').pathNormalization, 'BASE');
  assert.equal(parseMeshConfig('pathNormalization: {}').pathNormalization, 'BASE');
  assert.equal(parseMeshConfig('trustDomain: x').pathNormalization, undefined);
  assert.throws(() => parseMeshConfig('pathNormalization: {normalization: DECODE}', 'm.yaml'),
    (e: unknown) => hasCode(e, 'MESH_CONFIG_INVALID') && /m\.yaml: pathNormalization\.normalization: expected NONE, BASE, MERGE_SLASHES or DECODE_AND_MERGE_SLASHES, got "DECODE"/.test((e as Error).message));
});
