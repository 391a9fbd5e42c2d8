/**
 * Must-show: a stock Envoy 1.40 sidecar fed by our control plane talks mTLS to a Trellis sidecar,
 * both ways, under STRICT PeerAuthentication. Each Envoy gets its workload certificate the way
 * Istio's Envoy does: `trellis sds-agent` (pilot-agent's role) makes the key, gets the SPIFFE
 * certificate from the mesh CA by CSR and serves `default` over SDS on a Unix socket that Envoy's
 * bootstrap names `sds-grpc`; ROOTCA and everything else come over ADS. Checked: Envoy client ->
 * Trellis backend (the backend sees the Envoy's SPIFFE principal), Trellis client -> Envoy backend
 * (Envoy's TLS stats; openssl sees the Envoy's SPIFFE certificate chained to the mesh root),
 * plaintext to either STRICT port refused. TCP over mTLS both ways too (raw echoes on 9000, 9001):
 * the stock Envoy has no Istio TCP metadata exchange, so our control plane gives it neither the
 * filter nor its ALPN and the Trellis side never sends it a prefix: the echo comes back exact.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { freePort, spawnTrellis, stopAll, waitFor, type ProxyProc } from './support/mesh.ts';
import { Cleanups, startEnvoy, type EnvoyProcess } from './support/processes.ts';
import { startEgressBed, type EgressBed } from './support/egress-mesh.ts';
import { httpGet } from './support/http-client.ts';
import { findTool } from './support/tools.ts';
import { skipUnlessTools } from './support/skip.ts';
import { echoOnce, startTcpEcho } from './support/tcp-echo.ts';

const skip = skipUnlessTools('envoy', 'openssl');
const cleanups = new Cleanups();
let bed: EgressBed;
let apps: http.Server[] = [];
const seenBy: Record<string, number> = { backend: 0, 'envoy-backend': 0 };
let trellisBackend: ProxyProc;
let trellisClient: ProxyProc;
let envoyClient: EnvoyProcess;
let envoyBackend: EnvoyProcess;
const ports = { backendInbound: 0, envoyInbound: 0, envoyOut: 0, trellisOut: 0, backendTcpInbound: 0, envoyTcpInbound: 0, envoyTcpOut: 0, trellisTcpOut: 0 };
let echoes: net.Server[] = [];

async function app(name: string): Promise<number> {
  const s = http.createServer((req, res) => {
    seenBy[name]++;
    req.resume();
    res.end(`${name} ${req.url}\n`);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  apps.push(s);
  return (s.address() as AddressInfo).port;
}

// TCP has no Host to route by: each service's TCP port is its own number (9000, 9001).
const workload = (service: string, sa: string, port: number, tcpPort: number, tcpServicePort: number) => `apiVersion: v1
kind: Service
metadata: {name: ${service}, namespace: default}
spec:
  selector: {app: ${service}}
  ports: [{name: http, port: 8080, targetPort: 8080}, {name: tcp, port: ${tcpServicePort}, targetPort: ${tcpServicePort}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${service}-1, namespace: default}
spec:
  address: 127.0.0.1
  labels: {app: ${service}, security.istio.io/tlsMode: istio}
  serviceAccount: ${sa}
  ports: {http: ${port}, tcp: ${tcpPort}}
`;

async function echoApp(): Promise<number> {
  const e = await startTcpEcho();
  echoes.push(e.server);
  return e.port;
}

/** `trellis sds-agent` for one Envoy, resolved once its socket serves a certificate. */
async function sdsAgent(name: string, sa: string): Promise<string> {
  const socket = join(bed.dir, `${name}.sock`);
  const ready = join(bed.dir, `${name}.ready`);
  const p = spawnTrellis(['sds-agent', '--socket', socket, '--ca', `127.0.0.1:${bed.cp.xdsPort}`, '--ca-token-file', bed.tokenFile(name, 'default', sa), '--service-account', sa, '--ready-file', ready, '--log-level', 'warn']);
  await waitFor(`sds-agent ${name}`, () => {
    if (p.child.exitCode !== null) throw new Error(`sds-agent exited: ${p.output()}`);
    return existsSync(ready);
  }, 30_000, 100);
  return socket;
}

function run(tool: string, args: string[], input = ''): Promise<string> {
  return new Promise((resolve) => {
    const child = execFile(findTool(tool)!, args, { timeout: 20_000 }, (_err, stdout, stderr) => resolve(`${stdout}${stderr}`));
    child.stdin?.end(input);
  });
}

