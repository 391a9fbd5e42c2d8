/**
 * Certificates that change under traffic. A plug-in CA (an existing PKI's intermediate) issues the
 * mesh's certificates. Then, with a 60 s workload TTL, 130 s of continuous mesh traffic (upstream
 * connections recycled every 5 requests, so handshakes keep happening with whatever certificate is
 * current) while every sidecar renews about every 30 s, and the root itself is rotated midway (new
 * root distributed, then signing, then the old root dropped once every workload renewed):
 * zero failed requests and zero failed handshakes. Bounded: 4 workers, ~25 ms pacing, 130 s.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopAll, waitFor } from './support/mesh.ts';
import { startMtlsMesh, type MtlsMesh } from './support/mtls-mesh.ts';
import { createSelfSignedCa, loadCaFiles } from '../src/control/ca/ca-files.ts';
import { issueCertificate } from '../src/pki/certificate.ts';
import { generateKey } from '../src/pki/keys.ts';

after(() => stopAll());

const headers = { host: 'backend.default.svc.cluster.local:8080' };
const recycle = { 'dr.yaml': 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: backend, namespace: default}\nspec:\n  host: backend.default.svc.cluster.local\n  trafficPolicy:\n    connectionPool: {http: {maxRequestsPerConnection: 5}}\n' };

function get(port: number, agent: http.Agent): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/r', headers, agent, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve(res.statusCode === 200 ? undefined : `HTTP ${res.statusCode} ${body.slice(0, 160)}`));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve(e.message));
  });
}

async function stat(admin: number, name: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${admin}/stats?format=json&filter=${encodeURIComponent(name)}`);
  const j = (await res.json()) as { stats: { name: string; value: number }[] };
  return j.stats.filter((s) => s.name.includes(name)).reduce((a, s) => a + s.value, 0);
}

async function serialOf(mesh: MtlsMesh): Promise<string> {
  return String(await stat(mesh.backend.ports.admin, 'workload_cert.expiry_timestamp_seconds'));
}

test('plug-in CA: an existing PKI issues the mesh certificates (leaf, its intermediate, the corporate root)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-plugin-ca-'));
  const now = Date.now();
  const root = await generateKey('ECDSA_P256');
  const rootPem = issueCertificate({ organization: 'Example Corp', commonName: 'Example Corp Root', isCa: true, notBefore: new Date(now - 3_600_000), notAfter: new Date(now + 86_400_000 * 30), publicKey: root.publicKey }, { certificate: undefined, privateKey: root.privateKey });
  const mid = await generateKey('ECDSA_P256');
  const midPem = issueCertificate({ organization: 'Example Corp', commonName: 'mesh intermediate', isCa: true, notBefore: new Date(now - 3_600_000), notAfter: new Date(now + 86_400_000 * 7), publicKey: mid.publicKey }, { certificate: new X509Certificate(rootPem), privateKey: root.privateKey });
  writeFileSync(join(dir, 'ca-cert.pem'), midPem);
  writeFileSync(join(dir, 'ca-key.pem'), mid.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  writeFileSync(join(dir, 'root-cert.pem'), rootPem);
  writeFileSync(join(dir, 'cert-chain.pem'), midPem + rootPem);
  const mesh = await startMtlsMesh({ pluginCaDir: dir, files: { 'strict.yaml': 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n' } });
  after(() => mesh.close());
  const agent = new http.Agent({ keepAlive: false });
  assert.equal(await waitFor('request over the plug-in CA', async () => (await get(mesh.outboundPort, agent)) === undefined || undefined, 30_000, 200), true);
  const ca = (await (await fetch(`http://127.0.0.1:${mesh.cp.debugPort}/debug/ca`)).json()) as { signingRootSubject: string; issued: { spiffeId: string }[] };
  assert.match(ca.signingRootSubject, /Example Corp Root/);
  assert.deepEqual(ca.issued.map((i) => i.spiffeId).sort(), ['spiffe://cluster.local/ns/default/sa/backend', 'spiffe://cluster.local/ns/default/sa/frontend']);
});

test('60 s certificates renewed under 130 s of traffic, with a root rotation midway: zero failed requests and handshakes', async () => {
  const mesh = await startMtlsMesh({ certTtl: '60s', files: { ...recycle, 'strict.yaml': 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n' } });
  after(() => mesh.close());
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  await waitFor('mesh path up', async () => (await get(mesh.outboundPort, agent)) === undefined || undefined, 30_000, 200);
  const oldRoot = loadCaFiles(mesh.caDir).root;
  const failures: string[] = [];
  let ok = 0;
  let stop = false;
  const deadline = Date.now() + 130_000;
  const worker = async () => {
    while (!stop && Date.now() < deadline && ok + failures.length < 40_000) {
      const err = await get(mesh.outboundPort, agent);
      if (err === undefined) ok++;
      else failures.push(err);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const load = Promise.all([worker(), worker(), worker(), worker()]);
  const serials = new Set<string>([await serialOf(mesh)]);
  const sampler = setInterval(() => void serialOf(mesh).then((s) => serials.add(s), () => {}), 2_000);
  // Midway: a new root. The CA distributes it, signs with it, and drops the old one once everyone renewed.
  await new Promise((r) => setTimeout(r, 40_000));
  await createSelfSignedCa(mesh.caDir, { trustDomain: 'cluster.local' });
  const newRoot = loadCaFiles(mesh.caDir).root;
  const caState = async () => (await (await fetch(`http://127.0.0.1:${mesh.cp.debugPort}/debug/ca`)).json()) as { phase: string; bundle: { fingerprint: string }[] };
  const fp = (pem: string) => new X509Certificate(pem).fingerprint256;
  await waitFor('new root signing', async () => { const s = await caState(); return (s.phase === 'serving' && s.bundle[0]?.fingerprint === fp(newRoot)) || undefined; }, 60_000, 500);
  await waitFor('old root dropped after every workload renewed', async () => { const s = await caState(); return !s.bundle.some((b) => b.fingerprint === fp(oldRoot)) || undefined; }, 80_000, 500);
  await load;
  stop = true;
  clearInterval(sampler);
  agent.destroy();
  const handshakeErrors = (await stat(mesh.backend.ports.admin, 'ssl_handshake_error')) + (await stat(mesh.frontend.ports.admin, 'ssl_handshake_error'));
  const renewals = await stat(mesh.backend.ports.admin, 'workload_cert.renewals');
  const upstreamConnections = await stat(mesh.frontend.ports.admin, 'upstream_cx_total');
  console.log(`rotation under load: ${ok} requests ok, ${failures.length} failed; backend certificates: ${renewals} issued (${serials.size} seen); frontend upstream connections (handshakes): ${upstreamConnections}; handshake errors: ${handshakeErrors}`);
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} failed requests`);
  assert.equal(handshakeErrors, 0);
  assert.ok(renewals >= 4, `expected the 60 s certificate renewed several times in 130 s (got ${renewals})`);
  assert.ok(ok > 1000, `traffic flowed (${ok})`);
});
