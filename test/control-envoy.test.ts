/**
 * Must-show: a stock Envoy as a client of `trellis control`, configured only by Istio YAML in a
 * watched directory. One Envoy is a SIDECAR in explicit capture mode (node metadata
 * TRELLIS_OUTBOUND_PORTS maps service port 8080 to a free loopback port) and one an INGRESS
 * GATEWAY (`router`, TRELLIS_GATEWAY_PORTS maps port 80 to a free port). Both must accept every
 * resource (no NACK in /debug/syncz, our listeners/routes/clusters in Envoy's /config_dump) and
 * route real traffic to conformance echo backends per the VirtualService: weighted split, header
 * match, prefix rewrite, fault abort and delay, retries, mirroring. Statistical checks use wide
 * tolerances and every wait is a bounded poll, so a loaded 2-core machine does not flake them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startEchoServer } from '../src/samples/echo-server.ts';
import { Cleanups, freePort, getJson, startControlProcess, startEnvoy, tempDir, waitFor, type ControlProcess, type EnvoyProcess } from './support/processes.ts';
import { serviceWithWorkloads, versionSubsets, writeConfig } from './support/mesh-yaml.ts';
import { httpGet, tally } from './support/http-client.ts';
import { skipUnlessTools } from './support/skip.ts';
import { parsePrometheusText, select, sumOf } from './support/prom-text.ts';

const cleanups = new Cleanups();
after(() => cleanups.run());

const EchoHost = 'echo.default.svc.cluster.local';

const meshVs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: echo
  namespace: default
spec:
  hosts: [${EchoHost}]
  http:
  - name: jason
    match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: ${EchoHost}, subset: v2}}]
  - name: rewrite
    match: [{uri: {prefix: /old/}}]
    rewrite: {uri: /new/}
    route: [{destination: {host: ${EchoHost}, subset: v1}}]
  - name: abort
    match: [{uri: {prefix: /abort}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: ${EchoHost}, subset: v1}}]
  - name: delay
    match: [{uri: {prefix: /delay}}]
    fault: {delay: {fixedDelay: 1s, percentage: {value: 100}}}
    route: [{destination: {host: ${EchoHost}, subset: v1}}]
  - name: retry
    match: [{uri: {prefix: /retry/}}]
    retries: {attempts: 3, perTryTimeout: 5s, retryOn: 5xx}
    route: [{destination: {host: ${EchoHost}, subset: v1}}]
  - name: mirror
    match: [{uri: {prefix: /mirror}}]
    route: [{destination: {host: ${EchoHost}, subset: v1}}]
    mirror: {host: mirror.default.svc.cluster.local}
    mirrorPercentage: {value: 100}
  - name: split
    route:
    - destination: {host: ${EchoHost}, subset: v1}
      weight: 80
    - destination: {host: ${EchoHost}, subset: v2}
      weight: 20
`;

const gateway = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: shop-gateway
  namespace: default
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [shop.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: shop
  namespace: default
spec:
  hosts: [shop.example.com]
  gateways: [shop-gateway]
  http:
  - match: [{headers: {end-user: {exact: jason}}, uri: {prefix: /api/}}]
    rewrite: {uri: /}
    route: [{destination: {host: ${EchoHost}, subset: v2, port: {number: 8080}}}]
  - match: [{uri: {prefix: /api/}}]
    rewrite: {uri: /}
    route:
    - destination: {host: ${EchoHost}, subset: v1, port: {number: 8080}}
      weight: 50
    - destination: {host: ${EchoHost}, subset: v2, port: {number: 8080}}
      weight: 50
`;

interface Syncz {
  id: string;
  types: Record<string, { state: string; nackError?: string }>;
}

/** Every type of `nodeId` SYNCED (none NACKED) in /debug/syncz. */
async function synced(control: ControlProcess, nodeId: string): Promise<Syncz | undefined> {
  const all = await getJson<Syncz[]>(`${control.url}/debug/syncz`);
  const me = all.find((p) => p.id === nodeId);
  if (me === undefined) return undefined;
  const states = Object.values(me.types).map((t) => t.state);
  for (const [type, t] of Object.entries(me.types)) if (t.state === 'NACKED') throw new Error(`${type} NACKED: ${t.nackError ?? ''}`);
  return states.length >= 3 && states.every((s) => s === 'SYNCED') ? me : undefined;
}

