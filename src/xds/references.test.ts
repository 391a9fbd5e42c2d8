import assert from 'node:assert/strict';
import { test } from 'node:test';
import { edsNamesOf, edsServiceName, listenerClusters, rdsNamesOf, routeConfigClusters, HcmType, TcpProxyType } from './references.ts';

test('edsServiceName: service_name when set, the cluster name when unset or empty (as Envoy)', () => {
  assert.equal(edsServiceName({ name: 'c', type: 'EDS', eds_cluster_config: { service_name: 'svc' } }), 'svc');
  assert.equal(edsServiceName({ name: 'c', type: 'EDS', eds_cluster_config: { service_name: '' } }), 'c');
  assert.equal(edsServiceName({ name: 'c', type: 'EDS', eds_cluster_config: {} }), 'c');
  assert.equal(edsServiceName({ name: 'c', type: 'EDS' }), 'c');
});

test('edsNamesOf: EDS clusters only', () => {
  const names = edsNamesOf([
    { name: 'a', type: 'EDS', eds_cluster_config: { service_name: '' } },
    { name: 'b', type: 'EDS', eds_cluster_config: { service_name: 'svc-b' } },
    { name: 'static', type: 'STATIC', eds_cluster_config: { service_name: 'never' } },
  ]);
  assert.deepEqual([...names].sort(), ['a', 'svc-b']);
});

test('rdsNamesOf: HTTP connection managers of every chain, the default chain and an API listener', () => {
  const hcm = (name: string) => ({ name: 'hcm', typed_config: { '@type': HcmType, rds: { route_config_name: name } } });
  const names = rdsNamesOf([
    { name: 'l', filter_chains: [{ filters: [hcm('one')] }, { filters: [{ name: 'tcp', typed_config: { '@type': TcpProxyType, cluster: 'x' } }] }], default_filter_chain: { filters: [hcm('two')] } },
    { name: 'xds:///svc', api_listener: { api_listener: { '@type': HcmType, rds: { route_config_name: 'three' } } } },
    { name: 'not-hcm', filter_chains: [{ filters: [{ name: 'other', typed_config: { '@type': 'type.googleapis.com/x.Y', rds: { route_config_name: 'never' } } }] }] },
  ]);
  assert.deepEqual([...names].sort(), ['one', 'three', 'two']);
});

test('clusters of routes (cluster, weighted, mirrors) and of listeners (TCP proxy, inline routes)', () => {
  const rc = {
    virtual_hosts: [{ routes: [
      { route: { cluster: 'a', request_mirror_policies: [{ cluster: 'm' }] } },
      { route: { weighted_clusters: { clusters: [{ name: 'b', weight: 1 }, { name: 'c', weight: 1 }] } } },
      { direct_response: { status: 404 } },
    ] }],
  };
  assert.deepEqual(routeConfigClusters(rc), ['a', 'm', 'b', 'c']);
  const l = {
    name: 'l',
    filter_chains: [
      { filters: [{ name: 'tcp', typed_config: { '@type': TcpProxyType, weighted_clusters: { clusters: [{ name: 't1', weight: 1 }] } } }] },
      { filters: [{ name: 'hcm', typed_config: { '@type': HcmType, route_config: rc } }] },
    ],
  };
  assert.deepEqual(listenerClusters(l), ['t1', 'a', 'm', 'b', 'c']);
});
