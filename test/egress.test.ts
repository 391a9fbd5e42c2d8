/**
 * Egress end to end (explicit capture): a client sidecar reaches "external" hosts (local servers on
 * loopback) declared by ServiceEntries; under ALLOW_ANY an undeclared host too (through the
 * sidecar's HTTP proxy, by the dynamic forward proxy); outboundTrafficPolicy REGISTRY_ONLY blocks
 * a host the mesh does not know with 502 (Istio's `block_all` route) while the ServiceEntry host
 * still works; a
 * DestinationRule `tls: SIMPLE` makes the sidecar originate TLS to an HTTPS server of a test CA
 * while the app speaks plain HTTP (SNI and certificate checked; a wrong CA fails); and Istio's
 * egress gateway pattern (VirtualService: mesh -> egress gateway -> external host) carries the same
 * request through a separate gateway proxy, over mTLS from the sidecar, originating TLS at the
 * gateway.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, stopAll, waitFor, type ProxyProc } from './support/mesh.ts';
import { httpGet } from './support/http-client.ts';
import { egressGatewayRoutingYaml, serviceEntryYaml, startEgressBed, startExternalServer, viaHttpProxy, type EgressBed, type ExternalServer } from './support/egress-mesh.ts';
import { testCa, tlsSecretYaml, type TestCa } from './support/test-pki.ts';

let bed: EgressBed;
let client: ProxyProc;
let plain: ExternalServer;
let secure: ExternalServer;
let ca: TestCa;
let proxyPort: number;
let port80: number;

const serviceEntries = (plainPort: number, securePort: number) => [
  serviceEntryYaml({ name: 'api-external', host: 'api.external.test', ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], address: '127.0.0.1', endpointPorts: { http: plainPort } }),
  serviceEntryYaml({ name: 'secure-external', host: 'secure.external.test', ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: 443 }, { number: 443, name: 'https', protocol: 'HTTPS' }], address: '127.0.0.1', endpointPorts: { http: securePort, https: securePort } }),
].join('---\n');

/** TLS origination: port 80 (plain HTTP from the app) leaves the sidecar as TLS, verified against `credentialName`'s CA. */
const originate = (credential: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: secure-external, namespace: default}
spec:
  host: secure.external.test
  trafficPolicy:
    portLevelSettings:
    - port: {number: 80}
      tls: {mode: SIMPLE, credentialName: ${credential}}
    - port: {number: 443}
      tls: {mode: SIMPLE, credentialName: ${credential}}
`;

const registryOnly = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: istio-system}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
`;

before(async () => {
  ca = await testCa();
  const other = await testCa('Some Other Root');
  const leaf = await ca.leaf('secure', ['secure.external.test']);
  plain = await startExternalServer('plain');
  secure = await startExternalServer('secure', leaf);
  bed = await startEgressBed({
    'external.yaml': serviceEntries(plain.port, secure.port),
    'ca.yaml': tlsSecretYaml({ name: 'external-ca', ca: ca.cert }) + '---\n' + tlsSecretYaml({ name: 'other-ca', ca: other.cert }),
    'dr.yaml': originate('external-ca'),
  });
  proxyPort = await freePort();
  port80 = await freePort();
  client = await bed.proxy({ workload: 'client-1', labels: { app: 'client' }, serviceAccount: 'client', metadata: { TRELLIS_HTTP_PROXY_PORT: proxyPort, TRELLIS_OUTBOUND_PORTS: { 80: port80, 443: await freePort() } } });
});

after(async () => {
  await stopAll();
  await Promise.all([plain?.close(), secure?.close()]);
});

test('a ServiceEntry host is reached through the sidecar, by its outbound port and as an HTTP proxy', async () => {
  const r = await waitFor('ServiceEntry host reachable', async () => {
    const x = await httpGet(port80, '/a', 'api.external.test');
    return x.status === 200 ? x : undefined;
  }, 20_000, 200);
  assert.equal(r.body, 'plain /a\n');
  const p = await viaHttpProxy(proxyPort, 'http://api.external.test/b');
  assert.deepEqual(p, { status: 200, body: 'plain /b\n' });
});

test('TLS origination: the app speaks plain HTTP, the sidecar connects with TLS (SNI, test CA verified); a wrong CA fails', async () => {
  secure.seen.length = 0;
  const r = await httpGet(port80, '/origin', 'secure.external.test');
  assert.equal(r.status, 200, r.body);
  assert.equal(r.body, 'secure /origin\n');
  assert.deepEqual(secure.seen.map((s) => [s.tls, s.sni, s.host]), [[true, 'secure.external.test', 'secure.external.test']]);
  const p = await viaHttpProxy(proxyPort, 'http://secure.external.test/proxied');
  assert.deepEqual(p, { status: 200, body: 'secure /proxied\n' });

  bed.cp.write('dr.yaml', originate('other-ca'));
  const bad = await waitFor('a CA that did not sign the server fails the handshake', async () => {
    const x = await httpGet(port80, '/wrong-ca', 'secure.external.test');
    return x.status === 503 ? x : undefined;
  }, 20_000, 200);
  assert.match(bad.body, /upstream connect error|TLS|certificate/i, bad.body);
  const again = await httpGet(port80, '/wrong-ca-2', 'secure.external.test');
  assert.equal(again.status, 503, again.body);
  assert.ok(!secure.seen.some((s) => s.path === '/wrong-ca-2'), 'the server never saw the request');
  bed.cp.write('dr.yaml', originate('external-ca'));
  await waitFor('back to the right CA', async () => (await httpGet(port80, '/again', 'secure.external.test')).status === 200, 20_000, 200);
});

