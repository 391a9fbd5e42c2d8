/**
 * An application that speaks TLS itself behind a PERMISSIVE sidecar, as Istio handles it: a
 * client's own TLS (no Istio ALPN) passes through the sidecar to the application, while mesh
 * clients (Istio's ALPN) still meet the sidecar's mTLS, their TLS to the app carried inside it.
 * Under STRICT the application's own TLS from outside the mesh is refused. Checked with curl.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { freePort, stopAll, waitFor } from './support/mesh.ts';
import { startEgressBed, type EgressBed } from './support/egress-mesh.ts';
import { testCa, type TestCa } from './support/test-pki.ts';
import { findTool } from './support/tools.ts';
import { skipUnlessTools } from './support/skip.ts';

const skip = skipUnlessTools('curl');
const Host = 'backend-tls.default.svc.cluster.local';
let bed: EgressBed;
let ca: TestCa;
let app: https.Server;
const ports = { inbound: 0, outbound: 0 };

function curl(host: string, port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    execFile(findTool('curl')!, ['-s', '-m', '5', '-w', '\n%{http_code}', '--cacert', ca.certFile, '--resolve', `${host}:${port}:127.0.0.1`, `https://${host}:${port}${path}`], { timeout: 15_000 }, (_e, out) => {
      const i = out.lastIndexOf('\n');
      resolve({ status: Number(out.slice(i + 1)) || 0, body: out.slice(0, Math.max(0, i)) });
    });
  });
}

before(async () => {
  if (skip) return;
  ca = await testCa('App Root');
  const leaf = await ca.leaf('app', ['app.example.test', Host]);
  app = https.createServer({ cert: leaf.cert, key: leaf.key }, (req, res) => res.end(`app over its own TLS ${req.url}\n`));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  ports.inbound = await freePort();
  ports.outbound = await freePort();
  bed = await startEgressBed({
    'backend.yaml': `apiVersion: v1
kind: Service
metadata: {name: backend-tls, namespace: default}
spec:
  selector: {app: backend-tls}
  ports: [{name: https, port: 8443, targetPort: 8443}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: backend-tls-1, namespace: default}
spec:
  address: 127.0.0.1
  labels: {app: backend-tls, security.istio.io/tlsMode: istio}
  serviceAccount: backend
  ports: {https: ${ports.inbound}}
`,
  });
  await bed.proxy({ workload: 'backend-tls-1', labels: { app: 'backend-tls' }, serviceAccount: 'backend', metadata: { TRELLIS_INBOUND_ADDRESS: '127.0.0.1', TRELLIS_INBOUND_PORTS: { 8443: ports.inbound }, TRELLIS_APP_PORTS: { 8443: (app.address() as AddressInfo).port }, TRELLIS_OUTBOUND_PORTS: { 8443: await freePort() } } });
  await bed.proxy({ workload: 'client-1', labels: { app: 'client' }, serviceAccount: 'client', metadata: { TRELLIS_OUTBOUND_PORTS: { 8443: ports.outbound } } });
});

after(async () => {
  await stopAll();
  app?.closeAllConnections();
  app?.close();
});

test('PERMISSIVE: the application\'s own TLS passes through the sidecar; a mesh client\'s TLS rides inside mTLS; STRICT refuses the outside TLS', { skip }, async () => {
  const own = await waitFor('the app\'s own TLS through the PERMISSIVE sidecar', async () => {
    const r = await curl('app.example.test', ports.inbound, '/outside');
    return r.status === 200 ? r : undefined;
  }, 30_000, 200);
  assert.equal(own.body, 'app over its own TLS /outside\n');
  const mesh = await waitFor('the mesh client (auto-mTLS around the app\'s TLS)', async () => {
    const r = await curl(Host, ports.outbound, '/mesh');
    return r.status === 200 ? r : undefined;
  }, 30_000, 200);
  assert.equal(mesh.body, 'app over its own TLS /mesh\n');

  bed.cp.write('strict.yaml', 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: default}\nspec:\n  mtls: {mode: STRICT}\n');
  await waitFor('STRICT in force', async () => (await curl('app.example.test', ports.inbound, '/outside')).status === 0, 30_000, 200);
  assert.equal((await curl(Host, ports.outbound, '/mesh-strict')).status, 200, 'the mesh client still gets through');
});
