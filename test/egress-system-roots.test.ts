/**
 * TLS origination without a CA in the DestinationRule (Istio's egress TLS-origination sample):
 * `tls: {mode: SIMPLE}` and nothing else. The server must then be verified against the system
 * roots (here a bundle holding only a test root, handed to the control plane as the "system"
 * bundle with --system-ca-bundle), and, as the rule sets no `sni` / `subjectAltNames`, the request's
 * host is the SNI and must be a DNS SAN of the server certificate (Envoy's auto_sni /
 * auto_san_validation). From YAML to real processes: a plain-HTTP client through a Trellis sidecar
 * and through a stock Envoy fed the same config, to local HTTPS servers: the right certificate
 * gives 200, a certificate for another name 503, one from an untrusted root 503, and
 * `insecureSkipVerify: true` 200. Both data planes decide the same; Trellis' 503 body names the
 * TLS reason (Envoy's "transport failure reason"), Envoy's counters name theirs.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startControlPlane, startProxy, stopAll, waitFor, type ControlPlaneProc, type ProxyProc } from './support/mesh.ts';
import { Cleanups, getJson, startEnvoy, tempDir, type EnvoyProcess } from './support/processes.ts';
import { httpGet, type HttpResult } from './support/http-client.ts';
import { serviceEntryYaml, startExternalServer, type ExternalServer } from './support/egress-mesh.ts';
import { testCa } from './support/test-pki.ts';
import { skipUnlessTools } from './support/skip.ts';

const cleanups = new Cleanups();
let cp: ControlPlaneProc;
let sidecar: ProxyProc;
let envoy: EnvoyProcess | undefined;
const servers: Record<string, ExternalServer> = {};
const ports = { trellis: 0, envoy: 0 };

/** host -> the server behind it, and how its DestinationRule originates TLS. */
const hosts = {
  'right.external.test': { server: 'right', tls: '{mode: SIMPLE}' },
  'wrong.external.test': { server: 'wrong', tls: '{mode: SIMPLE}' },
  'untrusted.external.test': { server: 'untrusted', tls: '{mode: SIMPLE}' },
  'insecure.external.test': { server: 'untrusted', tls: '{mode: SIMPLE, insecureSkipVerify: true}' },
} as const;

/** Istio's sample shape: the app calls port 80, the port-level rule originates TLS to 443. */
function meshYaml(): string {
  return Object.entries(hosts).map(([host, h]) => serviceEntryYaml({
    name: host.split('.')[0], host, address: '127.0.0.1',
    ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: 443 }],
    endpointPorts: { http: servers[h.server].port },
  }) + `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${host.split('.')[0]}, namespace: default}
spec:
  host: ${host}
  trafficPolicy:
    portLevelSettings:
    - port: {number: 80}
      tls: ${h.tls}
`).join('---\n');
}

before(async () => {
  const ca = await testCa('Pretend Public Root');
  const rogue = await testCa('Rogue Root');
  servers.right = await startExternalServer('right', await ca.leaf('right', ['right.external.test']));
  servers.wrong = await startExternalServer('wrong', await ca.leaf('wrong', ['other.external.test']));
  servers.untrusted = await startExternalServer('untrusted', await rogue.leaf('untrusted', ['untrusted.external.test']));
  const bundle = join(ca.dir, 'system-bundle.pem');
  writeFileSync(bundle, ca.cert);
  cp = await startControlPlane({ 'external.yaml': meshYaml() }, ['--system-ca-bundle', bundle]);
  ports.trellis = await freePort();
  sidecar = await startProxy(cp, { workload: 'client-1', labels: { app: 'client' }, metadata: { TRELLIS_OUTBOUND_PORTS: { 80: ports.trellis } } });
  if (skipUnlessTools('envoy') === false) {
    ports.envoy = await freePort();
    envoy = await startEnvoy(cleanups, {
      xdsPort: cp.xdsPort,
      nodeId: 'sidecar~127.0.0.1~envoy-client-1.default~default.svc.cluster.local',
      metadata: { NAMESPACE: 'default', LABELS: { app: 'envoy-client' }, TRELLIS_OUTBOUND_PORTS: { 80: ports.envoy } },
      dir: tempDir(cleanups, 'trellis-envoy-roots-'),
    });
  }
});