function dumpKinds(dump: { configs: Array<Record<string, unknown>> }): { listeners: string[]; routes: string[]; clusters: string[] } {
  const out = { listeners: [] as string[], routes: [] as string[], clusters: [] as string[] };
  for (const c of dump.configs) {
    const type = String(c['@type']);
    if (type.endsWith('ListenersConfigDump')) for (const l of (c.dynamic_listeners as Array<{ name: string }> | undefined) ?? []) out.listeners.push(l.name);
    if (type.endsWith('RoutesConfigDump')) for (const r of (c.dynamic_route_configs as Array<{ route_config: { name: string } }> | undefined) ?? []) out.routes.push(r.route_config.name);
    if (type.endsWith('ClustersConfigDump')) for (const r of (c.dynamic_active_clusters as Array<{ cluster: { name: string } }> | undefined) ?? []) out.clusters.push(r.cluster.name);
  }
  return out;
}

describe('stock Envoy (sidecar and ingress gateway) routed by Istio YAML through trellis control', { skip: skipUnlessTools('envoy'), timeout: 300_000 }, () => {
  let control: ControlProcess;
  let sidecar: EnvoyProcess;
  let gw: EnvoyProcess;
  let sidecarPort: number;
  let gatewayPort: number;
  const mirrorLog: string[] = [];
  const v1Log: string[] = [];

  before(async () => {
    const v1 = await startEchoServer({ namespace: 'default', service: 'echo', pod: 'echo-v1', host: '127.0.0.1', port: 0, log: (l) => v1Log.push(l) });
    const v2 = await startEchoServer({ namespace: 'default', service: 'echo', pod: 'echo-v2', host: '127.0.0.1', port: 0, log: () => {} });
    const mirror = await startEchoServer({ namespace: 'default', service: 'mirror', pod: 'mirror-1', host: '127.0.0.1', port: 0, log: (l) => mirrorLog.push(l) });
    for (const s of [v1, v2, mirror]) cleanups.add(() => s.close(0));
    const dir = tempDir(cleanups);
    writeConfig(dir, 'echo.yaml', serviceWithWorkloads({
      name: 'echo',
      ports: [{ name: 'http', port: 8080 }],
      workloads: [
        { name: 'echo-v1', labels: { version: 'v1' }, ports: { http: v1.port } },
        { name: 'echo-v2', labels: { version: 'v2' }, ports: { http: v2.port } },
      ],
    }));
    writeConfig(dir, 'mirror.yaml', serviceWithWorkloads({ name: 'mirror', ports: [{ name: 'http', port: 8080 }], workloads: [{ name: 'mirror-1', labels: {}, ports: { http: mirror.port } }] }));
    writeConfig(dir, 'dr.yaml', versionSubsets(EchoHost));
    writeConfig(dir, 'vs.yaml', meshVs);
    writeConfig(dir, 'gateway.yaml', gateway);
    control = await startControlProcess(cleanups, dir);
    const work = tempDir(cleanups, 'trellis-envoy-');
    sidecarPort = await freePort();
    gatewayPort = await freePort();
    sidecar = await startEnvoy(cleanups, {
      xdsPort: control.xdsPort,
      nodeId: 'sidecar~127.0.0.1~client-1.default~default.svc.cluster.local',
      metadata: { NAMESPACE: 'default', LABELS: { app: 'client' }, TRELLIS_OUTBOUND_PORTS: { '8080': sidecarPort } },
      dir: work,
    });
    gw = await startEnvoy(cleanups, {
      xdsPort: control.xdsPort,
      nodeId: 'router~127.0.0.1~ingressgateway-1.default~default.svc.cluster.local',
      metadata: { NAMESPACE: 'default', LABELS: { istio: 'ingressgateway' }, TRELLIS_GATEWAY_PORTS: { '80': gatewayPort } },
      dir: work,
    });
    await waitFor('sidecar Envoy SYNCED', () => synced(control, sidecar.nodeId), 60_000, 200);
    await waitFor('gateway Envoy SYNCED', () => synced(control, gw.nodeId), 60_000, 200);
    // Listeners bind shortly after the ACK; wait until both answer.
    await waitFor('sidecar listener serving', async () => (await httpGet(sidecarPort, '/', EchoHost)).status === 200, 30_000, 100);
    await waitFor('gateway listener serving', async () => (await httpGet(gatewayPort, '/api/x', 'shop.example.com')).status === 200, 30_000, 100);
  });

  test('Envoy accepts everything (no NACK) and its config_dump shows our listeners, routes and clusters', async () => {
    for (const e of [sidecar, gw]) {
      const me = await synced(control, e.nodeId);
      assert.ok(me, `${e.nodeId} synced`);
      const dump = dumpKinds(await getJson<{ configs: Array<Record<string, unknown>> }>(`${e.admin}/config_dump`));
      assert.ok(dump.clusters.includes(`outbound|8080|v1|${EchoHost}`), `clusters: ${dump.clusters.join(', ')}`);
      assert.ok(dump.clusters.includes(`outbound|8080|v2|${EchoHost}`));
      if (e === sidecar) {
        assert.ok(dump.listeners.some((l) => l.endsWith('_8080')), `listeners: ${dump.listeners.join(', ')}`);
        assert.ok(dump.routes.includes('8080'), `routes: ${dump.routes.join(', ')}`);
        assert.ok(dump.clusters.includes('outbound|8080||mirror.default.svc.cluster.local'));
      } else {
        assert.ok(dump.listeners.some((l) => l.endsWith('_80')), `listeners: ${dump.listeners.join(', ')}`);
        assert.ok(dump.routes.includes('http.80'), `routes: ${dump.routes.join(', ')}`);
      }
    }
  });

  test('sidecar: weighted split 80/20 (400 requests, +-8 points)', async () => {
    const counts = await tally(400, 8, () => httpGet(sidecarPort, '/split', EchoHost), (r) => `${r.status} ${r.json?.pod ?? ''}`);
    const v1 = counts['200 echo-v1'] ?? 0;
    const v2 = counts['200 echo-v2'] ?? 0;
    assert.equal(v1 + v2, 400, JSON.stringify(counts));
    assert.ok(Math.abs(v1 / 4 - 80) <= 8, `v1 ${v1 / 4}% ${JSON.stringify(counts)}`);
  });

  test('sidecar: header match end-user: jason -> v2', async () => {
    const counts = await tally(30, 5, () => httpGet(sidecarPort, '/', EchoHost, { 'end-user': 'jason' }), (r) => `${r.status} ${r.json?.pod ?? ''}`);
    assert.deepEqual(counts, { '200 echo-v2': 30 });
  });

  test('sidecar: prefix rewrite /old/ -> /new/ as seen by the backend', async () => {
    const r = await httpGet(sidecarPort, '/old/thing?q=1', EchoHost);
    assert.equal(r.status, 200);
    assert.equal(r.json?.path, '/new/thing?q=1');
    assert.equal(r.json?.pod, 'echo-v1');
  });

  test('sidecar: fault abort 418 and fixed delay 1s', async () => {
    const a = await httpGet(sidecarPort, '/abort', EchoHost);
    assert.equal(a.status, 418);
    const d = await httpGet(sidecarPort, '/delay', EchoHost);
    assert.equal(d.status, 200);
    assert.ok(d.ms >= 950, `delay took ${d.ms} ms`);
  });

  test('sidecar: retries (503, 503, then 200) succeed within 3 attempts', async () => {
    const uuid = `u-${process.pid}-${Date.now()}`;
    const r = await httpGet(sidecarPort, `/retry/x?uuid=${uuid}&succeedAfter=2&responseCode=503`, EchoHost);
    assert.equal(r.status, 200, r.body);
    assert.equal(v1Log.filter((l) => l.includes(uuid)).length, 1, 'one successful attempt logged after two failures');
    assert.equal(r.json?.pod, 'echo-v1');
  });

  test('sidecar: mirroring sends a copy to the mirror service', async () => {
    const marker = `m-${Date.now()}`;
    const r = await httpGet(sidecarPort, `/mirror?${marker}`, EchoHost);
    assert.equal(r.status, 200);
    assert.equal(r.json?.pod, 'echo-v1');
    await waitFor('mirror backend logged the request', () => mirrorLog.some((l) => l.includes(marker)), 10_000);
  });

  test('gateway: header match + prefix rewrite, and a 50/50 split (200 requests, +-12 points)', async () => {
    const j = await httpGet(gatewayPort, '/api/items', 'shop.example.com', { 'end-user': 'jason' });
    assert.equal(j.status, 200);
    assert.equal(j.json?.pod, 'echo-v2');
    assert.equal(j.json?.path, '/items');
    const counts = await tally(200, 8, () => httpGet(gatewayPort, '/api/x', 'shop.example.com'), (r) => `${r.status} ${r.json?.pod ?? ''}`);
    const v1 = counts['200 echo-v1'] ?? 0;
    assert.equal(v1 + (counts['200 echo-v2'] ?? 0), 200, JSON.stringify(counts));
    assert.ok(Math.abs(v1 / 2 - 50) <= 12, JSON.stringify(counts));
    const miss = await httpGet(gatewayPort, '/api/x', 'other.example.com');
    assert.equal(miss.status, 404);
  });

  test('Istio\'s Prometheus queries on the stock Envoy sidecar: Envoy lacks istio.stats (no istio_* series), its own cluster stats count the traffic', async (t) => {
    const text = await (await fetch(`${sidecar.admin}/stats/prometheus`)).text();
    const samples = parsePrometheusText(text);
    const istio = samples.filter((x) => x.name.startsWith('istio_'));
    // Envoy's default tag extraction cuts the cluster name at its first dot, so
    // `cluster.outbound|8080|v1|echo.default.svc.cluster.local.upstream_rq_total` becomes
    // envoy_cluster_default_svc_cluster_local_upstream_rq_total{envoy_cluster_name="outbound|8080|v1|echo"}
    // (Istio's bootstrap fixes it with its own stats_tags); Istio's envoy_cluster_upstream_rq_total{cluster_name=...} finds nothing.
    const v1 = samples.filter((x) => x.name.endsWith('_upstream_rq_total') && x.labels.envoy_cluster_name === 'outbound|8080|v1|echo');
    const upstream = v1.reduce((a, x) => a + x.value, 0);
    t.diagnostic(`stock Envoy: istio_requests_total series ${select(samples, 'istio_requests_total').length}, istio_* series ${istio.length}; Istio's envoy_cluster_upstream_rq_total{cluster_name="outbound|8080|v1|${EchoHost}"}: ${select(samples, 'envoy_cluster_upstream_rq_total', { cluster_name: `outbound|8080|v1|${EchoHost}` }).length} series; Envoy's own: ${v1.map((x) => `${x.name}{envoy_cluster_name="${x.labels.envoy_cluster_name}"} ${x.value}`).join(', ')}`);
    assert.equal(istio.length, 0, 'the optional trellis.filters.http.stats filter was skipped: no Istio metrics');
    assert.equal(select(samples, 'envoy_cluster_upstream_rq_total', { cluster_name: `outbound|8080|v1|${EchoHost}` }).length, 0);
    assert.equal(select(samples, 'envoy_cluster_upstream_rq_total', { envoy_cluster_name: `outbound|8080|v1|${EchoHost}` }).length, 0);
    assert.ok(upstream > 0, 'Envoy counted the sidecar\'s requests to v1 under its own names');
  });
});
