/**
 * The rules the checks share with the runtime and with Istio, case by case: where a Gateway's
 * credential is read, which gateway admits which VirtualService host, exportTo visibility, Pods as
 * workloads, mesh-wide host conflicts, mesh config.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeConfig } from './index.ts';
import { resourcesFromYaml, TestCertificate, TestPrivateKey } from './test-support.ts';
import { parseMeshConfig } from '../mesh-config.ts';

function findings(yaml: string, opts = {}): string[] {
  return analyzeConfig(resourcesFromYaml(yaml), opts).map((d) => `${d.code} ${d.resource?.kind} ${d.resource?.namespace}/${d.resource?.name}`);
}

const shopGateway = (credential: string) => `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: shop, namespace: shop}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [shop.example.com]
    tls: {mode: SIMPLE, credentialName: ${credential}}
`;
const pem = JSON.stringify({ 'tls.crt': TestCertificate, 'tls.key': TestPrivateKey });
const secret = (ns: string, name: string, data = pem) => `---
apiVersion: v1
kind: Secret
metadata: {name: ${name}, namespace: ${ns}}
stringData: ${data}
`;

test('credentialName is read where the gateway workload runs: istio-system for the built-in ingress gateway', () => {
  assert.deepEqual(findings(shopGateway('shop-cert') + secret('istio-system', 'shop-cert')), []);
  assert.deepEqual(findings(shopGateway('shop-cert') + secret('shop', 'shop-cert')), ['SECRET_NOT_FOUND Gateway shop/shop']);
  assert.deepEqual(findings(shopGateway('kubernetes://shop/shop-cert') + secret('shop', 'shop-cert')), []);
  assert.deepEqual(findings(shopGateway('shop-cert') + secret('istio-system', 'shop-cert', '{ca.crt: x}')), ['SECRET_INVALID Gateway shop/shop']);
  assert.deepEqual(findings(shopGateway('shop-cert') + secret('istio-system', 'shop-cert', '{tls.crt: placeholder, tls.key: placeholder}')), ['SECRET_INVALID Gateway shop/shop']);
  const swapped = JSON.stringify({ 'tls.crt': TestCertificate, 'tls.key': TestPrivateKey.replace('A', 'B') });
  assert.deepEqual(findings(shopGateway('shop-cert') + secret('istio-system', 'shop-cert', swapped)), ['SECRET_INVALID Gateway shop/shop']);
  // A gateway of one's own: its pods' namespace holds the Secret.
  const own = shopGateway('shop-cert').replace('{istio: ingressgateway}', '{app: shop-gateway}') + `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop-gateway, namespace: edge}
spec: {template: {metadata: {labels: {app: shop-gateway}}}}
`;
  assert.deepEqual(findings(own + secret('edge', 'shop-cert')), []);
  assert.deepEqual(findings(own + secret('istio-system', 'shop-cert')), ['SECRET_NOT_FOUND Gateway shop/shop']);
});

const services = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {selector: {app: web}, ports: [{name: http, port: 80}]}
`;
const gateway = (name: string, hosts: string) => `---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ${name}, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ${hosts}}]
`;
const vs = (name: string, ns: string, hosts: string, gateways: string) => `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: ${ns}}
spec:
  hosts: ${hosts}
  gateways: ${gateways}
  http: [{route: [{destination: {host: web.default.svc.cluster.local}}]}]
`;

test('a gateway admits VirtualService hosts by its server hosts and their namespace prefixes; conflicts count admitted hosts only', () => {
  const cfg = services + gateway('api', '["*.api.example.com"]') + gateway('home', '["*.home.example.com"]') +
    vs('a', 'default', '[user.api.example.com]', '[istio-system/api, istio-system/home]') +
    vs('b', 'default', '[user.api.example.com, x.home.example.com]', '[istio-system/api, istio-system/home]');
  assert.deepEqual(findings(cfg).sort(), [
    'VS_HOST_CONFLICT VirtualService default/a',
    'VS_HOST_CONFLICT VirtualService default/b',
    'VS_HOST_NOT_IN_GATEWAY VirtualService default/a',
  ]);
  const nsPrefix = services + gateway('own', '["./web.example.com"]') + vs('w', 'default', '[web.example.com]', '[istio-system/own]') +
    vs('w2', 'istio-system', '[web.example.com]', '[own]');
  assert.deepEqual(findings(nsPrefix), ['VS_HOST_NOT_IN_GATEWAY VirtualService default/w']);
});

test('exportTo: a host exported elsewhere is not found, and a catch-all ServiceEntry kept to its namespace hides nothing', () => {
  const cfg = `
apiVersion: v1
kind: Service
metadata: {name: ledger, namespace: finance, annotations: {networking.istio.io/exportTo: audit}}
spec: {selector: {app: ledger}, ports: [{name: http, port: 80}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: all, namespace: egress}
spec: {hosts: ["*"], exportTo: ["."], ports: [{number: 443, name: tls, protocol: TLS}], resolution: NONE}
` + vs('from-audit', 'audit', '[a.example.com]', '[mesh]').replace('web.default.svc.cluster.local', 'ledger.finance.svc.cluster.local') +
    vs('from-shop', 'shop', '[b.example.com]', '[mesh]').replace('web.default.svc.cluster.local', 'ledger.finance.svc.cluster.local') +
    vs('typo', 'egress-less', '[c.example.com]', '[mesh]').replace('web.default.svc.cluster.local', 'nothing.example.com');
  const d = analyzeConfig(resourcesFromYaml(cfg)).filter((x) => x.code === 'VS_HOST_NOT_FOUND');
  assert.deepEqual(d.map((x) => x.resource?.name).sort(), ['from-shop', 'typo']);
  assert.match(d.find((x) => x.resource?.name === 'from-shop')!.message, /is not exported to namespace shop \(Service finance\/ledger is exported to audit\)/);
});

test('Pods are workloads: a selector on a pod label no Service mentions is not an alarm', () => {
  const cfg = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {selector: {app: web}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: default, labels: {app: web, tier: frontend}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: frontend, namespace: default}
spec: {selector: {matchLabels: {tier: frontend}}, mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: backend, namespace: default}
spec: {selector: {matchLabels: {tier: backend}}, mtls: {mode: STRICT}}
`;
  assert.deepEqual(findings(cfg), ['SELECTOR_NO_MATCH PeerAuthentication default/backend']);
});

test('mesh VirtualServices conflict when hosts are equal or overlapping wildcards and exportTo share a namespace', () => {
  const mesh = (name: string, ns: string, host: string, exportTo: string) => vs(name, ns, `["${host}"]`, '[mesh]').replace('  http:', `  exportTo: ${exportTo}\n  http:`);
  // e's concrete host beats the wildcards that cover it: not ambiguous.
  const cfg = services + mesh('a', 'foo', '*.d', '["*"]') + mesh('b', 'bar', '*.p.d', '["."]') + mesh('c', 'foo', 'x.q', '["."]') + mesh('d', 'bar', 'x.q', '["."]') +
    mesh('e', 'bar', 'www.p.d', '["*"]');
  assert.deepEqual(findings(cfg).sort(), ['VS_HOST_CONFLICT VirtualService bar/b', 'VS_HOST_CONFLICT VirtualService foo/a']);
});

test('gateways on one workload: TLS servers with one host conflict, plain-HTTP ones merge', () => {
  const server = (name: string, proto: string, tls = '') => `---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ${name}, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 443, name: p, protocol: ${proto}}, hosts: [a.example.com]${tls}}]
`;
  assert.deepEqual(findings(server('h1', 'HTTP') + server('h2', 'HTTP')), []);
  const tls = ', tls: {mode: PASSTHROUGH}';
  assert.deepEqual(findings(server('t1', 'TLS', tls) + server('t2', 'TLS', tls)).sort(), ['GATEWAY_CONFLICT Gateway istio-system/t1', 'GATEWAY_CONFLICT Gateway istio-system/t2']);
  // Different workloads: no conflict.
  assert.deepEqual(findings(server('t1', 'TLS', tls) + server('t2', 'TLS', tls).replace('istio: ingressgateway', 'istio: egressgateway') + `---
apiVersion: v1
kind: Pod
metadata: {name: egress, namespace: istio-system, labels: {istio: egressgateway}}
`), []);
});

test('DR_TLS_NO_CA: servers inside the mesh only (public roots verify the others)', () => {
  const dr = (host: string, tls: string) => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: x, namespace: default}
spec: {host: ${host}, trafficPolicy: {tls: ${tls}}}
`;
  assert.deepEqual(findings(services + '---' + dr('web', '{mode: SIMPLE}')), ['DR_TLS_NO_CA DestinationRule default/x']);
  assert.deepEqual(findings(services + '---' + dr('web', '{mode: SIMPLE, caCertificates: /ca.pem}')), []);
  assert.deepEqual(findings(services + '---' + dr('web', '{mode: SIMPLE, insecureSkipVerify: true}')), []);
  assert.deepEqual(findings(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: default}
spec: {hosts: [api.example.com], ports: [{number: 443, name: https, protocol: HTTPS}], resolution: DNS}
---` + dr('api.example.com', '{mode: SIMPLE}')), []);
});

test('mesh config: the root namespace decides which selectors reach every namespace', () => {
  const cfg = `
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: default, labels: {app: web}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: web, namespace: mesh-root}
spec: {workloadSelector: {labels: {app: web}}, egress: [{hosts: ["./*"]}]}
`;
  assert.deepEqual(findings(cfg), ['SELECTOR_NO_MATCH Sidecar mesh-root/web']);
  assert.deepEqual(findings(cfg, { mesh: parseMeshConfig('rootNamespace: mesh-root', 'm.yaml') }), []);
});
