/**
 * Istio's standard metrics end to end: a client calls `backend` through its sidecar (frontend-1),
 * which talks mTLS to backend-1's sidecar (both with mesh certificates and two worker processes, so
 * the scrape sums workers). Both sidecars' `/stats/prometheus` must label the same requests the same
 * way, as Istio's do: reporter, workloads from the metadata exchange, principals from the verified
 * certificates, destination_service from the control plane's cluster metadata, Istio's buckets,
 * and Envoy-named internals. The application never sees the exchange headers, and an application
 * cannot pose as another workload by sending them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startMtlsMesh, type MtlsMesh } from './support/mtls-mesh.ts';
import { httpGet } from './support/features.ts';
import { scrape, select, sumOf } from './support/prom-text.ts';
import { waitFor } from './support/mesh.ts';
import { IstioBuckets, HttpLabelNames } from '../src/telemetry/istio-metrics.ts';
import { encodePeerMetadata } from '../src/telemetry/peer-metadata.ts';

let mesh: MtlsMesh;
const N = 20;

before(async () => {
  mesh = await startMtlsMesh({ concurrency: 2 });
  await waitFor('frontend reaches backend over mTLS', async () => (await httpGet(mesh.outboundPort, '/warm', { host: 'backend:8080' })).status === 200, 60_000, 100);
});

after(async () => {
  await mesh?.close();
});

test('both sidecars count the same requests with Istio\'s labels', { timeout: 120_000 }, async () => {
  const before = sumOf(await scrape(mesh.backend.ports.prometheus), 'istio_requests_total', { reporter: 'destination' });
  const spoof = encodePeerMetadata({ WORKLOAD_NAME: 'impostor', NAMESPACE: 'evil', LABELS: { app: 'impostor' } });
  for (let i = 0; i < N; i++) {
    // The application's own exchange headers are replaced by its sidecar's.
    const r = await httpGet(mesh.outboundPort, `/n/${i}`, { host: 'backend:8080', 'x-envoy-peer-metadata': spoof, 'x-envoy-peer-metadata-id': 'impostor' });
    assert.equal(r.status, 200);
  }
  const seen = mesh.appLastHeaders();
  assert.equal(seen['x-envoy-peer-metadata'], undefined, 'the app must not see the exchange headers');
  assert.equal(seen['x-envoy-peer-metadata-id'], undefined);

  const dst = await waitFor('destination-side count', async () => {
    const s = await scrape(mesh.backend.ports.prometheus);
    return sumOf(s, 'istio_requests_total', { reporter: 'destination' }) - before >= N ? s : undefined;
  }, 20_000, 100);
  const series = select(dst, 'istio_requests_total', { reporter: 'destination', source_workload: 'frontend-1' });
  assert.equal(series.length, 1, JSON.stringify(select(dst, 'istio_requests_total')));
  const l = series[0].labels;
  assert.deepEqual(Object.keys(l).sort(), [...HttpLabelNames].sort());
  assert.ok(series[0].value >= N, `count ${series[0].value}`);
  assert.deepEqual({ ...l }, {
    reporter: 'destination',
    source_workload: 'frontend-1', source_workload_namespace: 'default', source_app: 'frontend', source_version: 'unknown',
    source_canonical_service: 'frontend', source_canonical_revision: 'latest', source_cluster: 'Kubernetes',
    source_principal: 'spiffe://cluster.local/ns/default/sa/frontend',
    destination_workload: 'backend-1', destination_workload_namespace: 'default', destination_app: 'backend', destination_version: 'unknown',
    destination_canonical_service: 'backend', destination_canonical_revision: 'latest', destination_cluster: 'Kubernetes',
    destination_principal: 'spiffe://cluster.local/ns/default/sa/backend',
    destination_service: 'backend.default.svc.cluster.local', destination_service_name: 'backend', destination_service_namespace: 'default',
    request_protocol: 'http', response_code: '200', grpc_response_status: '', response_flags: '-', connection_security_policy: 'mutual_tls',
  });
  assert.equal(sumOf(dst, 'istio_requests_total', { source_workload: 'impostor' }), 0);

  const src = await scrape(mesh.frontend.ports.prometheus);
  const out = select(src, 'istio_requests_total', { reporter: 'source', destination_service: 'backend.default.svc.cluster.local' });
  assert.equal(out.length, 1, JSON.stringify(select(src, 'istio_requests_total')));
  assert.ok(out[0].value >= N);
  assert.equal(out[0].labels.source_workload, 'frontend-1');
  assert.equal(out[0].labels.destination_workload, 'backend-1', 'destination learned from the response exchange header');
  assert.equal(out[0].labels.destination_app, 'backend');
  assert.equal(out[0].labels.connection_security_policy, 'unknown');
  assert.equal(out[0].labels.destination_principal, 'spiffe://cluster.local/ns/default/sa/backend', 'from the upstream connection\'s verified certificate');
  assert.equal(out[0].labels.source_principal, 'unknown');

  // Histograms with Istio's (Envoy's default) buckets; count equals the counter.
  const buckets = select(dst, 'istio_request_duration_milliseconds_bucket', { source_workload: 'frontend-1' }).map((s) => s.labels.le);
  assert.deepEqual(buckets, [...IstioBuckets.map(String), '+Inf']);
  assert.equal(sumOf(dst, 'istio_request_duration_milliseconds_count', { source_workload: 'frontend-1' }), series[0].value);
  assert.equal(sumOf(dst, 'istio_response_bytes_count', { source_workload: 'frontend-1' }), series[0].value);
  assert.ok(sumOf(dst, 'istio_response_bytes_sum', { source_workload: 'frontend-1' }) > 0);

  // Envoy's internals keep Envoy's names, with Istio's cluster_name tag.
  assert.ok(sumOf(src, 'envoy_cluster_upstream_rq_total', { cluster_name: 'outbound|8080||backend.default.svc.cluster.local' }) >= N);
});

test('the control plane serves istiod\'s pilot_* metrics on /metrics; proxies count their xds-grpc connection', { timeout: 120_000 }, async () => {
  const cp = () => scrape(mesh.cp.debugPort, '/metrics');
  const s0 = await cp();
  assert.equal(sumOf(s0, 'pilot_xds'), 2, 'two sidecars connected');
  assert.ok(sumOf(s0, 'pilot_xds_pushes', { type: 'cds' }) >= 2);
  assert.ok(sumOf(s0, 'pilot_xds_config_size_bytes_count', { type: 'lds' }) >= 2);
  assert.ok(sumOf(s0, 'pilot_xds_push_time_count', { type: 'cds' }) >= 2);
  assert.equal(sumOf(s0, 'istio_build', { component: 'pilot', tag: '0.1.0' }), 1);
  assert.equal(select(s0, 'pilot_total_xds_internal_errors').length, 1);
  // A config change: an event by kind, a push trigger, and the proxies converging.
  mesh.cp.write('dr.yaml', 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: backend, namespace: default}\nspec:\n  host: backend\n  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n');
  const s1 = await waitFor('convergence after a change', async () => {
    const s = await cp();
    return sumOf(s, 'pilot_proxy_convergence_time_count') >= 2 ? s : undefined;
  }, 30_000, 200);
  assert.equal(sumOf(s1, 'pilot_k8s_cfg_events', { type: 'DestinationRule', event: 'add' }), 1);
  assert.ok(sumOf(s1, 'pilot_push_triggers', { type: 'config' }) >= 1);
  for (const proxy of [mesh.frontend, mesh.backend]) {
    const p = await scrape(proxy.ports.prometheus);
    assert.equal(sumOf(p, 'envoy_cluster_upstream_cx_active', { cluster_name: 'xds-grpc' }), 1);
    assert.ok(sumOf(p, 'envoy_cluster_manager_cds_update_success') >= 1);
  }
});
