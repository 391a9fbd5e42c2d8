import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { planRuntime, proxyConcurrencyOf } from './plan.ts';
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
