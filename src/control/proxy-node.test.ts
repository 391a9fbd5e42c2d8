import { test } from 'node:test';
import assert from 'node:assert/strict';
import { proxyNodeFromXds } from './proxy-node.ts';

test('Istio-style node id gives kind, ip, namespace, workload', () => {
  const p = proxyNodeFromXds({ id: 'sidecar~10.1.2.3~reviews-v1-abc.bookinfo~bookinfo.svc.cluster.local' });
  assert.equal(p.kind, 'sidecar');
  assert.deepEqual(p.ips, ['10.1.2.3']);
  assert.equal(p.namespace, 'bookinfo');
  assert.equal(p.workloadName, 'reviews-v1-abc');
  assert.equal(p.serviceAccount, 'default');
});

test('metadata wins over the id and router means gateway', () => {
  const p = proxyNodeFromXds({
    id: 'router~10.0.0.1~gw.istio-system~istio-system.svc.cluster.local',
    metadata: { NAMESPACE: 'edge', LABELS: { app: 'gw', bad: 3 }, SERVICE_ACCOUNT: 'gw-sa', INSTANCE_IPS: '127.0.0.1, ::1', TRELLIS_CAPTURE_MODE: 'transparent' },
  });
  assert.equal(p.kind, 'router');
  assert.equal(p.namespace, 'edge');
  assert.deepEqual(p.labels, { app: 'gw' });
  assert.equal(p.serviceAccount, 'gw-sa');
  assert.deepEqual(p.ips, ['127.0.0.1', '::1']);
  assert.equal(p.captureMode, 'transparent');
});

test('a bare id falls back to defaults without throwing', () => {
  const p = proxyNodeFromXds({ id: 'grpc-client-1' });
  assert.equal(p.kind, 'sidecar');
  assert.equal(p.namespace, 'default');
  assert.equal(p.workloadName, 'grpc-client-1');
  assert.deepEqual(proxyNodeFromXds({}).id, '');
});
