import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeConfig } from './index.ts';
import { resourcesFromYaml } from './fixture.test-util.ts';

test('JWKS_INVALID: an inline jwks that is not a JWKS names the rule and field', () => {
  const d = analyzeConfig(resourcesFromYaml(`apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: shop }
spec:
  jwtRules:
  - { issuer: a, jwks: '{"keys": [' }
  - { issuer: b, jwks: '{"nokeys": 1}' }
  - { issuer: c, jwks: '{"keys": []}' }
`)).filter((x) => x.code === 'JWKS_INVALID');
  assert.deepEqual(d.map((x) => [x.severity, x.fieldPath]), [['error', 'spec.jwtRules[0].jwks'], ['error', 'spec.jwtRules[1].jwks']]);
  assert.match(d[0].message, /not JSON/);
  assert.match(d[1].message, /no "keys" array/);
});

test('MESH_CONFIG_INVALID: errors in the istio ConfigMap name the MeshConfig field', () => {
  const d = analyzeConfig(resourcesFromYaml(`apiVersion: v1
kind: ConfigMap
metadata: { name: istio, namespace: istio-system }
data:
  mesh: |
    extensionProviders:
    - name: x
      envoyExtAuthzGrpc: { service: x.ns.svc.cluster.local, port: 70000 }
`)).filter((x) => x.code === 'MESH_CONFIG_INVALID');
  assert.equal(d.length, 1);
  assert.equal(d[0].resource?.name, 'istio');
  assert.equal(d[0].fieldPath, 'data.mesh.extensionProviders[0].envoyExtAuthzGrpc.port');
  // The same ConfigMap elsewhere is not MeshConfig.
  assert.deepEqual(analyzeConfig(resourcesFromYaml(`apiVersion: v1
kind: ConfigMap
metadata: { name: istio, namespace: other }
data: { mesh: "a: [" }
`)).filter((x) => x.code === 'MESH_CONFIG_INVALID'), []);
});
