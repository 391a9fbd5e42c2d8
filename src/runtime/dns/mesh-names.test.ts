import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openMeshNames } from './mesh-names.ts';
import { allocateVips } from '../../registry/vip.ts';

test('mesh names: Kubernetes search-path forms resolve to the auto-allocated VIP from the client namespace; config edits apply', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-names-'));
  writeFileSync(join(dir, 's.yaml'), `apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: shop }
spec: { selector: { app: reviews }, ports: [{ name: http, port: 9080 }] }
`);
  const names = await openMeshNames([dir], (ip) => (ip === '10.212.0.2' ? 'shop' : 'other'));
  try {
    const vip = allocateVips([{ namespace: 'shop', name: 'reviews' }]).get('shop/reviews')!;
    for (const n of ['reviews.shop.svc.cluster.local', 'reviews.shop.svc', 'reviews.shop']) assert.deepEqual(names.resolve(n, '10.212.0.9'), [vip], n);
    assert.deepEqual(names.resolve('reviews', '10.212.0.2'), [vip], 'short name from the same namespace');
    assert.equal(names.resolve('reviews', '10.212.0.9'), undefined, 'short name from another namespace');
    assert.equal(names.resolve('reviews.shop.svc.cluster.local.shop.svc.cluster.local', '10.212.0.2'), undefined);
    assert.equal(names.resolve('example.com', '10.212.0.2'), undefined);
    writeFileSync(join(dir, 't.yaml'), `apiVersion: v1
kind: Service
metadata: { name: ratings, namespace: shop }
spec: { clusterIP: 10.96.0.10, ports: [{ name: http, port: 9080 }] }
`);
    const deadline = Date.now() + 5000;
    while (names.resolve('ratings.shop', '10.212.0.2') === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(names.resolve('ratings.shop', '10.212.0.2'), ['10.96.0.10']);
  } finally {
    await names.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
