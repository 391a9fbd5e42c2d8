import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocateVips } from './vip.ts';
import { buildRegistry } from './registry.ts';
import { resourcesFromYaml, sourceOf } from './test-support.ts';

test('allocateVips: deterministic, inside 240.240.0.0/16, distinct, independent of input order', () => {
  const reqs = Array.from({ length: 300 }, (_, i) => ({ namespace: `ns${i % 7}`, name: `svc${i}` }));
  const a = allocateVips(reqs);
  const b = allocateVips([...reqs].reverse());
  assert.deepEqual([...a].sort(), [...b].sort());
  assert.equal(new Set(a.values()).size, 300);
  for (const ip of a.values()) {
    assert.match(ip, /^240\.240\.\d+\.\d+$/);
    assert.notEqual(ip, '240.240.0.0');
    assert.notEqual(ip, '240.240.255.255');
  }
});

test('allocateVips: a taken address is never handed out (collision probes forward)', () => {
  const one = allocateVips([{ namespace: 'default', name: 'reviews' }]);
  const ip = one.get('default/reviews')!;
  const again = allocateVips([{ namespace: 'default', name: 'reviews' }], new Set([ip]));
  assert.notEqual(again.get('default/reviews'), ip);
  assert.match(again.get('default/reviews')!, /^240\.240\./);
});

const yaml = `
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { ports: [{ name: http, port: 9080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: ratings, namespace: default }
spec: { clusterIP: 10.0.0.7, ports: [{ name: http, port: 9080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: headless, namespace: default }
spec: { clusterIP: None, ports: [{ name: tcp, port: 5432 }] }
`;

test('registry: autoAllocateVips gives Services without clusterIP a VIP; explicit and headless ones unchanged; off by default', () => {
  const src = sourceOf(resourcesFromYaml(yaml));
  const off = buildRegistry(src);
  assert.deepEqual(off.service('reviews.default.svc.cluster.local')!.addresses, []);
  const on = buildRegistry(src, { autoAllocateVips: true });
  const vip = allocateVips([{ namespace: 'default', name: 'reviews' }], new Set(['10.0.0.7'])).get('default/reviews');
  assert.deepEqual(on.service('reviews.default.svc.cluster.local')!.addresses, [vip]);
  assert.deepEqual(on.service('ratings.default.svc.cluster.local')!.addresses, ['10.0.0.7']);
  assert.deepEqual(on.service('headless.default.svc.cluster.local')!.addresses, []);
  assert.equal(on.service('headless.default.svc.cluster.local')!.resolution, 'NONE');
});