async function envoyStat(e: EnvoyProcess, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${e.admin}/stats`)).text();
  return text.split('\n').filter((l) => pattern.test(l)).reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

before(async () => {
  if (skip) return;
  Object.assign(ports, { backendInbound: await freePort(), envoyInbound: await freePort(), envoyOut: await freePort(), trellisOut: await freePort() });
  Object.assign(ports, { backendTcpInbound: await freePort(), envoyTcpInbound: await freePort(), envoyTcpOut: await freePort(), trellisTcpOut: await freePort() });
  const backendApp = await app('backend');
  const envoyApp = await app('envoy-backend');
  const [backendEcho, envoyEcho] = [await echoApp(), await echoApp()];
  bed = await startEgressBed({
    'backend.yaml': workload('backend', 'backend', ports.backendInbound, ports.backendTcpInbound, 9000),
    'envoy-backend.yaml': workload('envoy-backend', 'envoy-backend', ports.envoyInbound, ports.envoyTcpInbound, 9001),
    'strict.yaml': 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec:\n  mtls: {mode: STRICT}\n',
  });
  trellisBackend = await bed.proxy({ workload: 'backend-1', labels: { app: 'backend' }, serviceAccount: 'backend', metadata: { TRELLIS_INBOUND_ADDRESS: '127.0.0.1', TRELLIS_INBOUND_PORTS: { 8080: ports.backendInbound, 9000: ports.backendTcpInbound }, TRELLIS_APP_PORTS: { 8080: backendApp, 9000: backendEcho }, TRELLIS_OUTBOUND_PORTS: { 8080: await freePort(), 9000: await freePort(), 9001: await freePort() } } });
  trellisClient = await bed.proxy({ workload: 'frontend-1', labels: { app: 'frontend' }, serviceAccount: 'frontend', metadata: { TRELLIS_OUTBOUND_PORTS: { 8080: ports.trellisOut, 9001: ports.trellisTcpOut } } });
  const envoyNode = (name: string) => `sidecar~127.0.0.1~${name}.default~default.svc.cluster.local`;
  envoyBackend = await startEnvoy(cleanups, {
    xdsPort: bed.cp.xdsPort, nodeId: envoyNode('envoy-backend-1'), dir: bed.dir, sdsSocket: await sdsAgent('envoy-backend-1', 'envoy-backend'),
    metadata: { NAMESPACE: 'default', LABELS: { app: 'envoy-backend' }, SERVICE_ACCOUNT: 'envoy-backend', TRELLIS_INBOUND_ADDRESS: '127.0.0.1', TRELLIS_INBOUND_PORTS: { 8080: ports.envoyInbound, 9001: ports.envoyTcpInbound }, TRELLIS_APP_PORTS: { 8080: envoyApp, 9001: envoyEcho }, TRELLIS_OUTBOUND_PORTS: { 8080: await freePort(), 9000: await freePort(), 9001: await freePort() } },
  });
  envoyClient = await startEnvoy(cleanups, {
    xdsPort: bed.cp.xdsPort, nodeId: envoyNode('envoy-client-1'), dir: bed.dir, sdsSocket: await sdsAgent('envoy-client-1', 'envoy-client'),
    metadata: { NAMESPACE: 'default', LABELS: { app: 'envoy-client' }, SERVICE_ACCOUNT: 'envoy-client', TRELLIS_OUTBOUND_PORTS: { 8080: ports.envoyOut, 9000: ports.envoyTcpOut } },
  });
});

after(async () => {
  await cleanups.run();
  await stopAll();
  for (const s of apps) {
    s.closeAllConnections();
    s.close();
  }
  apps = [];
  for (const s of echoes) s.close();
  echoes = [];
});

test('Envoy sidecar -> Trellis sidecar (STRICT): ISTIO_MUTUAL with the certificate from trellis sds-agent; the backend sees the Envoy\'s SPIFFE principal', { skip }, async () => {
  const r = await waitFor('Envoy client reaches the Trellis backend', async () => {
    const x = await httpGet(ports.envoyOut, '/from-envoy', 'backend.default.svc.cluster.local:8080').catch(() => undefined);
    return x?.status === 200 ? x : undefined;
  }, 45_000, 300);
  assert.equal(r.body, 'backend /from-envoy\n');
  const stats = await (await fetch(`http://127.0.0.1:${trellisBackend.ports.admin}/stats`)).text();
  assert.match(stats, /mtls_observed\|8080\|mutual_tls\|\d+\|cluster\.local\/ns\/default\/sa\/envoy-client: [1-9]/, stats.split('\n').filter((l) => l.startsWith('mtls_observed')).join('\n'));
  assert.ok(await envoyStat(envoyClient, /^cluster\.outbound\|8080\|\|backend\.default\.svc\.cluster\.local\.ssl\.handshake: /) > 0, 'Envoy made TLS handshakes to the backend');
  // Envoy took every resource our control plane sent (a NACK would show here).
  for (const e of [envoyClient, envoyBackend]) {
    const row = (await bed.cp.syncz()).find((p) => p.id === e.nodeId)!;
    assert.ok(Object.values(row.types).every((t) => t.state === 'SYNCED'), JSON.stringify(row.types));
  }
  // STRICT: plaintext straight to the Trellis backend is refused.
  await assert.rejects(httpGet(ports.backendInbound, '/plain', 'backend'));
});

