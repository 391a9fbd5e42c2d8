import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSnapshot } from './snapshot.ts';
import { resourcesFromYaml, sourceOf } from '../../registry/test-support.ts';

const svc = resourcesFromYaml(`
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { ports: [{ name: http, port: 9080 }] }
`);

test('mesh autoAllocateVips reaches the registry, and toggling it rebuilds the registry', () => {
  const src = sourceOf(svc);
  const off = buildSnapshot(src);
  assert.deepEqual(off.registry.service('reviews.default.svc.cluster.local')!.addresses, []);
  const on = buildSnapshot(src, { mesh: { autoAllocateVips: true } }, off);
  assert.match(on.registry.service('reviews.default.svc.cluster.local')!.addresses[0], /^240\.240\./);
});
