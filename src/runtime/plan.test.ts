import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { planRuntime, proxyConcurrencyOf, appMetricsOf } from './plan.ts';
import type { Resource } from '../config/resource.ts';
import { ResourceTypes } from '../config/resource.ts';

const meta = (annotations: Record<string, string> = {}) => ({ metadata: { name: 'w', namespace: 'default', labels: {}, annotations } });

test("a Workload's proxy.istio.io/config concurrency sets its sidecar workers (0 = one per core, as in Istio)", () => {
  assert.equal(proxyConcurrencyOf(meta()), undefined);
  assert.equal(proxyConcurrencyOf(meta({ 'proxy.istio.io/config': 'concurrency: 2' })), 2);
  assert.equal(proxyConcurrencyOf(meta({ 'proxy.istio.io/config': '{"concurrency": 3, "holdApplicationUntilProxyStarts": true}' })), 3);
  assert.equal(proxyConcurrencyOf(meta({ 'proxy.istio.io/config': 'concurrency: 0' })), Math.min(64, availableParallelism()));
  assert.equal(proxyConcurrencyOf(meta({ 'proxy.istio.io/config': 'tracing: {}' })), undefined);
  assert.throws(() => proxyConcurrencyOf(meta({ 'proxy.istio.io/config': 'concurrency: two' })), /Workload default\/w: annotation proxy\.istio\.io\/config: concurrency must be an integer 0\.\.64/);
  assert.throws(() => proxyConcurrencyOf(meta({ 'proxy.istio.io/config': 'concurrency: [' })), /is not YAML/);
});

test('a Workload runs in the directory of its file, or workingDir relative to it', () => {
  const workload = (file: string, workingDir?: string): Resource => ({
    type: ResourceTypes.Workload, apiVersion: 'trellis.dev/v1alpha1', kind: 'Workload',
    metadata: { name: 'w', namespace: 'default', labels: { app: 'w' }, annotations: {} },
    spec: { replicas: 1, command: ['x'], env: {}, ports: [], serviceAccount: 'default', captureMode: 'explicit', ...(workingDir !== undefined ? { workingDir } : {}) },
    source: { file, line: 1 },
  });
  const [a, b, c] = planRuntime([workload('/srv/mesh/apps.yaml'), workload('/srv/mesh/apps.yaml', 'bin'), workload('/srv/mesh/apps.yaml', '/opt/app')]).workloads;
  assert.equal(a.workingDir, '/srv/mesh');
  assert.equal(b.workingDir, join('/srv/mesh', 'bin'));
  assert.equal(c.workingDir, '/opt/app');
});

test("a Workload's prometheus.io annotations name the app metrics its sidecar merges (Istio's metrics merging)", () => {
  assert.deepEqual(appMetricsOf(meta({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080' }), [8080]), { port: 8080, path: '/metrics' });
  assert.deepEqual(appMetricsOf(meta({ 'prometheus.io/scrape': 'TRUE', 'prometheus.io/port': '9090', 'prometheus.io/path': 'stats' }), [8080, 9090]), { port: 9090, path: '/stats' });
  assert.equal(appMetricsOf(meta({ 'prometheus.io/scrape': 'false', 'prometheus.io/port': '8080' }), [8080]), undefined);
  assert.equal(appMetricsOf(meta({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080', 'prometheus.istio.io/merge-metrics': 'false' }), [8080]), undefined);
  assert.equal(appMetricsOf(meta({ 'prometheus.io/scrape': 'true' }), [8080]), undefined, 'no port: nothing to merge');
  assert.throws(() => appMetricsOf(meta({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': 'http' }), [8080]), /Workload default\/w: annotation prometheus\.io\/port must be a port number, got 'http'/);
});