test('Trellis sidecar -> Envoy sidecar (STRICT): Envoy\'s inbound takes the Trellis client\'s mesh certificate and serves its own SPIFFE certificate', { skip }, async () => {
  const r = await waitFor('Trellis client reaches the Envoy backend', async () => {
    const x = await httpGet(ports.trellisOut, '/from-trellis', 'envoy-backend.default.svc.cluster.local:8080').catch(() => undefined);
    return x?.status === 200 ? x : undefined;
  }, 45_000, 300);
  assert.equal(r.body, 'envoy-backend /from-trellis\n');
  assert.ok(await envoyStat(envoyBackend, /^listener\..*\.ssl\.handshake: /) > 0, 'Envoy terminated mTLS');
  assert.equal(await envoyStat(envoyBackend, /^listener\..*\.ssl\.fail_verify_no_cert: /), 0);
  const s = await run('openssl', ['s_client', '-connect', `127.0.0.1:${ports.envoyInbound}`, '-CAfile', join(bed.dir, 'ca', 'root-cert.pem')]);
  assert.match(s, /Verify return code: 0 \(ok\)/, s);
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(s)?.[0] ?? '';
  assert.match(await run('openssl', ['x509', '-noout', '-ext', 'subjectAltName'], pem), /URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/envoy-backend/);
  // STRICT on Envoy's side too: plaintext is refused.
  const before = seenBy['envoy-backend'];
  await assert.rejects(httpGet(ports.envoyInbound, '/plain', 'envoy-backend'));
  assert.equal(seenBy['envoy-backend'], before);
});

test('TCP over STRICT mTLS between a stock Envoy and a Trellis sidecar, both ways: no metadata exchange prefix reaches either app', { skip }, async () => {
  const msg = Buffer.from('tcp through the mesh\n');
  for (const [name, port] of [['Envoy -> Trellis', ports.envoyTcpOut], ['Trellis -> Envoy', ports.trellisTcpOut]] as const) {
    const got = await waitFor(`${name} TCP echo`, async () => {
      const r = await echoOnce(() => net.connect(port, '127.0.0.1'), msg, { timeoutMs: 5_000 }).catch(() => undefined);
      return r !== undefined && r.length > 0 ? r : undefined;
    }, 45_000, 300);
    assert.deepEqual(got, msg, `${name}: the echo is exactly what was sent`);
  }
  // The Trellis sidecars count the connections, the Envoy peer unknown (it sent no metadata).
  const text = await (await fetch(`http://127.0.0.1:${trellisBackend.ports.prometheus}/stats/prometheus`)).text();
  assert.match(text, /istio_tcp_connections_opened_total\{reporter="destination",source_workload="unknown",[^}]*source_principal="spiffe:\/\/cluster\.local\/ns\/default\/sa\/envoy-client"[^}]*\} [1-9]/);
  const out = await (await fetch(`http://127.0.0.1:${trellisClient.ports.prometheus}/stats/prometheus`)).text();
  assert.match(out, /istio_tcp_connections_opened_total\{reporter="source",source_workload="frontend-1",[^}]*destination_workload="unknown",[^}]*destination_principal="spiffe:\/\/cluster\.local\/ns\/default\/sa\/envoy-backend"[^}]*\} [1-9]/, out.split('\n').filter((l) => l.startsWith('istio_tcp_connections_opened')).join('\n'));
  for (const e of [envoyClient, envoyBackend]) {
    const row = (await bed.cp.syncz()).find((p) => p.id === e.nodeId)!;
    assert.ok(Object.values(row.types).every((t) => t.state === 'SYNCED'), JSON.stringify(row.types));
  }
});
