/**
 * Policies attached to a Gateway API gateway by `targetRefs`, end to end: a real control plane, a
 * `trellis proxy` implementing Gateway `api-gw` (label `gateway.networking.k8s.io/gateway-name`,
 * as Istio's deployment controller labels the gateway's pods) and a second one implementing
 * `other-gw`, both routing to one echo backend. An AuthorizationPolicy and a RequestAuthentication
 * with `targetRefs` must apply to api-gw's proxy and to no other; a policy whose targetRef names a
 * Service (an ambient waypoint target) applies nowhere, its selector notwithstanding.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { startEchoServer } from '../src/samples/echo-server.ts';
import type { DualServer } from '../src/samples/sniff-server.ts';
import { freePort, startControlPlane, startProxy, stopAll, waitFor, type ControlPlaneProc } from './support/mesh.ts';
import { serviceWithWorkloads } from './support/mesh-yaml.ts';

let cp: ControlPlaneProc;
let echo: DualServer;
const ports = { api: 0, other: 0 };
let token = '';

const gateways = ['api-gw', 'other-gw'].map((name) => `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ${name}, namespace: default}
spec:
  gatewayClassName: trellis
  listeners: [{name: http, port: 8080, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${name}-route, namespace: default}
spec:
  parentRefs: [{name: ${name}}]
  rules: [{backendRefs: [{name: echo, port: 8080}]}]
`).join('---\n');

/** DENY /admin on api-gw by targetRefs; a Service-targeted DENY of everything, which must attach nowhere. */
const denyPolicies = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api-gw-deny-admin, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: api-gw}]
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: waypoint-only, namespace: default}
spec:
  selector: {matchLabels: {gateway.networking.k8s.io/gateway-name: other-gw}}
  targetRefs: [{kind: Service, group: "", name: echo}]
  action: DENY
  rules: [{}]
`;

async function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; policy: string | null; body: string }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, { headers });
  return { status: r.status, policy: r.headers.get('x-trellis-policy'), body: await r.text() };
}

before(async () => {
  echo = await startEchoServer({ namespace: 'default', service: 'echo', pod: 'echo-1' });
  ports.api = await freePort();
  ports.other = await freePort();
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
  token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer('https://issuer.example').setIssuedAt().setExpirationTime('1h').sign(privateKey);
  cp = await startControlPlane({
    'echo.yaml': serviceWithWorkloads({ name: 'echo', ports: [{ name: 'http', port: 8080 }], workloads: [{ name: 'echo-1', labels: {}, ports: { http: echo.port } }] }),
    'gateways.yaml': gateways,
    'deny.yaml': denyPolicies,
    // JWT on api-gw only, attached by targetRef: a token is checked there, required by the ALLOW.
    'jwt.yaml': `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: api-gw-jwt, namespace: default}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: api-gw}
  jwtRules: [{issuer: "https://issuer.example", jwks: '${JSON.stringify({ keys: [jwk] })}'}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api-gw-require-jwt, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: api-gw}]
  action: ALLOW
  rules: [{from: [{source: {requestPrincipals: ["*"]}}]}, {to: [{operation: {paths: ["/public*"]}}]}]
`,
  });
  await startProxy(cp, { kind: 'router', workload: 'api-gw-1', labels: { 'gateway.networking.k8s.io/gateway-name': 'api-gw' }, metadata: { TRELLIS_GATEWAY_PORTS: { 8080: ports.api } } });
  await startProxy(cp, { kind: 'router', workload: 'other-gw-1', labels: { 'gateway.networking.k8s.io/gateway-name': 'other-gw' }, metadata: { TRELLIS_GATEWAY_PORTS: { 8080: ports.other } } });
  await waitFor('both gateways route', async () => (await get(ports.api, '/public')).status === 200 && (await get(ports.other, '/')).status === 200, 30_000, 200);
});

after(async () => {
  await stopAll();
  await echo?.close();
});

test('an AuthorizationPolicy with targetRefs applies to the Gateway it names, and the denial names it', async () => {
  const denied = await get(ports.api, '/admin/users', { authorization: `Bearer ${token}` });
  assert.equal(denied.status, 403);
  assert.equal(denied.policy, 'default/api-gw-deny-admin');
  assert.equal((await get(ports.api, '/orders', { authorization: `Bearer ${token}` })).status, 200);
});

test('a RequestAuthentication attached by targetRef checks tokens at that Gateway; its ALLOW needs one', async () => {
  assert.equal((await get(ports.api, '/orders')).status, 403, 'no token: the ALLOW by requestPrincipals does not match');
  assert.equal((await get(ports.api, '/public/page')).status, 200, 'the path rule allows without a token');
  assert.equal((await get(ports.api, '/orders', { authorization: 'Bearer not.a.jwt' })).status, 401, 'a bad token is refused by jwt_authn');
  assert.equal((await get(ports.api, '/orders', { authorization: `Bearer ${token}` })).status, 200);
});

test("another Gateway's proxy gets none of those policies; a Service-targeted policy attaches nowhere despite its selector", async () => {
  assert.equal((await get(ports.other, '/admin/users')).status, 200);
  assert.equal((await get(ports.other, '/orders', { authorization: 'Bearer not.a.jwt' })).status, 200);
});

test('a changed targetRef moves the policy to the other Gateway', async () => {
  cp.write('deny.yaml', denyPolicies.replace('name: api-gw}]\n  action: DENY', 'name: other-gw}]\n  action: DENY'));
  // The two proxies take the push independently: wait for both.
  await waitFor('the DENY moved to other-gw', async () => (await get(ports.other, '/admin/x')).status === 403 && (await get(ports.api, '/admin/x', { authorization: `Bearer ${token}` })).status === 200, 20_000, 200);
  const denied = await get(ports.other, '/admin/x');
  assert.equal(denied.policy, 'default/api-gw-deny-admin');
  cp.write('deny.yaml', denyPolicies);
  await waitFor('the DENY back on api-gw', async () => (await get(ports.api, '/admin/x', { authorization: `Bearer ${token}` })).status === 403, 20_000, 200);
});
