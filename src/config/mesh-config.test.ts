import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasCode } from '../errors.ts';
import { extensionProviderKind, parseMeshConfig } from './mesh-config.ts';

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

test('MeshConfig: the ingress gateway selector and extension provider types', () => {
  const m = parseMeshConfig('ingressSelector: edge\nextensionProviders:\n- name: otel\n  opentelemetry: {service: otel.obs.svc.cluster.local, port: 4317}\n- name: broken\n', 'm.yaml');
  assert.equal(m.ingressSelector, 'edge');
  assert.deepEqual(m.extensionProviders?.map(extensionProviderKind), ['opentelemetry', undefined]);
  assert.throws(() => parseMeshConfig('ingressSelector: ""', 'm.yaml'), (e: unknown) => hasCode(e, 'MESH_CONFIG_INVALID') && /ingressSelector/.test((e as Error).message));
});