test('ALLOW_ANY (default): a host the mesh does not know is reached through the sidecar\'s HTTP proxy (dynamic forward proxy to the request\'s authority)', async () => {
  const byIp = await viaHttpProxy(proxyPort, `http://127.0.0.1:${plain.port}/any-ip`);
  assert.deepEqual(byIp, { status: 200, body: 'plain /any-ip\n' });
  const byName = await viaHttpProxy(proxyPort, `http://localhost:${plain.port}/any-name`);
  assert.deepEqual(byName, { status: 200, body: 'plain /any-name\n' });
  assert.equal(plain.seen.find((s) => s.path === '/any-name')?.host, `localhost:${plain.port}`);
  const stats = await (await fetch(`http://127.0.0.1:${client.ports.admin}/stats`)).text();
  assert.match(stats, /cluster\.DynamicForwardProxyCluster\.upstream_rq_2xx: [2-9]/);
});

test('REGISTRY_ONLY: an unknown host gets 502 from block_all and never reaches its server; the ServiceEntry hosts still work', async () => {
  bed.cp.write('registry-only.yaml', registryOnly);
  // (Until the policy arrives the probe still passes through: ALLOW_ANY.)
  await waitFor('unknown host blocked', async () => (await viaHttpProxy(proxyPort, `http://127.0.0.1:${plain.port}/probe`)).status === 502, 20_000, 200);
  assert.equal((await viaHttpProxy(proxyPort, `http://127.0.0.1:${plain.port}/leak`)).status, 502);
  assert.equal((await viaHttpProxy(proxyPort, 'http://unknown.external.test/leak')).status, 502);
  assert.equal((await httpGet(port80, '/leak', 'unknown.external.test')).status, 502);
  assert.ok(!plain.seen.some((s) => s.path === '/leak'), 'nothing leaked to the server');
  assert.deepEqual(await viaHttpProxy(proxyPort, 'http://api.external.test/allowed'), { status: 200, body: 'plain /allowed\n' });
  const tls = await httpGet(port80, '/allowed', 'secure.external.test');
  assert.equal(tls.status, 200, tls.body);
  const stats = await (await fetch(`http://127.0.0.1:${client.ports.admin}/stats`)).text();
  assert.match(stats, /http\.http_proxy\.downstream_rq_5xx: [1-9]/, stats.split('\n').filter((l) => l.includes('http_proxy')).join('\n'));
  bed.cp.remove('registry-only.yaml');
});

/** Istio's "egress gateway with TLS origination": mesh -(mTLS)-> egress gateway -(TLS, test CA)-> external host. */
const viaEgressGateway = (gw443: number) => `apiVersion: v1
kind: Service
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  ports: [{name: https, port: 443, targetPort: 443}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: egressgateway-1, namespace: istio-system}
spec:
  address: 127.0.0.1
  labels: {istio: egressgateway}
  serviceAccount: istio-egressgateway-service-account
  ports: {https: ${gw443}}
---
${egressGatewayRoutingYaml('secure.external.test')}`;

test('egress gateway: mesh -> (ISTIO_MUTUAL) egress gateway -> (TLS origination) external host, under REGISTRY_ONLY', async () => {
  const gw443 = await freePort();
  bed.cp.write('registry-only.yaml', registryOnly);
  // The gateway resolves credentialName in its own namespace, as Istio's gateways do.
  bed.cp.write('gateway-ca.yaml', tlsSecretYaml({ name: 'external-ca', namespace: 'istio-system', ca: ca.cert }));
  bed.cp.write('egress-gateway.yaml', viaEgressGateway(gw443));
  const gw = await bed.proxy({ kind: 'router', workload: 'egressgateway-1', namespace: 'istio-system', labels: { istio: 'egressgateway' }, serviceAccount: 'istio-egressgateway-service-account', metadata: { TRELLIS_GATEWAY_PORTS: { 443: gw443 } } });
  secure.seen.length = 0;
  const r = await waitFor('request through the egress gateway', async () => {
    const x = await httpGet(port80, `/via-gateway`, 'secure.external.test');

    return x.status === 200 ? x : undefined;
  }, 30_000, 300);
  assert.equal(r.body, 'secure /via-gateway\n');
  const last = secure.seen[secure.seen.length - 1];
  assert.deepEqual([last.tls, last.sni, last.host], [true, 'secure.external.test', 'secure.external.test']);
  const gwStats = await (await fetch(`http://127.0.0.1:${gw.ports.admin}/stats`)).text();
  assert.match(gwStats, /http\.outbound_0\.0\.0\.0_443\.downstream_rq_2xx: [1-9]/, 'the gateway served it');
  assert.match(gwStats, /cluster\.outbound\|443\|\|secure\.external\.test\.upstream_rq_2xx: [1-9]/, 'and sent it on to the external host');
  // The hop from the sidecar is mTLS: the gateway refuses a client without a mesh certificate.
  const direct = await fetch(`https://127.0.0.1:${gw443}/`).then((x) => x.status, () => 0);
  assert.equal(direct, 0);
  await gw.stop();
  bed.cp.remove('egress-gateway.yaml');
  bed.cp.remove('registry-only.yaml');
});
