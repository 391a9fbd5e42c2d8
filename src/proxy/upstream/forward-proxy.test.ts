import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCluster } from './cluster-config.ts';
import { authorityDestination } from './cluster.ts';

test('dynamic forward proxy cluster: accepted as Envoy writes it, other custom cluster types refused by name', () => {
  const c = parseCluster({
    name: 'DynamicForwardProxyCluster', connect_timeout: '10s', lb_policy: 'CLUSTER_PROVIDED',
    cluster_type: { name: 'envoy.clusters.dynamic_forward_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig', dns_cache_config: { name: 'c' } } },
  });
  assert.equal(c.dynamicForwardProxy, true);
  assert.equal(c.type, 'ORIGINAL_DST');
  assert.throws(() => parseCluster({ name: 'x', cluster_type: { name: 'envoy.clusters.aggregate' } }), /cluster_type\.name.*envoy\.clusters\.aggregate.*not supported/);
});

test('the destination of a forwarded request is its authority, port 80 (443 with TLS) by default', () => {
  assert.deepEqual(authorityDestination('api.example.com', 80), { address: 'api.example.com', port: 80 });
  assert.deepEqual(authorityDestination('API.example.com:8443', 80), { address: 'api.example.com', port: 8443 });
  assert.deepEqual(authorityDestination('[::1]:9000', 80), { address: '::1', port: 9000 });
  assert.deepEqual(authorityDestination('10.0.0.1', 443), { address: '10.0.0.1', port: 443 });
  for (const bad of ['', ':80', 'a:b', 'host:70000', 'a b']) assert.equal(authorityDestination(bad, 80), undefined, bad);
});
