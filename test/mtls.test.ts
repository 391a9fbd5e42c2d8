/**
 * Mesh mTLS end to end with real tools: the CA issues each sidecar its SPIFFE certificate from a
 * CSR, openssl s_client sees it on the inbound port with a chain to the root, a mesh client reaches
 * the backend over auto-mTLS, and curl with / without / with a wrong client certificate gets what
 * PERMISSIVE and STRICT promise.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { findTool } from './support/tools.ts';
import { skipUnlessTools } from './support/skip.ts';
import { stopAll, waitFor } from './support/mesh.ts';
import { clientCertificate, startMtlsMesh, type MtlsMesh } from './support/mtls-mesh.ts';

const skip = skipUnlessTools('openssl', 'curl');
let mesh: MtlsMesh;

before(async () => {
  if (skip) return;
  mesh = await startMtlsMesh();
});
after(async () => {
  await mesh?.close();
  await stopAll();
});

function run(tool: string, args: string[], input = ''): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(findTool(tool)!, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1, out: `${stdout}${stderr}` });
    });
    child.stdin?.end(input);
  });
}

/** curl's HTTP status (0 when the connection or handshake failed). */
async function curlStatus(url: string, extra: string[] = []): Promise<number> {
  const r = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '5', ...extra, url]);
  return Number(r.out.trim().slice(-3)) || 0;
}

const viaMesh = () => curlStatus(`http://127.0.0.1:${mesh.outboundPort}/hello`, ['-H', 'host: backend.default.svc.cluster.local:8080']);

test('openssl s_client: the inbound port shows the workload certificate with its SPIFFE SAN and a chain to the root', { skip }, async () => {
  // Offering Istio's ALPN, as a mesh client does: on a PERMISSIVE port other TLS goes to the app.
  const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${mesh.inboundPort}`, '-alpn', 'istio', '-showcerts', '-CAfile', join(mesh.caDir, 'root-cert.pem'), '-verify_return_error', '-brief'], 'Q\n');
  const full = await run('openssl', ['s_client', '-connect', `127.0.0.1:${mesh.inboundPort}`, '-alpn', 'istio', '-CAfile', join(mesh.caDir, 'root-cert.pem')], '');
  assert.match(full.out, /Verify return code: 0 \(ok\)/, full.out);
  // The certificate itself, through x509: SAN URI and the issuer the root.
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(full.out)?.[0] ?? '';
  const x = await run('openssl', ['x509', '-noout', '-ext', 'subjectAltName', '-issuer', '-enddate'], pem);
  assert.match(x.out, /URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/backend/, x.out);
  assert.match(x.out, /issuer=O ?= ?cluster\.local/, x.out);
  assert.ok(r.out.length > 0);
});

test('auto-mTLS: the mesh client reaches the backend over ISTIO_MUTUAL; PERMISSIVE also takes plaintext; STRICT takes only mesh certificates', { skip }, async () => {
  assert.equal(await waitFor('mesh request', async () => (await viaMesh()) === 200 || undefined, 30_000, 200), true);
  // PERMISSIVE (default): plaintext straight to the inbound port works too.
  assert.equal(await curlStatus(`http://127.0.0.1:${mesh.inboundPort}/plain`), 200);
  const good = await clientCertificate(mesh.caDir, 'spiffe://cluster.local/ns/default/sa/curl', mesh.dir);
  const https = `https://127.0.0.1:${mesh.inboundPort}/tls`;
  // PERMISSIVE, as Istio: TLS offering Istio's ALPN meets the mTLS chain (a mesh certificate is
  // required there); other TLS is passed to the app, here a plaintext HTTP app, so it fails there.
  const viaMtls = (cert: string[]) => run('openssl', ['s_client', '-connect', `127.0.0.1:${mesh.inboundPort}`, '-alpn', 'istio-http/1.1', '-quiet', ...cert], 'GET /tls HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n');
  assert.match((await viaMtls(['-cert', good.cert, '-key', good.key])).out, /HTTP\/1\.1 200/, 'PERMISSIVE: mTLS with a mesh certificate and Istio\'s ALPN');
  assert.doesNotMatch((await viaMtls([])).out, /HTTP\/1\.1 200/, 'PERMISSIVE: Istio\'s ALPN without a client certificate is refused');
  const hitsBefore = mesh.appHits();
  assert.equal(await curlStatus(https, ['-k', '--cert', good.cert, '--key', good.key]), 0, 'PERMISSIVE: TLS without Istio\'s ALPN goes to the (plaintext) app, not the mTLS chain');
  assert.equal(mesh.appHits(), hitsBefore);

  mesh.cp.write('strict.yaml', 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: default}\nspec:\n  mtls: {mode: STRICT}\n');
  await waitFor('STRICT in force', async () => (await curlStatus(`http://127.0.0.1:${mesh.inboundPort}/plain`)) === 0 || undefined, 30_000, 200);
  // The client sidecar's pooled connection to the old listener may be closed by its drain as the first request uses it.
  assert.equal(await waitFor('mesh request under STRICT', async () => (await viaMesh()) === 200 || undefined, 10_000, 100), true, 'STRICT: the mesh client still gets through');
  assert.equal(await curlStatus(https, ['-k', '--cert', good.cert, '--key', good.key]), 200, 'STRICT: a mesh certificate is accepted');
  assert.equal(await curlStatus(https, ['-k']), 0, 'STRICT: no client certificate');
  const foreignRoot = await clientCertificate(mesh.caDir, 'spiffe://cluster.local/ns/default/sa/curl', mesh.dir, true);
  assert.equal(await curlStatus(https, ['-k', '--cert', foreignRoot.cert, '--key', foreignRoot.key]), 0, 'STRICT: a certificate from another root');
  const foreignDomain = await clientCertificate(mesh.caDir, 'spiffe://evil.example/ns/default/sa/curl', mesh.dir);
  assert.equal(await curlStatus(https, ['-k', '--cert', foreignDomain.cert, '--key', foreignDomain.key]), 0, 'STRICT: a certificate of another trust domain');
  mesh.cp.remove('strict.yaml');
  await waitFor('back to PERMISSIVE', async () => (await curlStatus(`http://127.0.0.1:${mesh.inboundPort}/plain`)) === 200 || undefined, 30_000, 200);
});
