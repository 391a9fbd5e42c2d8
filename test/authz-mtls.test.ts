/**
 * Authorization on the verified peer identity (mTLS from the mesh CA): AuthorizationPolicies on
 * `principals` allow the frontend sidecar (auto-mTLS, sa/frontend) and an openssl client holding a
 * mesh certificate for sa/curl (offering Istio's ALPN, as a mesh client does: the PERMISSIVE port
 * hands other TLS to the app), deny sa/curl on /admin, and refuse a mesh certificate for another
 * service account and a plaintext curl (no principal). Every 403 names the policy that decided.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { findTool } from './support/tools.ts';
import { skipUnlessTools } from './support/skip.ts';
import { stopAll, waitFor } from './support/mesh.ts';
import { clientCertificate, startMtlsMesh, type MtlsMesh } from './support/mtls-mesh.ts';

const skip = skipUnlessTools('openssl', 'curl');
let mesh: MtlsMesh;

const policies = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-callers, namespace: default }
spec:
  selector: { matchLabels: { app: backend } }
  action: ALLOW
  rules:
  - from: [{ source: { principals: [cluster.local/ns/default/sa/frontend, cluster.local/ns/default/sa/curl] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-curl-admin, namespace: default }
spec:
  selector: { matchLabels: { app: backend } }
  action: DENY
  rules:
  - from: [{ source: { principals: [cluster.local/ns/default/sa/curl] } }]
    to: [{ operation: { paths: ["/admin", "/admin/*"] } }]
`;

before(async () => {
  if (skip) return;
  mesh = await startMtlsMesh({ files: { 'authz.yaml': policies } });
});
after(async () => {
  await mesh?.close();
  await stopAll();
});

/** curl's status and body (status 0 when the connection or handshake failed). */
function curl(url: string, extra: string[] = []): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    execFile(findTool('curl')!, ['-s', '-m', '5', '-w', '\n%{http_code}', ...extra, url], { timeout: 20_000 }, (_err, stdout) => {
      const i = stdout.lastIndexOf('\n');
      resolve({ status: Number(stdout.slice(i + 1)) || 0, body: stdout.slice(0, Math.max(0, i)) });
    });
  });
}

/** A GET over mTLS with `cert` and Istio's ALPN (openssl s_client); status 0 when the handshake failed. */
function viaMtls(path: string, cert: { cert: string; key: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const child = execFile(findTool('openssl')!, ['s_client', '-connect', `127.0.0.1:${mesh.inboundPort}`, '-alpn', 'istio-http/1.1', '-quiet', '-cert', cert.cert, '-key', cert.key], { timeout: 20_000 }, (_err, stdout) => {
      const m = /HTTP\/1\.1 (\d{3})[^]*?\r\n\r\n([^]*)$/.exec(stdout);
      resolve(m === null ? { status: 0, body: stdout } : { status: Number(m[1]), body: m[2] });
    });
    child.stdin?.end(`GET ${path} HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n`);
  });
}

test('principals from the verified mTLS peer decide, and the 403 names the policy', { skip, timeout: 120_000 }, async () => {
  const viaMesh = () => curl(`http://127.0.0.1:${mesh.outboundPort}/hello`, ['-H', 'host: backend.default.svc.cluster.local:8080']);
  await waitFor('the frontend (sa/frontend, auto-mTLS) is allowed', async () => (await viaMesh()).status === 200 || undefined, 30_000, 200);
  const curlCert = await clientCertificate(mesh.caDir, 'spiffe://cluster.local/ns/default/sa/curl', mesh.dir);
  const otherCert = await clientCertificate(mesh.caDir, 'spiffe://cluster.local/ns/default/sa/other', mesh.dir);
  assert.equal((await viaMtls('/data', curlCert)).status, 200, 'sa/curl is an allowed caller');
  const admin = await viaMtls('/admin/users', curlCert);
  assert.equal(admin.status, 403);
  assert.equal(admin.body, 'RBAC: access denied by AuthorizationPolicy default/deny-curl-admin');
  const other = await viaMtls('/data', otherCert);
  assert.equal(other.status, 403, 'a mesh certificate for another service account');
  assert.equal(other.body, 'RBAC: access denied by AuthorizationPolicy default/allow-callers (no ALLOW rule matched)');
  const plain = await curl(`http://127.0.0.1:${mesh.inboundPort}/data`);
  assert.equal(plain.status, 403, 'plaintext (PERMISSIVE) has no principal');
});
