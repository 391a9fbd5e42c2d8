/**
 * Must-show, on a real API server with two control plane revisions (1-2 and 1-3) running side by
 * side, each serving its own injection webhook over HTTPS:
 *  - injection: a pod created in a namespace labelled for a revision comes back from the API
 *    server with the capture init container, the proxy and its probes rewritten; a pod in an
 *    unlabelled namespace and one labelled `sidecar.istio.io/inject: "false"` are untouched;
 *  - canary upgrade: tag `prod` -> 1-2, a pod gets 1-2 and its (real) proxy connects to 1-2;
 *    `trellis tag set prod --revision 1-3` and the next pod gets 1-3 while the old proxy stays
 *    connected to and served by 1-2 (`trellis proxy-status` shows both), rollback works, and no
 *    request through the old proxy fails during the switch;
 *  - validation: a bad VirtualService is refused at apply time with the analyzer's message;
 *  - with the webhook down and `failurePolicy: Fail` the API server refuses the pod with its own
 *    clear error: never a pod without a proxy in an injected namespace.
 * The "pods" have no kubelet: a proxy is started from the injected container's own arguments.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startEchoServer } from '../src/samples/echo-server.ts';
import { Cleanups, freePort, nodeBin, repoRoot, waitFor } from './support/processes.ts';
import type { Spawned } from './support/processes.ts';
import { httpGet } from './support/http-client.ts';
import { applyObject, objectUrl, sharedK8s, ensureNamespace, installCrds, istioCrds, skipUnlessKube, startKubeCluster, startKubeControl, yamlObjects } from './support/kube-apiserver.ts';
import type { KubeCluster, KubeControlProcess } from './support/kube-apiserver.ts';
import { injectedProxy, markRunning, registerWorkloadEntry, runInjectedProxy } from './support/kube-workloads.ts';
import type { InjectedContainer, InjectedPod } from './support/kube-workloads.ts';
import type { KubeObject } from '../src/config/store/kubernetes-rest.ts';
import { KubeApiError } from '../src/config/store/kubernetes-rest.ts';
import { validateObject } from '../src/control/webhook/validate.ts';

const cleanups = new Cleanups();
after(() => cleanups.run());
const skip = skipUnlessKube();
const Echo = 'echo.default.svc.cluster.local';

type Container = InjectedContainer;
type PodJson = InjectedPod;

function trellis(args: string[], kubeconfig: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(nodeBin, [join(repoRoot, 'bin', 'trellis.js'), ...args, '--kubeconfig', kubeconfig], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

function podObject(name: string, namespace: string, labels: Record<string, string> = {}): KubeObject {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels: { app: 'web', ...labels } },
    spec: {
      serviceAccountName: 'web',
      containers: [{ name: 'web', image: 'web:1', ports: [{ name: 'http', containerPort: 8080 }], readinessProbe: { httpGet: { path: '/ready', port: 'http' } }, livenessProbe: { httpGet: { path: '/live', port: 8080 } } }],
    },
  };
}

async function createPod(c: KubeCluster, obj: KubeObject): Promise<PodJson> {
  return c.rest.request<PodJson>('POST', `/api/v1/namespaces/${obj.metadata!.namespace}/pods`, { body: obj });
}

const allContainers = (p: PodJson): Container[] => [...(p.spec.initContainers ?? []), ...p.spec.containers];
const proxyOf = injectedProxy;
const revisionOf = (p: PodJson): string | undefined => p.metadata?.annotations?.['istio.io/rev'];

/** The pod's injected proxy as a local process, its outbound 8080 (and the API server's own 443) on loopback ports. */
async function runProxyOf(pod: PodJson, outboundPort: number): Promise<Spawned & { nodeId: string }> {
  return runInjectedProxy(cleanups, pod, { metadata: { TRELLIS_OUTBOUND_PORTS: { '8080': outboundPort, '443': await freePort() } } });
}

