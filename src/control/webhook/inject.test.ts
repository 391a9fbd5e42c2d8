import { test } from 'node:test';
import assert from 'node:assert/strict';
import { injectPod, injectedParts, rewriteProbes, skipReason } from './inject.ts';
import type { InjectionSettings } from './inject.ts';

const settings: InjectionSettings = { revision: '1-3', image: 'trellis:0.1.0', xdsAddress: 'trellis-1-3.trellis-system.svc:15010', nativeSidecars: false, holdApplicationUntilProxyStarts: false };

const pod = (extra: { labels?: Record<string, string>; annotations?: Record<string, string> } = {}) => ({
  metadata: { generateName: 'reviews-v1-', namespace: 'bookinfo', labels: { app: 'reviews', version: 'v1', ...(extra.labels ?? {}) }, annotations: { ...(extra.annotations ?? {}) } },
  spec: {
    serviceAccountName: 'bookinfo-reviews',
    containers: [{
      name: 'reviews', image: 'reviews:v1', ports: [{ name: 'http', containerPort: 9080 }],
      readinessProbe: { httpGet: { path: '/health', port: 'http' }, timeoutSeconds: 2 },
      livenessProbe: { tcpSocket: { port: 9080 } },
    }],
  },
});

test('inject: capture init container, proxy, probes through 15020, identity from the downward API', () => {
  const parts = injectedParts(pod(), settings);
  assert.equal(parts.initContainers[0].name, 'trellis-init');
  assert.deepEqual(parts.initContainers[0].args, ['capture']);
  const sc = parts.initContainers[0].securityContext as { capabilities: { add: string[] } };
  assert.deepEqual(sc.capabilities.add, ['NET_ADMIN', 'NET_RAW']);
  const proxy = parts.containers.find((c) => c.name === 'trellis-proxy')!;
  assert.ok(proxy, 'proxy container');
  const args = proxy.args as string[];
  assert.equal(args[0], 'proxy');
  assert.equal(args[args.indexOf('--xds') + 1], settings.xdsAddress);
  assert.equal(args[args.indexOf('--service-account') + 1], '$(SERVICE_ACCOUNT)');
  assert.match(args[args.indexOf('--labels') + 1], /app=reviews/);
  assert.deepEqual(JSON.parse(args[args.indexOf('--metadata') + 1]), { REVISION: '1-3' });
  const env = proxy.env as { name: string; valueFrom: { fieldRef: { fieldPath: string } } }[];
  assert.equal(env.find((e) => e.name === 'SERVICE_ACCOUNT')?.valueFrom.fieldRef.fieldPath, 'spec.serviceAccountName');
  assert.equal((proxy.securityContext as { runAsUser: number }).runAsUser, 1337);
  const app = parts.containers.find((c) => c.name === 'reviews')!;
  assert.deepEqual(app.readinessProbe?.httpGet, { path: '/app-health/reviews/readyz', port: 15020, scheme: 'HTTP' });
  assert.deepEqual(app.livenessProbe, { tcpSocket: { port: 9080 } }, 'non-HTTP probes untouched');
  const probes = JSON.parse(args[args.indexOf('--app-probes') + 1]) as Record<string, { httpGet: { port: number; path: string } }>;
  assert.deepEqual(probes['/app-health/reviews/readyz'].httpGet, { path: '/health', port: 9080, scheme: 'HTTP' }, 'named port resolved');
  assert.equal(parts.labels['security.istio.io/tlsMode'], 'istio');
  assert.equal(parts.labels['service.istio.io/canonical-revision'], 'v1');
  assert.equal(JSON.parse(parts.annotations['sidecar.istio.io/status']).revision, '1-3');
  assert.deepEqual(proxy.resources, { requests: { cpu: '100m', memory: '128Mi' } });
});

