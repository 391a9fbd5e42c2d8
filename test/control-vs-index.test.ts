/**
 * The sidecar route builder's VirtualService host index (added for the control-plane benchmark's
 * top frame) must answer exactly as the linear `virtualServiceForHost` scan: exact host beats
 * wildcard, the earliest candidate wins among equals, short names resolve in the VS namespace.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VirtualServiceHostIndex, virtualServiceForHost } from '../src/control/translate/routes/virtual-service.ts';
import type { VirtualServiceResource } from '../src/control/translate/routes/types.ts';

function vs(name: string, namespace: string, hosts: string[]): VirtualServiceResource {
  return { metadata: { name, namespace }, spec: { hosts } } as unknown as VirtualServiceResource;
}

test('VirtualServiceHostIndex answers like virtualServiceForHost', () => {
  const candidates = [
    vs('wild-ns', 'a', ['*.a.svc.cluster.local']),
    vs('short', 'a', ['reviews']),
    vs('dup', 'b', ['reviews.a.svc.cluster.local', 'Ratings.B.svc.cluster.local']),
    vs('ext', 'a', ['api.example.com', '*.example.com']),
    vs('all', 'c', ['*']),
    vs('ratings', 'b', ['ratings']),
  ];
  const hosts = [
    'reviews.a.svc.cluster.local', 'ratings.b.svc.cluster.local', 'RATINGS.b.svc.cluster.local', 'details.a.svc.cluster.local',
    'api.example.com', 'www.example.com', 'example.com', 'nothing.c.svc.cluster.local', '*.example.com',
  ];
  for (const order of [candidates, [...candidates].reverse(), candidates.slice(1, 4), []]) {
    const index = new VirtualServiceHostIndex(order, 'cluster.local');
    for (const h of hosts) {
      assert.equal(index.forHost(h)?.metadata.name, virtualServiceForHost(order, h, 'cluster.local')?.metadata.name, `host ${h}`);
    }
  }
});
