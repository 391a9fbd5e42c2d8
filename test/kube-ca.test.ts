/**
 * Must-show, the mesh CA on a real API server, the Kubernetes way (as istiod's): the control plane
 * runs as the chart's ServiceAccount (its RBAC is all it has), keeps its root in the Secret
 * `istio-ca-secret` and publishes it to every namespace as `istio-ca-root-cert`. A pod created
 * in an injected namespace gets the projected `istio-ca` token volume, the root ConfigMap and the
 * CA flags; its proxy, run from the injected arguments with a real token (the TokenRequest API,
 * bound to the pod, as the kubelet asks for it) and the published root, gets a certificate for
 * exactly `spiffe://cluster.local/ns/<ns>/sa/<its service account>` over the CA's TLS port. A
 * token of another service account, for another audience, expired, bound to a deleted pod, not a
 * token at all, or sent over the plaintext xDS port is refused with a message saying which; a
 * proxy holding a wrong-audience token gets its certificate once the file holds a good one. Two
 * injected proxies talk mTLS under a STRICT PeerAuthentication applied through the API. A plug-in
 * CA in the `cacerts` Secret: a bad one is refused naming the Secret key while the old root keeps
 * signing, a good one is rolled in (distributed, then signing) and the sidecars renew under it
 * without breaking mTLS. With the API server down a token that was never reviewed is refused
 * (UNAVAILABLE) while a recently reviewed one still works.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { Cleanups, freePort, nodeBin, repoRoot, tempDir, waitFor } from './support/processes.ts';
import { httpGet } from './support/http-client.ts';
import { applyObject, ensureNamespace, installCrds, istioCrds, serviceAccountKubeconfig, skipUnlessKube, startKubeCluster, startKubeControl } from './support/kube-apiserver.ts';
import type { KubeCluster, KubeControlProcess } from './support/kube-apiserver.ts';
import { injectedProxy, markRunning, registerWorkloadEntry, runInjectedProxy } from './support/kube-workloads.ts';
import type { InjectedPod } from './support/kube-workloads.ts';
import { KubeApiError } from '../src/config/store/kubernetes-rest.ts';
import { controlPlaneManifest, DefaultManifestOptions } from '../src/control/kube/manifest.ts';
import { certificateServiceDefinition, type CertificateRequestMsg, type CertificateResponseMsg } from '../src/xds/ca-wire.ts';
import { createCsr } from '../src/pki/csr-create.ts';
import { generateKey } from '../src/pki/keys.ts';
import { issueCertificate } from '../src/pki/certificate.ts';

const cleanups = new Cleanups();
after(() => cleanups.run());
const skip = skipUnlessKube();
const Backend = 'backend.shop.svc.cluster.local';
const spiffe = (sa: string) => `spiffe://cluster.local/ns/shop/sa/${sa}`;

function trellis(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(nodeBin, [join(repoRoot, 'bin', 'trellis.js'), ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

describe('mesh CA on Kubernetes: TokenReview, istio-ca-secret, istio-ca-root-cert, injected proxies with mTLS', { skip, timeout: 600_000 }, () => {
  let cluster: KubeCluster;
  let control: KubeControlProcess;
  let rootPem: string;
  const files = tempDir(cleanups, 'trellis-kca-');
  const rootFile = join(files, 'root-cert.pem');
  const appHits: string[] = [];
  let appPort = 0;
  /** The backend sidecar's inbound port, the frontend's outbound port for backend:8080, and their node ids (set by the mTLS test). */
  const mesh = { inbound: 0, outbound: 0, backendNode: '', frontendNode: '' };
  const viaMesh = async () => httpGet(mesh.outbound, '/mesh', Backend, {}, 5000).then((r) => r.status, () => 0);
  const debugCa = async () => (await fetch(`${control.url}/debug/ca`)).json() as Promise<{ dir: string; signingRootSubject: string; lastError?: string; bundle: { subject: string }[]; issued: { spiffeId: string; nodeId: string; root: string }[] }>;
  const rootConfigMap = async (ns: string) => (await cluster.rest.request<{ data?: Record<string, string> }>('GET', `/api/v1/namespaces/${ns}/configmaps/istio-ca-root-cert`)).data?.['root-cert.pem'] ?? '';

  /** A TokenRequest for `sa` in shop, bound to `pod` (as the kubelet asks for a projected token). */
  const tokenFor = async (sa: string, o: { pod?: InjectedPod; audiences?: string[]; seconds?: number } = {}): Promise<string> => {
    const res = await cluster.rest.request<{ status: { token: string } }>('POST', `/api/v1/namespaces/shop/serviceaccounts/${sa}/token`, {
      body: {
        apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
        spec: {
          ...(o.audiences !== undefined ? { audiences: o.audiences } : {}), expirationSeconds: o.seconds ?? 600,
          ...(o.pod !== undefined ? { boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: o.pod.metadata!.name, uid: o.pod.metadata!.uid } } : {}),
        },
      },
    });
    return res.status.token;
  };

  /** One CreateCertificate call over the CA's TLS port, verified with the published root (or, `plaintext`, over the xDS port). */
  const createCertificate = async (token: string, id: string, plaintext = false): Promise<CertificateResponseMsg> => {
    const Client = grpc.makeGenericClientConstructor(certificateServiceDefinition, 'IstioCertificateService');
    const client = plaintext
      ? new Client(`127.0.0.1:${control.xdsPort}`, grpc.credentials.createInsecure())
      : new Client(`127.0.0.1:${control.caTlsPort}`, grpc.credentials.createSsl(Buffer.from(rootPem)));
    try {
      const key = await generateKey('ECDSA_P256');
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${token}`);
      const req: CertificateRequestMsg = { csr: createCsr(key.privateKey, [id]), validityDuration: 0, metadata: { NODE_ID: 'test' } };
      return await new Promise<CertificateResponseMsg>((resolve, reject) => {
        (client as unknown as { CreateCertificate: (r: CertificateRequestMsg, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, v?: CertificateResponseMsg) => void) => void })
          .CreateCertificate(req, md, { deadline: Date.now() + 20_000 }, (e, v) => (e ? reject(e) : resolve(v!)));
      });
    } finally {
      client.close();
    }
  };
  const refused = async (token: string, id: string, code: grpc.status, details: RegExp, what: string, plaintext = false): Promise<string> => {
    const err = await createCertificate(token, id, plaintext).then(() => undefined, (e: unknown) => e as grpc.ServiceError);
    assert.ok(err !== undefined, `${what}: refused`);
    assert.equal(err.code, code, `${what}: ${err.details}`);
    assert.match(err.details, details, what);
    return err.details;
  };

  const createPod = async (name: string, sa: string, labels: Record<string, string>): Promise<InjectedPod> => {
    const pod = await cluster.rest.request<InjectedPod>('POST', '/api/v1/namespaces/shop/pods', {
      body: { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'shop', labels }, spec: { serviceAccountName: sa, containers: [{ name: 'app', image: 'app:1', ports: [{ name: 'http', containerPort: 8080 }] }] } },
    });
    await markRunning(cluster.rest, 'shop', name);
    return pod;
  };
  /** Writes a token where the kubelet would project it for this pod; returns that file. */
  const tokenFile = (pod: string, token: string): string => {
    const f = join(files, `${pod}.token`);
    writeFileSync(f, token, { mode: 0o600 });
    return f;
  };

  before(async () => {
    cluster = await startKubeCluster(cleanups);
    await installCrds(cluster.rest, istioCrds());
    await ensureNamespace(cluster.rest, 'trellis-system');
    await ensureNamespace(cluster.rest, 'shop', { 'istio-injection': 'enabled' });
    // The chart's ServiceAccount and RBAC, exactly as `trellis manifest` prints them.
    const rbacKinds = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);
    for (const o of controlPlaneManifest(DefaultManifestOptions)) if (rbacKinds.has(o.kind ?? '')) await applyObject(cluster.rest, o);
    const kubeconfigPath = await serviceAccountKubeconfig(cleanups, cluster, 'trellis-system', 'trellis');
    // No controller-manager: the workloads' ServiceAccounts are created here.
    for (const sa of ['backend', 'frontend']) await applyObject(cluster.rest, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: 'shop' } });

    const app = http.createServer((req, res) => {
      appHits.push(req.url ?? '');
      req.resume();
      res.end(`backend ok ${req.url}\n`);
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    cleanups.add(() => new Promise<void>((r) => {
      app.closeAllConnections();
      app.close(() => r());
    }));
    appPort = (app.address() as AddressInfo).port;

    const [xds, caTls] = [await freePort(), await freePort()];
    control = await startKubeControl(cleanups, { kubeconfigPath }, [
      '--xds-port', String(xds), '--injection-xds', `127.0.0.1:${xds}`,
      '--ca-tls-port', String(caTls), '--injection-ca-address', `127.0.0.1:${caTls}`,
      '--webhook-port', '0', '--webhook-url', 'https://127.0.0.1:0', '--no-status', '--log-level', 'info',
    ]);
    assert.equal(control.caTlsPort, caTls);
    await waitFor('injection webhook active', async () => {
      const p = await cluster.rest.request<InjectedPod>('POST', '/api/v1/namespaces/shop/pods', {
        body: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'probe', namespace: 'shop' }, spec: { containers: [{ name: 'app', image: 'app:1' }] } }, query: { dryRun: 'All' },
      });
      return injectedProxy(p) !== undefined;
    }, 30_000, 200);
  });

  test('the root is kept in istio-ca-secret and published to every namespace as istio-ca-root-cert, and kept there', async () => {
    const secret = await cluster.rest.request<{ type: string; data: Record<string, string> }>('GET', '/api/v1/namespaces/trellis-system/secrets/istio-ca-secret');
    assert.equal(secret.type, 'istio.io/ca-root');
    const caCert = Buffer.from(secret.data['ca-cert.pem'], 'base64').toString();
    assert.ok(new X509Certificate(caCert).ca, 'ca-cert.pem is a CA');
    assert.match(Buffer.from(secret.data['ca-key.pem'], 'base64').toString(), /PRIVATE KEY/);
    const cm = (ns: string) => cluster.rest.request<{ data?: Record<string, string>; metadata: { labels?: Record<string, string> } }>('GET', `/api/v1/namespaces/${ns}/configmaps/istio-ca-root-cert`);
    for (const ns of ['shop', 'default', 'trellis-system', 'kube-system']) {
      const got = await waitFor(`istio-ca-root-cert in ${ns}`, () => cm(ns).catch(() => undefined), 30_000, 200);
      assert.equal(got.data?.['root-cert.pem']?.trim(), caCert.trim(), `${ns}: the CA's root`);
      assert.equal(got.metadata.labels?.['istio.io/config'], 'true');
    }
    for (const ns of ['kube-public', 'kube-node-lease']) {
      assert.equal(await cm(ns).then(() => 200, (e: unknown) => (e instanceof KubeApiError ? e.status : e)), 404, `none in ${ns}`);
    }
    rootPem = (await cm('shop')).data!['root-cert.pem'];
    writeFileSync(rootFile, rootPem);
    // Deleted or edited, it comes back.
    await cluster.rest.request('DELETE', '/api/v1/namespaces/shop/configmaps/istio-ca-root-cert');
    await waitFor('recreated after delete', async () => (await cm('shop').catch(() => undefined))?.data?.['root-cert.pem'] === rootPem || undefined, 30_000, 200);
    await applyObject(cluster.rest, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio-ca-root-cert', namespace: 'default' }, data: { 'root-cert.pem': 'tampered' } });
    await waitFor('restored after edit', async () => (await cm('default')).data?.['root-cert.pem'] === rootPem || undefined, 30_000, 200);
    // A new namespace gets it too.
    await ensureNamespace(cluster.rest, 'late');
    await waitFor('istio-ca-root-cert in a new namespace', async () => (await cm('late').catch(() => undefined))?.data?.['root-cert.pem'] === rootPem || undefined, 30_000, 200);
  });

  test('a pod gets the projected istio-ca token, the root ConfigMap, the CA address and the trust domain', async () => {
    const pod = await cluster.rest.request<InjectedPod>('POST', '/api/v1/namespaces/shop/pods', {
      body: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'shape', namespace: 'shop' }, spec: { serviceAccountName: 'backend', containers: [{ name: 'app', image: 'app:1' }] } }, query: { dryRun: 'All' },
    });
    const vols = Object.fromEntries((pod.spec.volumes ?? []).map((v) => [v.name as string, v]));
    assert.deepEqual(vols['istio-token'], { name: 'istio-token', projected: { defaultMode: 420, sources: [{ serviceAccountToken: { audience: 'istio-ca', expirationSeconds: 43200, path: 'istio-token' } }] } });
    assert.deepEqual(vols['istiod-ca-cert'], { name: 'istiod-ca-cert', configMap: { name: 'istio-ca-root-cert', defaultMode: 420 } });
    const proxy = injectedProxy(pod)!;
    assert.deepEqual(proxy.volumeMounts?.map((m) => `${m.name} ${m.mountPath} ${m.readOnly}`), ['istio-token /var/run/secrets/tokens true', 'istiod-ca-cert /var/run/secrets/istio true']);
    const flag = (f: string) => proxy.args![proxy.args!.indexOf(f) + 1];
    assert.equal(flag('--ca-address'), `127.0.0.1:${control.caTlsPort}`);
    assert.equal(flag('--ca-token-file'), '/var/run/secrets/tokens/istio-token');
    assert.equal(flag('--ca-root-cert'), '/var/run/secrets/istio/root-cert.pem');
    assert.equal(flag('--trust-domain'), 'cluster.local');
    assert.equal(flag('--service-account'), '$(SERVICE_ACCOUNT)');
  });

  test('tokens: the right service account only; wrong audience, expired, deleted pod, garbage and another account are refused with a clear error', async (t) => {
    const web = await createPod('client-0', 'frontend', { app: 'client' });
    const good = await tokenFor('frontend', { pod: web, audiences: ['istio-ca'] });
    const chain = await createCertificate(good, spiffe('frontend'));
    const leaf = new X509Certificate(chain.certChain[0]);
    assert.equal(leaf.subjectAltName, `URI:${spiffe('frontend')}`);
    assert.ok(leaf.verify(new X509Certificate(rootPem).publicKey), 'signed by the published root');

    const messages: string[] = [];
    messages.push(await refused(good, spiffe('backend'), grpc.status.INVALID_ARGUMENT, /may only have spiffe:\/\/cluster\.local\/ns\/shop\/sa\/frontend/, 'frontend token asking for backend'));
    const apiAudience = await tokenFor('frontend', { pod: web });
    messages.push(await refused(apiAudience, spiffe('frontend'), grpc.status.UNAUTHENTICATED, /audience \[https:\/\/kubernetes\.default\.svc\.cluster\.local\] is not one the CA accepts \[istio-ca\]/, 'the API server audience'));
    const otherAudience = await tokenFor('frontend', { pod: web, audiences: ['vault'] });
    messages.push(await refused(otherAudience, spiffe('frontend'), grpc.status.UNAUTHENTICATED, /audience \[vault\] is not one the CA accepts/, 'audience vault'));

    // An expired token: the claims of a real one, re-signed with the API server's own key, `exp`
    // in the past. The same claims with a future `exp` are accepted, so expiry is the only flaw.
    const [h, p] = (await tokenFor('frontend', { pod: web, audiences: ['istio-ca'] })).split('.');
    const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg: string };
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const forge = (exp: number): string => {
      const body = `${h}.${Buffer.from(JSON.stringify({ ...claims, iat: exp - 700, nbf: exp - 700, exp })).toString('base64url')}`;
      const sig = sign('sha256', Buffer.from(body), { key: createPrivateKey(cluster.serviceAccountKeyPem), ...(header.alg.startsWith('ES') ? { dsaEncoding: 'ieee-p1363' as const } : {}) });
      return `${body}.${sig.toString('base64url')}`;
    };
    const now = Math.floor(Date.now() / 1000);
    assert.equal(new X509Certificate((await createCertificate(forge(now + 600), spiffe('frontend'))).certChain[0]).subjectAltName, `URI:${spiffe('frontend')}`, 'a re-signed token is otherwise valid');
    messages.push(await refused(forge(now - 60), spiffe('frontend'), grpc.status.UNAUTHENTICATED, /token expired at/, 'expired'));

    const doomed = await createPod('doomed-0', 'frontend', { app: 'client' });
    const orphan = await tokenFor('frontend', { pod: doomed, audiences: ['istio-ca'] });
    await cluster.rest.request('DELETE', '/api/v1/namespaces/shop/pods/doomed-0', { query: { gracePeriodSeconds: 0 } });
    await waitFor('pod deleted', () => cluster.rest.request('GET', '/api/v1/namespaces/shop/pods/doomed-0').then(() => false, () => true), 30_000, 100);
    messages.push(await refused(orphan, spiffe('frontend'), grpc.status.UNAUTHENTICATED, /did not authenticate it: .*service account token has been invalidated/, 'token bound to a deleted pod'));
    messages.push(await refused('not-a-token', spiffe('frontend'), grpc.status.UNAUTHENTICATED, /not a JWT/, 'garbage'));
    messages.push(await refused(good, spiffe('frontend'), grpc.status.UNAUTHENTICATED, /accepted only over TLS/, 'a good token over the plaintext xDS port', true));
    t.diagnostic(`refusals:\n  ${messages.join('\n  ')}`);

    // Printed, not asserted: what a TokenReview adds to an issuance (fresh tokens) over a cached review.
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const timed = async (token: string) => {
      const t0 = performance.now();
      await createCertificate(token, spiffe('frontend'));
      return performance.now() - t0;
    };
    const fresh: number[] = [];
    const cached: number[] = [];
    for (let i = 0; i < 10; i++) fresh.push(await timed(await tokenFor('frontend', { pod: web, audiences: ['istio-ca'] })));
    for (let i = 0; i < 10; i++) cached.push(await timed(good));
    t.diagnostic(`CreateCertificate over TLS, median of 10 (each with a new key and TLS channel): ${median(fresh).toFixed(1)} ms with a TokenReview, ${median(cached).toFixed(1)} ms with a cached review`);
  });

  test('injected proxies get their certificates with projected tokens (refreshed from the file) and talk mTLS under STRICT', async (t) => {
    const [inbound, outbound] = [await freePort(), await freePort()];
    Object.assign(mesh, { inbound, outbound });
    await applyObject(cluster.rest, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'backend', namespace: 'shop' }, spec: { selector: { app: 'backend' }, ports: [{ name: 'http', port: 8080 }] } });
    await registerWorkloadEntry(cluster.rest, { name: 'backend-0', namespace: 'shop', labels: { app: 'backend', 'security.istio.io/tlsMode': 'istio' }, serviceAccount: 'backend', port: inbound });

    const backendPod = await createPod('backend-0', 'backend', { app: 'backend' });
    const backendToken = tokenFile('backend-0', await tokenFor('backend', { pod: backendPod, audiences: ['istio-ca'] }));
    const backend = await runInjectedProxy(cleanups, backendPod, {
      files: { '/var/run/secrets/tokens/istio-token': backendToken, '/var/run/secrets/istio/root-cert.pem': rootFile },
      metadata: { TRELLIS_INBOUND_ADDRESS: '127.0.0.1', TRELLIS_INBOUND_PORTS: { 8080: inbound }, TRELLIS_APP_PORTS: { 8080: appPort }, TRELLIS_OUTBOUND_PORTS: { 8080: await freePort(), 443: await freePort() } },
    });

    // The frontend starts with a token for the wrong audience: refused, clearly; then the file
    // gets a good token (the kubelet's refresh) and the next attempt succeeds.
    const frontendPod = await createPod('frontend-0', 'frontend', { app: 'frontend' });
    const frontendToken = tokenFile('frontend-0', await tokenFor('frontend', { pod: frontendPod, audiences: ['api'] }));
    const frontend = await runInjectedProxy(cleanups, frontendPod, {
      files: { '/var/run/secrets/tokens/istio-token': frontendToken, '/var/run/secrets/istio/root-cert.pem': rootFile },
      metadata: { TRELLIS_OUTBOUND_PORTS: { 8080: outbound, 443: await freePort() } },
      waitReady: false,
    });
    const why = await waitFor('the refusal in the proxy log', () => /CA refused: service-account token refused: the token's audience \[api\] is not one the CA accepts \[istio-ca\]/.exec(frontend.output())?.[0], 30_000, 200);
    t.diagnostic(`frontend proxy with a wrong-audience token: ${why}`);
    assert.notEqual((await fetch(`http://127.0.0.1:${frontend.ports.health}/healthz/ready`)).status, 200, 'not ready without a certificate');
    writeFileSync(frontendToken, await tokenFor('frontend', { pod: frontendPod, audiences: ['istio-ca'] }));
    await waitFor('frontend ready once its token file is good', async () => (await fetch(`http://127.0.0.1:${frontend.ports.health}/healthz/ready`)).status === 200 || undefined, 90_000, 200);

    // Each got exactly its own identity (the CA's record, and the backend's serving certificate).
    Object.assign(mesh, { backendNode: backend.nodeId, frontendNode: frontend.nodeId });
    const ca = await debugCa();
    assert.equal(ca.dir, 'Secret trellis-system/istio-ca-secret');
    assert.equal(ca.issued.find((r) => r.nodeId === backend.nodeId)?.spiffeId, spiffe('backend'));
    assert.equal(ca.issued.find((r) => r.nodeId === frontend.nodeId)?.spiffeId, spiffe('frontend'));

    await applyObject(cluster.rest, { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: 'shop' }, spec: { mtls: { mode: 'STRICT' } } });
    const plain = async () => httpGet(inbound, '/plain', Backend, {}, 3000).then((r) => r.status, () => 0);
    await waitFor('STRICT in force on the backend', async () => (await plain()) === 0 || undefined, 30_000, 200);
    assert.equal(await waitFor('frontend -> backend over mTLS', async () => (await viaMesh()) === 200 || undefined, 30_000, 200), true);
    let ok = 0;
    for (let i = 0; i < 20; i++) if ((await viaMesh()) === 200) ok++;
    assert.equal(ok, 20, 'every request through the mesh succeeded under STRICT');
    assert.ok(appHits.filter((u) => u === '/mesh').length >= 21, 'the backend app answered them');
    assert.equal(await plain(), 0, 'plaintext to the backend is refused under STRICT');
    // The backend sidecar saw the frontend by its verified SPIFFE identity.
    const mtls = await trellis(['mtls', '--admin', `127.0.0.1:${backend.ports.admin}`, '-o', 'json']);
    assert.equal(mtls.code, 0, mtls.stderr);
    assert.match(mtls.stdout, /cluster\.local\/ns\/shop\/sa\/frontend/);
    t.diagnostic(`trellis mtls on the backend: ${mtls.stdout.replace(/\s+/g, ' ').slice(0, 600)}`);
    // And openssl sees the backend's certificate chain to the published root with its own SAN.
    const s = await new Promise<string>((resolve) => {
      const c = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${inbound}`, '-CAfile', rootFile, '-showcerts'], { timeout: 15_000 }, (_e, out, err) => resolve(out + err));
      c.stdin?.end('');
    });
    const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(s)?.[0];
    assert.ok(pem !== undefined, s);
    assert.equal(new X509Certificate(pem).subjectAltName, `URI:${spiffe('backend')}`);
    assert.match(s, /Verify return code: 0 \(ok\)/);
  });

  test('plug-in CA from the cacerts Secret: a bad one is refused naming the key and the old root keeps signing; a good one is rolled in without breaking mTLS', async (t) => {
    const hour = 3_600_000;
    const now = Date.now();
    const rootKey = await generateKey('ECDSA_P256');
    const plugRoot = issueCertificate({ organization: 'Example Corp', commonName: 'Example Corp Root', isCa: true, notBefore: new Date(now - hour), notAfter: new Date(now + 1000 * hour), publicKey: rootKey.publicKey }, { certificate: undefined, privateKey: rootKey.privateKey });
    const midKey = await generateKey('ECDSA_P256');
    const mid = issueCertificate({ organization: 'Example Corp', commonName: 'mesh intermediate', isCa: true, notBefore: new Date(now - hour), notAfter: new Date(now + 500 * hour), publicKey: midKey.publicKey }, { certificate: new X509Certificate(plugRoot), privateKey: rootKey.privateKey });
    const pem = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }) as string;
    const cacerts = (key: string) => ({
      apiVersion: 'v1', kind: 'Secret', metadata: { name: 'cacerts', namespace: 'trellis-system' },
      stringData: { 'ca-cert.pem': mid, 'ca-key.pem': key, 'root-cert.pem': plugRoot, 'cert-chain.pem': mid + plugRoot },
    });
    const before = (await debugCa()).signingRootSubject;

    await applyObject(cluster.rest, cacerts(pem((await generateKey('ECDSA_P256')).privateKey)));
    const bad = await waitFor('the bad cacerts reported', async () => (await debugCa()).lastError, 30_000, 200);
    assert.match(bad, /CA file Secret trellis-system\/cacerts key ca-key\.pem: the key does not match the certificate in ca-cert\.pem/);
    t.diagnostic(`bad cacerts: ${bad}`);
    const stillOld = await createCertificate(await tokenFor('frontend', { audiences: ['istio-ca'] }), spiffe('frontend'));
    assert.ok(new X509Certificate(stillOld.certChain[0]).verify(new X509Certificate(rootPem).publicKey), 'still signing under istio-ca-secret');
    assert.equal((await debugCa()).signingRootSubject, before);

    await applyObject(cluster.rest, cacerts(pem(midKey.privateKey)));
    // The new root reaches every namespace (with the old one, still trusted) before it signs.
    const bundle = await waitFor('both roots in istio-ca-root-cert', async () => {
      const text = await rootConfigMap('shop');
      return text.includes(plugRoot.trim()) && text.includes(rootPem.trim()) ? text : undefined;
    }, 30_000, 200);
    writeFileSync(rootFile, bundle); // what the kubelet does to the mounted ConfigMap
    rootPem = bundle;
    await waitFor('signing under the plug-in root', async () => /Example Corp Root/.test((await debugCa()).signingRootSubject) || undefined, 90_000, 200);
    const chain = (await createCertificate(await tokenFor('frontend', { audiences: ['istio-ca'] }), spiffe('frontend'))).certChain;
    assert.equal(chain.length, 3, 'leaf, intermediate, plug-in root');
    assert.equal(new X509Certificate(chain[1]).subject.includes('mesh intermediate'), true);
    assert.equal(chain[2].trim(), plugRoot.trim());
    // Both sidecars renew under the new root (the bundle leads with it) and mTLS keeps working.
    await waitFor('both sidecars renewed under the plug-in root', async () => {
      const issued = (await debugCa()).issued;
      return [mesh.backendNode, mesh.frontendNode].every((n) => issued.some((r) => r.nodeId === n && r.root.trim() === plugRoot.trim())) || undefined;
    }, 90_000, 200);
    let ok = 0;
    for (let i = 0; i < 10; i++) if ((await viaMesh()) === 200) ok++;
    assert.equal(ok, 10, 'mTLS between the sidecars after the root change');
    t.diagnostic(`trust bundle now: ${(await debugCa()).bundle.map((b) => b.subject.replace(/\n/g, ', ')).join(' | ')}`);
  });

  test('with the API server down, a token never reviewed is refused (UNAVAILABLE) and nothing is issued; a recently reviewed one still is', async () => {
    const pod = await createPod('late-0', 'frontend', { app: 'client' });
    const reviewed = await tokenFor('frontend', { pod, audiences: ['istio-ca'] });
    await createCertificate(reviewed, spiffe('frontend'));
    const fresh = await tokenFor('frontend', { pod, audiences: ['istio-ca'] });
    await cluster.stopApiServer();
    try {
      await refused(fresh, spiffe('frontend'), grpc.status.UNAVAILABLE, /Kubernetes TokenReview failed, so the token could not be checked/, 'API server down');
      assert.equal(new X509Certificate((await createCertificate(reviewed, spiffe('frontend'))).certChain[0]).subjectAltName, `URI:${spiffe('frontend')}`, 'cached review');
    } finally {
      await cluster.startApiServer();
    }
  });
});
