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