test('inject: native sidecars put the proxy in initContainers with restartPolicy Always and a startup probe', () => {
  const parts = injectedParts(pod(), { ...settings, nativeSidecars: true });
  assert.deepEqual(parts.initContainers.map((c) => c.name), ['trellis-init', 'trellis-proxy']);
  assert.equal(parts.initContainers[1].restartPolicy, 'Always');
  assert.ok(parts.initContainers[1].startupProbe);
  assert.deepEqual(parts.containers.map((c) => c.name), ['reviews']);
});

test('inject: holdApplicationUntilProxyStarts (pod annotation) puts the proxy first with a postStart wait', () => {
  const parts = injectedParts(pod({ annotations: { 'proxy.istio.io/config': 'holdApplicationUntilProxyStarts: true' } }), settings);
  assert.equal(parts.containers[0].name, 'trellis-proxy');
  assert.deepEqual((parts.containers[0].lifecycle as { postStart: { exec: { command: string[] } } }).postStart.exec.command.slice(0, 2), ['trellis', 'wait']);
});

test('inject: resources from sidecar.istio.io annotations; capture exclusions from traffic annotations', () => {
  const parts = injectedParts(pod({ annotations: { 'sidecar.istio.io/proxyCPU': '250m', 'sidecar.istio.io/proxyMemoryLimit': '1Gi', 'traffic.sidecar.istio.io/excludeOutboundPorts': '5432, 6379' } }), settings);
  const proxy = parts.containers.find((c) => c.name === 'trellis-proxy')!;
  assert.deepEqual(proxy.resources, { requests: { cpu: '250m', memory: '128Mi' }, limits: { memory: '1Gi' } });
  assert.deepEqual(parts.initContainers[0].args, ['capture', '--exclude-outbound-ports', '5432,6379']);
});

test('inject: skipped for inject=false (label or annotation), already injected, hostNetwork', () => {
  assert.match(skipReason(pod({ labels: { 'sidecar.istio.io/inject': 'false' } })) ?? '', /inject/);
  assert.match(skipReason(pod({ annotations: { 'sidecar.istio.io/inject': 'false' } })) ?? '', /inject/);
  assert.equal(skipReason(pod({ annotations: { 'sidecar.istio.io/inject': 'true' } })), undefined);
  assert.equal(skipReason(pod({ annotations: { 'sidecar.istio.io/status': '{}' } })), 'already injected');
  const hn = pod();
  (hn.spec as Record<string, unknown>).hostNetwork = true;
  assert.match(skipReason(hn) ?? '', /hostNetwork/);
  assert.deepEqual(injectPod(pod({ labels: { 'sidecar.istio.io/inject': 'false' } }), settings), { skipped: 'sidecar.istio.io/inject: "false"' });
});

test('inject: the patch replaces containers, init containers, annotations and labels', () => {
  const out = injectPod(pod(), settings);
  assert.ok('patch' in out);
  assert.deepEqual(out.patch.map((o) => `${o.op} ${o.path}`), ['add /spec/initContainers', 'add /spec/containers', 'add /metadata/annotations', 'add /metadata/labels']);
  assert.equal(rewriteProbes([]).containers.length, 0);
});