after(async () => {
  await cleanups.run();
  await stopAll();
  await Promise.all(Object.values(servers).map((s) => s.close()));
});

async function call(port: number, host: string, path: string): Promise<HttpResult> {
  // The first request waits for the listener and cluster to arrive; a 503 may then be the verdict itself.
  return waitFor(`${host}${path} via ${port}`, async () => {
    const r = await httpGet(port, path, host).catch(() => undefined);
    return r !== undefined && r.status !== 404 && !(r.status === 503 && /no healthy upstream|not found/i.test(r.body)) ? r : undefined;
  }, 30_000, 200);
}

/** The four verdicts on one data plane's outbound port. */
async function verdicts(port: number, tag: string, failure: RegExp): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [host, h] of Object.entries(hosts)) {
    const before = servers[h.server].seen.length;
    const r = await call(port, host, `/${tag}`);
    out[host] = r.status;
    if (r.status === 200) assert.equal(r.body, `${h.server} /${tag}\n`);
    else {
      assert.match(r.body, failure, `${tag} ${host}: ${r.body}`);
      assert.equal(servers[h.server].seen.length, before, `${tag} ${host}: the server never saw a request it could not be trusted with`);
    }
  }
  return out;
}

const expected = { 'right.external.test': 200, 'wrong.external.test': 503, 'untrusted.external.test': 503, 'insecure.external.test': 200 };

test('Trellis sidecar: system roots verify the server, the request host must be in its certificate; insecureSkipVerify skips', async () => {
  servers.right.seen.length = 0;
  // Envoy's local reply shape, with the TLS reason after the reset reason.
  assert.deepEqual(await verdicts(ports.trellis, 'trellis', /^upstream connect error .* transport failure reason: TLS_error: .*(certificate|auto_san_validation)/), expected);
  // SNI from the request host (auto_sni), for the verified and the skipped host alike.
  assert.deepEqual(servers.right.seen.map((s) => [s.tls, s.sni, s.host]), [[true, 'right.external.test', 'right.external.test']]);
  assert.equal(servers.untrusted.seen.at(-1)?.sni, 'insecure.external.test');
  const stats = await (await fetch(`http://127.0.0.1:${sidecar.ports.admin}/stats`)).text();
  for (const host of ['wrong.external.test', 'untrusted.external.test']) {
    assert.match(stats, new RegExp(`cluster\\.outbound\\|80\\|\\|${host.replaceAll('.', '\\.')}\\.upstream_cx_connect_fail: [1-9]`), `UF counted for ${host}`);
  }
});

test('stock Envoy 1.40 fed the same config accepts it and decides the same', { skip: skipUnlessTools('envoy') }, async () => {
  const e = envoy!;
  await waitFor('Envoy synced without NACK', async () => {
    const me = (await getJson<{ id: string; types: Record<string, { state: string; nackError?: string }> }[]>(`http://127.0.0.1:${cp.debugPort}/debug/syncz`)).find((p) => p.id === e.nodeId);
    for (const [t, s] of Object.entries(me?.types ?? {})) if (s.state === 'NACKED') throw new Error(`${t} NACKED: ${s.nackError}`);
    return me !== undefined && Object.values(me.types).some((s) => s.state === 'SYNCED');
  }, 60_000, 200);
  servers.right.seen.length = 0;
  // (After Istio's default connect-failure retries Envoy's body names the last reset reason only.)
  assert.deepEqual(await verdicts(ports.envoy, 'envoy', /^upstream connect error .*connection failure/), expected);
  assert.deepEqual(servers.right.seen.map((s) => [s.tls, s.sni, s.host]), [[true, 'right.external.test', 'right.external.test']]);
  const stats = await (await fetch(`${e.admin}/stats`)).text();
  // Envoy's own counters name the reasons: the SAN check (auto_san_validation) and the chain.
  assert.match(stats, /cluster\.outbound\|80\|\|wrong\.external\.test\.ssl\.fail_verify_san: [1-9]/);
  assert.match(stats, /cluster\.outbound\|80\|\|untrusted\.external\.test\.ssl\.fail_verify_error: [1-9]/);
});
