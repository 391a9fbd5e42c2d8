/**
 * Must-show: the control plane on a real API server. Bookinfo's Services and Istio's routing
 * samples are created through the API; the reviews, ratings and details backends are echo servers
 * on loopback registered as WorkloadEntries (the API server refuses loopback EndpointSlices), and
 * the client is a registered Pod (status written as a kubelet would).
 * `trellis control --kubeconfig` reads all of it, and two sidecars of a registered productpage
 * pod — a Trellis proxy and a stock Envoy, in explicit capture mode — route as the samples say.
 * Editing the VirtualService through the API moves traffic (the time it takes is printed), and
 * restarting the API server under continuous traffic loses no config and no request.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEchoServer } from '../src/samples/echo-server.ts';
import { Cleanups, freePort, getJson, startEnvoy, tempDir, waitFor } from './support/processes.ts';
import type { EnvoyProcess } from './support/processes.ts';
import { startProxy, stopAll } from './support/mesh.ts';
import type { ProxyProc } from './support/mesh.ts';
import { httpGet, tally } from './support/http-client.ts';
import { sharedDir, skipUnlessShared, skipUnlessTools } from './support/skip.ts';
import { applyObject, installCrds, istioCrds, skipUnlessKube, startKubeCluster, startKubeControl, yamlObjects } from './support/kube-apiserver.ts';
import type { KubeCluster, KubeControlProcess } from './support/kube-apiserver.ts';
import { registerPod, registerWorkloadEntry } from './support/kube-workloads.ts';
import type { KubeObject } from '../src/config/store/kubernetes-rest.ts';

const cleanups = new Cleanups();
after(async () => {
  await stopAll();
  await cleanups.run();
});

const samples = join(sharedDir, 'istio-samples');
const Reviews = 'reviews.default.svc.cluster.local';
const skip = skipUnlessKube() || skipUnlessTools('envoy') || skipUnlessShared('istio-samples');

function sample(name: string): KubeObject[] {
  return yamlObjects(readFileSync(join(samples, name), 'utf8')).map((o) => ({ ...o, metadata: { namespace: 'default', ...o.metadata } }));
}

interface Syncz { id: string; types: Record<string, { state: string; nackError?: string }> }

describe('Kubernetes API server -> trellis control -> Trellis proxy and Envoy sidecars (Bookinfo)', { skip, timeout: 600_000 }, () => {
  let cluster: KubeCluster;
  let control: KubeControlProcess;
  let trellisPort: number;
  let envoyPort: number;
  let proxy: ProxyProc;
  let envoy: EnvoyProcess;

  const via = (port: number, headers: Record<string, string> = {}) => () => httpGet(port, '/', Reviews, headers);
  const podOf = (r: { status: number; json?: { pod?: string } }) => `${r.status} ${r.json?.pod ?? ''}`;

  before(async () => {
    cluster = await startKubeCluster(cleanups);
    await installCrds(cluster.rest, istioCrds());
    // Bookinfo's Services and ServiceAccounts exactly as the sample has them (Deployments need a
    // controller-manager and a kubelet; their pods are registered below instead).
    for (const o of sample('bookinfo.yaml')) if (o.kind === 'Service' || o.kind === 'ServiceAccount') await applyObject(cluster.rest, o);
    for (const [app, version] of [['reviews', 'v1'], ['reviews', 'v2'], ['reviews', 'v3'], ['ratings', 'v1'], ['details', 'v1']]) {
      const pod = `${app}-${version}-0`;
      const echo = await startEchoServer({ namespace: 'default', service: app, pod, host: '127.0.0.1', port: 0, log: () => {} });
      cleanups.add(() => echo.close(0));
      await registerWorkloadEntry(cluster.rest, { name: pod, labels: { app, version }, serviceAccount: `bookinfo-${app}`, port: echo.port });
    }
    await registerPod(cluster.rest, { name: 'productpage-v1-0', labels: { app: 'productpage', version: 'v1' }, serviceAccount: 'bookinfo-productpage' });
    for (const o of [...sample('destination-rule-all.yaml'), ...sample('virtual-service-all-v1.yaml')]) await applyObject(cluster.rest, o);

    control = await startKubeControl(cleanups, cluster, ['--no-webhook', '--no-status', '--no-ca']);
    trellisPort = await freePort();
    envoyPort = await freePort();
    const labels = { app: 'productpage', version: 'v1' };
    proxy = await startProxy(control, { workload: 'productpage-v1-0', labels, metadata: { SERVICE_ACCOUNT: 'bookinfo-productpage', TRELLIS_OUTBOUND_PORTS: { '9080': trellisPort } } });
    envoy = await startEnvoy(cleanups, {
      xdsPort: control.xdsPort,
      nodeId: 'sidecar~127.0.0.1~productpage-v1-0.default~default.svc.cluster.local',
      metadata: { NAMESPACE: 'default', LABELS: labels, SERVICE_ACCOUNT: 'bookinfo-productpage', TRELLIS_OUTBOUND_PORTS: { '9080': envoyPort } },
      dir: tempDir(cleanups, 'trellis-kenvoy-'),
    });
    await waitFor('Envoy synced without NACK', async () => {
      const me = (await getJson<Syncz[]>(`${control.url}/debug/syncz`)).find((p) => p.id === envoy.nodeId);
      for (const [t, s] of Object.entries(me?.types ?? {})) if (s.state === 'NACKED') throw new Error(`${t} NACKED: ${s.nackError}`);
      return me !== undefined && Object.values(me.types).length >= 3 && Object.values(me.types).every((s) => s.state === 'SYNCED');
    }, 60_000, 200);
    for (const port of [trellisPort, envoyPort]) await waitFor(`listener on ${port}`, async () => (await httpGet(port, '/', Reviews)).status === 200, 30_000, 100);
  });

  test('virtual-service-all-v1: every request to reviews goes to v1, through both sidecars', async () => {
    for (const port of [trellisPort, envoyPort]) {
      const counts = await tally(30, 5, via(port), podOf);
      assert.deepEqual(counts, { '200 reviews-v1-0': 30 }, `port ${port}`);
    }
  });

  test('editing the VirtualService through the API (reviews-jason-v2-v3) moves traffic; the time is printed', async (t) => {
    const started = Date.now();
    for (const o of sample('virtual-service-reviews-jason-v2-v3.yaml')) await applyObject(cluster.rest, o);
    const seen: Record<string, number> = {};
    for (const [name, port] of [['trellis', trellisPort], ['envoy', envoyPort]] as const) {
      await waitFor(`${name} routes others to v3`, async () => (await httpGet(port, '/', Reviews)).json?.pod === 'reviews-v3-0', 20_000, 10);
      seen[name] = Date.now() - started;
    }
    t.diagnostic(`VirtualService edit -> routing changed: Trellis proxy ${seen.trellis} ms, Envoy ${seen.envoy} ms after the API write`);
    for (const port of [trellisPort, envoyPort]) {
      assert.deepEqual(await tally(20, 4, via(port, { 'end-user': 'jason' }), podOf), { '200 reviews-v2-0': 20 });
      assert.deepEqual(await tally(20, 4, via(port), podOf), { '200 reviews-v3-0': 20 });
    }
  });

  test('restarting the API server (every watch dropped) loses no config and no request; later edits still arrive', async (t) => {
    let stop = false;
    const results: Record<string, number> = {};
    const load = (async () => {
      // Bounded: at most 3,000 requests or until told to stop.
      for (let i = 0; i < 3000 && !stop; i++) {
        for (const port of [trellisPort, envoyPort]) {
          let k: string;
          try {
            k = podOf(await httpGet(port, '/', Reviews, { 'end-user': 'jason' }, 5000));
          } catch (err) {
            k = `error ${(err as Error).message}`;
          }
          results[k] = (results[k] ?? 0) + 1;
        }
      }
    })();
    await new Promise((r) => setTimeout(r, 500));
    await cluster.stopApiServer();
    await new Promise((r) => setTimeout(r, 1500));
    await cluster.startApiServer();
    await new Promise((r) => setTimeout(r, 1500));
    stop = true;
    await load;
    const total = Object.values(results).reduce((a, b) => a + b, 0);
    assert.deepEqual(Object.keys(results), ['200 reviews-v2-0'], `every request answered by reviews-v2 during the restart: ${JSON.stringify(results)}`);
    assert.ok(total > 20, `traffic kept flowing (${total} requests)`);
    t.diagnostic(`${total} requests through both sidecars across the API server restart: ${JSON.stringify(results)}`);
    // The watch resumed: an edit after the restart arrives.
    for (const o of sample('virtual-service-reviews-test-v2.yaml')) await applyObject(cluster.rest, o);
    for (const port of [trellisPort, envoyPort]) {
      await waitFor('reviews-test-v2 applied', async () => (await httpGet(port, '/', Reviews)).json?.pod === 'reviews-v1-0', 30_000, 50);
    }
  });
});
