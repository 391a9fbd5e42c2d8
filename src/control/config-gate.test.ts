import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigGate, blocksServing } from './config-gate.ts';
import { resourcesFromYaml } from '../registry/test-support.ts';

const routeTo = (backend: string) => `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: trellis
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: ${backend}, port: 8080}]}]
`;

// That its requests then get 500 is checked on the generated routes by routes/conformance.test.ts
// and end to end by the conformance case HTTPRouteInvalidNonExistentBackendRef (test/conformance.test.ts).
test('an HTTPRoute to a missing backend is still served: a diagnostic (status ResolvedRefs=False), not NOT_SERVED', () => {
  const gate = new ConfigGate();
  const res = gate.update(resourcesFromYaml(routeTo('nonexistent')));
  assert.ok(res.diagnostics.some((d) => d.code === 'ROUTE_BACKEND_NOT_FOUND'));
  assert.ok(!res.diagnostics.some((d) => d.code === 'NOT_SERVED'));
  assert.equal(gate.list(resourcesFromYaml(routeTo('x'))[1].type).length, 1);
});

test('blocksServing: status-expressed Gateway API route errors, conflicts and gateway credentials are exempt', () => {
  const resource = { kind: 'HTTPRoute', namespace: 'a', name: 'b' };
  assert.equal(blocksServing({ severity: 'error', code: 'ROUTE_BACKEND_NOT_FOUND', message: '', resource }), false);
  assert.equal(blocksServing({ severity: 'error', code: 'REF_NOT_PERMITTED', message: '', resource }), false);
  assert.equal(blocksServing({ severity: 'error', code: 'PARENT_NOT_FOUND', message: '', resource }), true);
  assert.equal(blocksServing({ severity: 'error', code: 'REF_NOT_PERMITTED', message: '', resource: { ...resource, kind: 'Gateway' } }), true);
  assert.equal(blocksServing({ severity: 'warning', code: 'X', message: '', resource }), false);
  // A conflict is reported on every side; withholding them all would serve less, not resolve it.
  assert.equal(blocksServing({ severity: 'error', code: 'GATEWAY_CONFLICT', message: '', resource: { ...resource, kind: 'Gateway' } }), false);
  assert.equal(blocksServing({ severity: 'error', code: 'VS_HOST_CONFLICT', message: '', resource: { ...resource, kind: 'VirtualService' } }), false);
  // A gateway credential is resolved per proxy at SDS time; a missing one fails that server's TLS only.
  assert.equal(blocksServing({ severity: 'error', code: 'SECRET_NOT_FOUND', message: '', resource: { ...resource, kind: 'Gateway' } }), false);
});
