import assert from 'node:assert/strict';
import { test } from 'node:test';
import { consistencyProblems } from './consistency.ts';
import { HcmType, TcpProxyType } from './references.ts';
import { TypeUrl, type XdsJson, type XdsResourceSet, type XdsTypeUrl } from './types.ts';

function set(parts: Partial<Record<XdsTypeUrl, XdsJson[]>>): XdsResourceSet {
  return new Map(Object.entries(parts).map(([t, list]) => [t as XdsTypeUrl, new Map(list!.map((r) => [String(r.name ?? r.cluster_name), r]))]));
}

test('a consistent set has no problems', () => {
  assert.deepEqual(consistencyProblems(new Map()), []);
  assert.deepEqual(consistencyProblems(set({
    [TypeUrl.Listener]: [{ name: 'l', filter_chains: [{ filters: [{ name: 'hcm', typed_config: { '@type': HcmType, rds: { route_config_name: 'r' } } }] }] }],
    [TypeUrl.RouteConfiguration]: [{ name: 'r', virtual_hosts: [{ routes: [{ route: { cluster: 'c' } }] }] }],
    [TypeUrl.Cluster]: [{ name: 'c', type: 'EDS', eds_cluster_config: { service_name: '' } }],
    [TypeUrl.ClusterLoadAssignment]: [{ cluster_name: 'c' }],
  })), []);
});

test('missing route configurations, clusters and assignments, and orphan assignments are reported', () => {
  const problems = consistencyProblems(set({
    [TypeUrl.Listener]: [
      { name: 'l', filter_chains: [{ filters: [
        { name: 'hcm', typed_config: { '@type': HcmType, rds: { route_config_name: 'missing' } } },
        { name: 'tcp', typed_config: { '@type': TcpProxyType, cluster: 'gone' } },
      ] }] },
    ],
    [TypeUrl.RouteConfiguration]: [{ name: 'r', virtual_hosts: [{ routes: [{ route: { weighted_clusters: { clusters: [{ name: 'x', weight: 1 }] } } }] }] }],
    [TypeUrl.Cluster]: [{ name: 'eds', type: 'EDS', eds_cluster_config: { service_name: 'eds-svc' } }],
    [TypeUrl.ClusterLoadAssignment]: [{ cluster_name: 'orphan' }],
  }));
  assert.deepEqual(problems, [
    "listener l: route configuration 'missing' is not in the set",
    "listener l: cluster 'gone' is not in the set",
    "route configuration r: cluster 'x' is not in the set",
    "cluster eds: ClusterLoadAssignment 'eds-svc' is not in the set",
    'ClusterLoadAssignment orphan: no EDS cluster asks for it',
  ]);
});

test('an empty service_name means the cluster name, as in Envoy', () => {
  const s = set({
    [TypeUrl.Cluster]: [{ name: 'c', type: 'EDS', eds_cluster_config: { service_name: '' } }],
    [TypeUrl.ClusterLoadAssignment]: [{ cluster_name: '' }],
  });
  assert.deepEqual(consistencyProblems(s), ["cluster c: ClusterLoadAssignment 'c' is not in the set", "ClusterLoadAssignment : no EDS cluster asks for it"]);
});
