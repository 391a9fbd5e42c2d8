import assert from 'node:assert/strict';
import { test } from 'node:test';
import { policiesFor } from './security/authz-policies.ts';
import { jwtRulesFor } from './security/jwt-authn.ts';
import { telemetriesFor } from './telemetry.ts';
import { node, snapshotFromYaml } from './test-support.ts';
import type { ProxyNode } from '../proxy-node.ts';

const GatewayLabel = 'gateway.networking.k8s.io/gateway-name';

const deny = (name: string, ns: string, attach: string) => `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: ${ns}}
spec:
${attach}
  action: DENY
  rules: [{to: [{operation: {methods: [DELETE]}}]}]
`;
const gwRef = (name: string, extra = '') => `{group: gateway.networking.k8s.io, kind: Gateway, name: ${name}${extra}}`;

const yaml = [
  deny('by-ref', 'web', `  targetRefs: [${gwRef('web-gw')}]`),
  deny('by-old-ref', 'web', `  targetRef: ${gwRef('web-gw')}`),
  // targetRefs wins over targetRef when both are set.
  deny('list-wins', 'web', `  targetRef: ${gwRef('web-gw')}\n  targetRefs: [${gwRef('api-gw')}]`),
  deny('other-namespace-ref', 'web', `  targetRefs: [${gwRef('web-gw', ', namespace: shop')}]`),
  deny('service-ref', 'web', `  selector: {matchLabels: {app: cart}}\n  targetRefs: [{group: "", kind: Service, name: cart}]`),
  deny('no-group', 'web', `  targetRefs: [{kind: Gateway, name: web-gw}]`),
  deny('root-ref', 'istio-system', `  targetRefs: [${gwRef('web-gw')}]`),
  deny('by-selector', 'web', `  selector: {matchLabels: {app: cart}}`),
  deny('namespace-wide', 'web', `  selector: {}`),
  deny('mesh-wide', 'istio-system', `  selector: {matchLabels: {}}`),
].join('');

function names(proxy: ProxyNode): string[] {
  return policiesFor(snapshotFromYaml(yaml, { raw: true }), proxy).DENY.map((p) => p.name).sort();
}

const withLabels = (p: ProxyNode, labels: Record<string, string>): ProxyNode => ({ ...p, labels });

test('targetRefs attach a policy to the Gateway API gateway that proxy implements (label or TRELLIS_GATEWAY), in the policy namespace only', () => {
  const byLabel = withLabels(node('router', 'web', 'web-gw-istio-1'), { [GatewayLabel]: 'web-gw' });
  assert.deepEqual(names(byLabel), ['by-old-ref', 'by-ref', 'mesh-wide', 'namespace-wide']);
  const byMetadata = node('router', 'web', 'web-gw-1', { TRELLIS_GATEWAY: 'web/web-gw' });
  assert.deepEqual(names(byMetadata), ['by-old-ref', 'by-ref', 'mesh-wide', 'namespace-wide']);
  const api = withLabels(node('router', 'web', 'api-gw-1'), { [GatewayLabel]: 'api-gw' });
  assert.deepEqual(names(api), ['list-wins', 'mesh-wide', 'namespace-wide']);
});

test('a sidecar never gets a targetRef policy, whatever its selector says; selectors apply as before', () => {
  const cart = withLabels(node('sidecar', 'web', 'cart-1'), { app: 'cart' });
  assert.deepEqual(names(cart), ['by-selector', 'mesh-wide', 'namespace-wide']);
});

test("a Gateway API gateway still takes selector policies (Istio's default ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY)", () => {
  const gw = withLabels(node('router', 'web', 'web-gw-istio-1'), { [GatewayLabel]: 'web-gw', app: 'cart' });
  assert.ok(names(gw).includes('by-selector'));
});

test('RequestAuthentication and Telemetry attach by targetRefs the same way', () => {
  const snap = snapshotFromYaml(`apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: gw-jwt, namespace: web}
spec:
  targetRefs: [${gwRef('web-gw')}]
  jwtRules: [{issuer: "https://gw.example", jwksUri: "https://gw.example/jwks"}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: app-jwt, namespace: web}
spec:
  selector: {matchLabels: {app: cart}}
  jwtRules: [{issuer: "https://app.example", jwksUri: "https://app.example/jwks"}]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: gw-telemetry, namespace: web}
spec:
  targetRef: ${gwRef('web-gw')}
  tracing: [{randomSamplingPercentage: 50}]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: web-default, namespace: web}
spec:
  tracing: [{randomSamplingPercentage: 1}]
`, { raw: true });
  const gw = withLabels(node('router', 'web', 'web-gw-istio-1'), { [GatewayLabel]: 'web-gw' });
  const cart = withLabels(node('sidecar', 'web', 'cart-1'), { app: 'cart' });
  assert.deepEqual(jwtRulesFor(snap, gw).map((r) => r.issuer), ['https://gw.example']);
  assert.deepEqual(jwtRulesFor(snap, cart).map((r) => r.issuer), ['https://app.example']);
  // The targetRef Telemetry is the gateway's workload scope, not a second namespace default.
  assert.deepEqual(telemetriesFor(snap, gw).map((r) => r.metadata.name), ['web-default', 'gw-telemetry']);
  assert.deepEqual(telemetriesFor(snap, cart).map((r) => r.metadata.name), ['web-default']);
});