describe('injection, revisions and canary upgrades on a real API server', { skip, timeout: 600_000 }, () => {
  let cluster: KubeCluster;
  const rev: Record<string, KubeControlProcess> = {};

  before(async () => {
    cluster = await startKubeCluster(cleanups);
    await installCrds(cluster.rest, istioCrds());
    await ensureNamespace(cluster.rest, 'trellis-system');
    await ensureNamespace(cluster.rest, 'shop', { 'istio.io/rev': '1-2' });
    await ensureNamespace(cluster.rest, 'plain');
    await ensureNamespace(cluster.rest, 'app', { 'istio.io/rev': 'prod' });
    const echo = await startEchoServer({ namespace: 'default', service: 'echo', pod: 'echo-0', host: '127.0.0.1', port: 0, log: () => {} });
    cleanups.add(() => echo.close(0));
    await applyObject(cluster.rest, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'echo', namespace: 'default' }, spec: { selector: { app: 'echo' }, ports: [{ name: 'http', port: 8080 }] } });
    await registerWorkloadEntry(cluster.rest, { name: 'echo-0', labels: { app: 'echo' }, port: echo.port });
    for (const r of ['1-2', '1-3']) {
      const xds = await freePort();
      rev[r] = await startKubeControl(cleanups, cluster, ['--revision', r, '--xds-port', String(xds), '--injection-xds', `127.0.0.1:${xds}`,
        '--webhook-port', '0', '--webhook-url', 'https://127.0.0.1:0', '--no-status', '--no-ca', ...(r === '1-2' ? ['--validate-unlabelled'] : [])]);
      assert.equal(rev[r].xdsPort, xds);
    }
    // A new webhook configuration takes a moment to reach the API server's admission chain.
    await waitFor('revision 1-2 injecting', async () => {
      const p = await cluster.rest.request<PodJson>('POST', '/api/v1/namespaces/shop/pods', { body: podObject('probe', 'shop'), query: { dryRun: 'All' } });
      return proxyOf(p) !== undefined;
    }, 30_000, 200);
  });

  test('a pod in a namespace labelled istio.io/rev=1-2 comes back with the proxy, the capture step and rewritten probes', async () => {
    const pod = await createPod(cluster, podObject('web-1', 'shop'));
    assert.deepEqual((pod.spec.initContainers ?? []).map((c) => c.name).slice(0, 1), ['trellis-init']);
    assert.equal(pod.spec.initContainers?.[0].args?.[0], 'capture');
    const proxy = proxyOf(pod);
    assert.ok(proxy, 'proxy injected');
    // Kubernetes 1.37 runs native sidecars: the proxy is a restartPolicy Always init container.
    assert.equal(proxy.restartPolicy, 'Always');
    assert.equal(proxy.args?.[proxy.args.indexOf('--xds') + 1], `127.0.0.1:${rev['1-2'].xdsPort}`);
    assert.equal(revisionOf(pod), '1-2');
    const web = pod.spec.containers.find((c) => c.name === 'web')!;
    assert.deepEqual(web.readinessProbe?.httpGet, { path: '/app-health/web/readyz', port: 15020, scheme: 'HTTP' });
    const probes = JSON.parse(proxy.args![proxy.args!.indexOf('--app-probes') + 1]) as Record<string, unknown>;
    assert.deepEqual(Object.keys(probes).sort(), ['/app-health/web/livez', '/app-health/web/readyz']);
    assert.equal(pod.metadata?.labels?.['security.istio.io/tlsMode'], 'istio');
  });

  test('an unlabelled namespace and sidecar.istio.io/inject: "false" leave the pod untouched', async () => {
    const plain = await createPod(cluster, podObject('web-1', 'plain'));
    assert.deepEqual(allContainers(plain).map((c) => c.name), ['web']);
    const optOut = await createPod(cluster, podObject('web-2', 'shop', { 'sidecar.istio.io/inject': 'false' }));
    assert.deepEqual(allContainers(optOut).map((c) => c.name), ['web']);
  });

  test('canary: tag prod -> 1-2, then 1-3; old pods stay on 1-2, new ones get 1-3, rollback; no request fails', async (t) => {
    const kc = cluster.kubeconfigPath;
    const set = await trellis(['tag', 'set', 'prod', '--revision', '1-2'], kc);
    assert.equal(set.code, 0, set.stderr);
    const podFor = async (name: string, want: string): Promise<PodJson> => waitFor(`${name} injected by ${want}`, async () => {
      const p = await cluster.rest.request<PodJson>('POST', '/api/v1/namespaces/app/pods', { body: podObject(name, 'app'), query: { dryRun: 'All' } });
      if (revisionOf(p) !== want) return undefined;
      return createPod(cluster, podObject(name, 'app'));
    }, 30_000, 200);
    const old = await podFor('web-old', '1-2');
    await markRunning(cluster.rest, 'app', 'web-old');
    const oldPort = await freePort();
    const oldProxy = await runProxyOf(old, oldPort);
    await waitFor('old proxy routes', async () => (await httpGet(oldPort, '/', Echo)).status === 200, 30_000, 100);

    // Continuous traffic through the old proxy while the tag moves (bounded in count and time).
    let stop = false;
    const results: Record<string, number> = {};
    const load = (async () => {
      for (let i = 0; i < 2000 && !stop; i++) {
        let k: string;
        try {
          k = String((await httpGet(oldPort, '/', Echo, {}, 5000)).status);
        } catch (err) {
          k = `error ${(err as Error).message}`;
        }
        results[k] = (results[k] ?? 0) + 1;
      }
    })();
    const moved = await trellis(['tag', 'set', 'prod', '--revision', '1-3'], kc);
    assert.equal(moved.code, 0, moved.stderr);
    assert.match(moved.stdout, /was 1-2/);
    const fresh = await podFor('web-new', '1-3');
    assert.equal(proxyOf(fresh)!.args![proxyOf(fresh)!.args!.indexOf('--xds') + 1], `127.0.0.1:${rev['1-3'].xdsPort}`);
    await markRunning(cluster.rest, 'app', 'web-new');
    const newPort = await freePort();
    const newProxy = await runProxyOf(fresh, newPort);
    await waitFor('new proxy routes', async () => (await httpGet(newPort, '/', Echo)).status === 200, 30_000, 100);

    const ps = await new Promise<string>((resolve, reject) => execFile(nodeBin, [join(repoRoot, 'bin', 'trellis.js'), 'proxy-status', '--control', rev['1-2'].url, '--control', rev['1-3'].url], { timeout: 20_000 }, (err, out, errOut) => (err ? reject(new Error(errOut)) : resolve(out))));
    t.diagnostic(`trellis proxy-status across both revisions:\n${ps}`);
    const line = (id: string) => ps.split('\n').find((l) => l.startsWith(id)) ?? '';
    assert.match(line(oldProxy.nodeId), /^\S+\s+1-2\s+SYNCED/);
    assert.match(line(newProxy.nodeId), /^\S+\s+1-3\s+SYNCED/);
    assert.match(ps.split('\n')[0], /^NAME\s+REVISION\s+CDS/);

    stop = true;
    await load;
    assert.deepEqual(Object.keys(results), ['200'], `every request through the old proxy succeeded during the switch: ${JSON.stringify(results)}`);
    t.diagnostic(`${results['200']} requests through the 1-2 proxy during the tag switch, none failed`);

    const back = await trellis(['tag', 'set', 'prod', '--revision', '1-2'], kc);
    assert.equal(back.code, 0, back.stderr);
    await podFor('web-rolled-back', '1-2');
    const list = await trellis(['tag', 'list'], kc);
    assert.match(list.stdout, /prod\s+1-2\s+app/);
  });

  test('validation webhook: a bad VirtualService is refused with the analyzer message; a good one is accepted', async () => {
    const vs = (regex: string): KubeObject => ({
      apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'echo', namespace: 'default' },
      spec: { hosts: [Echo], http: [{ match: [{ uri: { regex } }], route: [{ destination: { host: Echo } }] }] },
    });
    await waitFor('validator registered', async () => {
      try {
        await applyObject(cluster.rest, vs('('), { dryRun: true });
        return false;
      } catch (err) {
        return err instanceof KubeApiError && /trellis/.test(err.message);
      }
    }, 30_000, 200);
    const refused = await applyObject(cluster.rest, vs('(')).then(() => undefined, (e: unknown) => e);
    assert.ok(refused instanceof KubeApiError, 'refused');
    assert.equal(refused.status, 400);
    assert.match(refused.message, /admission webhook "(rev\.)?validation\.trellis\.dev" denied the request: trellis: VirtualService default\/echo is invalid: .*spec\.http\[0\]\.match\[0\]\.uri\.regex/);
    await applyObject(cluster.rest, vs('^/api/.*'));
  });

  test('Istio validation corpus: every -valid document is accepted and every -invalid one refused at apply time', async (t) => {
    const dir = join(sharedK8s, 'istio-validation');
    const refusedWrongly: string[] = [];
    const acceptedWrongly: string[] = [];
    let caughtLocally = 0;
    let sameMessage = 0;
    let invalid = 0;
    for (const f of readdirSync(dir).sort()) {
      const valid = f.endsWith('-valid.yaml');
      // Go's YAML reads the flow item `001:db8::` as a string; the JavaScript parser as a map.
      const text = readFileSync(join(dir, f), 'utf8').replace('[1.2.3.4, 001:db8::]', '[1.2.3.4, "001:db8::"]');
      for (const doc of yamlObjects(text)) {
        const want = doc._err as string | undefined;
        delete doc._err;
        doc.metadata = { namespace: 'default', ...doc.metadata };
        const label = `${f} ${doc.kind}/${doc.metadata.name}`;
        // A create (what `kubectl create` and Istio's own test do), dry run: admission runs, nothing is stored.
        const err = await cluster.rest.request('POST', objectUrl(doc).replace(/\/[^/]+$/, ''), { body: doc, query: { dryRun: 'All' } }).then(() => undefined, (e: unknown) => e);
        const local = validateObject(doc as Record<string, unknown>);
        if (valid) {
          if (err !== undefined) refusedWrongly.push(`${label}: ${(err as Error).message}`);
          if (!local.allowed) refusedWrongly.push(`${label} (trellis validator): ${local.message}`);
        } else {
          invalid++;
          if (!local.allowed) caughtLocally++;
          if (!(err instanceof KubeApiError)) acceptedWrongly.push(label);
          else if (want !== undefined && err.message.includes(want.replace(/"(object|integer|string|array)": /, ''))) sameMessage++;
        }
      }
    }
    assert.deepEqual(refusedWrongly, [], 'valid documents refused');
    assert.deepEqual(acceptedWrongly, [], 'invalid documents accepted');
    t.diagnostic(`${sameMessage} of ${invalid} refusals carry the corpus's _err fragment (the rest word it differently in Kubernetes 1.37)`);
    t.diagnostic(`of ${invalid} -invalid documents, Trellis's own validator (trellis analyze) refuses ${caughtLocally} without the API server; the rest are refused by the CRDs' schema and CEL rules before the webhook is called`);
  });

  test('trellis analyze --kubeconfig warns about a namespace labelled for a revision or tag that does not exist', async () => {
    await ensureNamespace(cluster.rest, 'ghost', { 'istio.io/rev': '1-9' });
    const r = await trellis(['analyze', '-o', 'json'], cluster.kubeconfigPath);
    const out = JSON.parse(r.stdout) as { diagnostics: { code: string; resource?: { name: string }; message: string }[] };
    const found = out.diagnostics.filter((d) => d.code === 'REVISION_NOT_FOUND');
    assert.deepEqual(found.map((d) => d.resource?.name), ['ghost'], JSON.stringify(found));
    assert.match(found[0].message, /istio\.io\/rev=1-9.*present: revision 1-2, revision 1-3, tag prod/);
  });

  test('webhook down + failurePolicy Fail: the API server refuses the pod; no pod without a proxy', async () => {
    await rev['1-2'].stop();
    const err = await createPod(cluster, podObject('web-3', 'shop')).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof KubeApiError, 'refused');
    assert.equal(err.status, 500);
    assert.match(err.message, /failed calling webhook "rev\.namespace\.sidecar-injector\.trellis\.dev".*connection refused/);
    const got = await cluster.rest.request('GET', '/api/v1/namespaces/shop/pods/web-3').then(() => 'exists', (e: unknown) => (e instanceof KubeApiError ? e.status : e));
    assert.equal(got, 404);
  });
});