test('inject with a mesh CA: projected istio-ca token, istio-ca-root-cert volume, the CA flags and the trust domain; pod volumes kept', () => {
  const ca = { address: 'trellis-1-3.trellis-system.svc:15012', trustDomain: 'corp.example', tokenAudience: 'istio-ca' };
  const p = pod();
  (p.spec as Record<string, unknown>).volumes = [{ name: 'data', emptyDir: {} }];
  const parts = injectedParts(p, { ...settings, ca });
  assert.deepEqual(parts.volumes, [
    { name: 'data', emptyDir: {} },
    { name: 'istio-token', projected: { sources: [{ serviceAccountToken: { audience: 'istio-ca', expirationSeconds: 43200, path: 'istio-token' } }] } },
    { name: 'istiod-ca-cert', configMap: { name: 'istio-ca-root-cert' } },
  ]);
  const proxy = parts.containers.find((c) => c.name === 'trellis-proxy')!;
  assert.deepEqual(proxy.volumeMounts, [
    { name: 'istio-token', mountPath: '/var/run/secrets/tokens', readOnly: true },
    { name: 'istiod-ca-cert', mountPath: '/var/run/secrets/istio', readOnly: true },
  ]);
  const args = proxy.args as string[];
  const flag = (f: string) => args[args.indexOf(f) + 1];
  assert.equal(flag('--ca-address'), ca.address);
  assert.equal(flag('--ca-token-file'), '/var/run/secrets/tokens/istio-token');
  assert.equal(flag('--ca-root-cert'), '/var/run/secrets/istio/root-cert.pem');
  assert.equal(flag('--trust-domain'), 'corp.example');
  const out = injectPod(p, { ...settings, ca });
  assert.ok('patch' in out);
  assert.ok(out.patch.some((o) => o.path === '/spec/volumes'));
  // Without a CA nothing about it is injected.
  const plain = injectedParts(pod(), settings);
  assert.deepEqual(plain.volumes, []);
  assert.equal((plain.containers.find((c) => c.name === 'trellis-proxy')!.args as string[]).includes('--ca-address'), false);
});

test('inject with a mesh CA names the default service account when the pod names none (the projected token needs one)', () => {
  const p = pod();
  delete (p.spec as { serviceAccountName?: string }).serviceAccountName;
  const out = injectPod(p, { ...settings, ca: { address: 'x:15012', trustDomain: 'cluster.local', tokenAudience: 'istio-ca' } });
  assert.ok('patch' in out);
  assert.deepEqual(out.patch.find((o) => o.path === '/spec/serviceAccountName'), { op: 'add', path: '/spec/serviceAccountName', value: 'default' });
  const kept = injectPod(pod(), { ...settings, ca: { address: 'x:15012', trustDomain: 'cluster.local', tokenAudience: 'istio-ca' } });
  assert.ok('patch' in kept && !kept.patch.some((o) => o.path === '/spec/serviceAccountName'));
});

test("inject: metrics merging as Istio's injector does it: Prometheus pointed at 15020, the pod's own scrape annotations handed to the proxy", () => {
  const envOf = (parts: ReturnType<typeof injectedParts>) => (parts.containers.find((c) => c.name === 'trellis-proxy')!.env as { name: string; value?: string }[]).find((e) => e.name === 'ISTIO_PROMETHEUS_ANNOTATIONS')?.value;
  const plain = injectedParts(pod(), settings);
  assert.deepEqual([plain.annotations['prometheus.io/scrape'], plain.annotations['prometheus.io/port'], plain.annotations['prometheus.io/path']], ['true', '15020', '/stats/prometheus']);
  assert.equal(envOf(plain), undefined, 'no app metrics declared: the proxy serves its own only');
  const withApp = injectedParts(pod({ annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9080', 'prometheus.io/path': '/stats' } }), settings);
  assert.deepEqual(JSON.parse(envOf(withApp)!), { scrape: 'true', port: '9080', path: '/stats' });
  assert.equal(withApp.annotations['prometheus.io/port'], '15020');
  const optOut = injectedParts(pod({ annotations: { 'prometheus.io/scrape': 'false' } }), settings);
  assert.equal(optOut.annotations['prometheus.io/scrape'], 'false', "a pod that says no scraping keeps it");
  assert.equal(optOut.annotations['prometheus.io/port'], undefined);
  const noMerge = injectedParts(pod({ annotations: { 'prometheus.istio.io/merge-metrics': 'false', 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9080' } }), settings);
  assert.equal(noMerge.annotations['prometheus.io/port'], '9080', 'merge-metrics false: the app is scraped directly');
  assert.equal(envOf(noMerge), undefined);
  const meshOff = injectedParts(pod({ annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9080' } }), { ...settings, prometheusMerge: false });
  assert.equal(meshOff.annotations['prometheus.io/port'], '9080', 'MeshConfig enablePrometheusMerge false');
});
