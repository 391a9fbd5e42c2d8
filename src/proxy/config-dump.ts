/**
 * Envoy-shaped `/config_dump` from what the xDS client accepted: a BootstrapConfigDump with the
 * node, then Clusters, Listeners, Routes (and with `include_eds`, Endpoints) config dumps with
 * `version_info` and `last_updated`, the shape `istioctl proxy-config` and Envoy users read.
 */
import type { XdsJson, XdsTypeUrl } from '../xds/types.ts';
import { TypeUrl } from '../xds/types.ts';
import type { TypeState } from './xds-client/ads-client.ts';
import type { NodeJson } from '../xds/ads-wire.ts';

const admin = 'type.googleapis.com/envoy.admin.v3';

export function buildConfigDump(node: NodeJson, state: ReadonlyMap<XdsTypeUrl, Readonly<TypeState>>, opts: { includeEds: boolean }): { configs: XdsJson[] } {
  const at = (t: XdsTypeUrl) => state.get(t);
  const updated = (s: Readonly<TypeState> | undefined) => (s?.lastUpdate ? new Date(s.lastUpdate).toISOString() : undefined);
  const typed = (t: XdsTypeUrl, r: XdsJson) => ({ '@type': t, ...r });
  const cds = at(TypeUrl.Cluster);
  const lds = at(TypeUrl.Listener);
  const rds = at(TypeUrl.RouteConfiguration);
  const eds = at(TypeUrl.ClusterLoadAssignment);
  const configs: XdsJson[] = [
    { '@type': `${admin}.BootstrapConfigDump`, bootstrap: { node } },
    {
      '@type': `${admin}.ClustersConfigDump`,
      version_info: cds?.version ?? '',
      dynamic_active_clusters: [...(cds?.resources.values() ?? [])].map((c) => ({ version_info: cds?.version, cluster: typed(TypeUrl.Cluster, c), last_updated: updated(cds) })),
    },
    {
      '@type': `${admin}.ListenersConfigDump`,
      version_info: lds?.version ?? '',
      dynamic_listeners: [...(lds?.resources.entries() ?? [])].map(([name, l]) => ({ name, active_state: { version_info: lds?.version, listener: typed(TypeUrl.Listener, l), last_updated: updated(lds) } })),
    },
    {
      '@type': `${admin}.RoutesConfigDump`,
      dynamic_route_configs: [...(rds?.resources.values() ?? [])].map((r) => ({ version_info: rds?.version, route_config: typed(TypeUrl.RouteConfiguration, r), last_updated: updated(rds) })),
    },
  ];
  if (opts.includeEds) {
    configs.push({
      '@type': `${admin}.EndpointsConfigDump`,
      dynamic_endpoint_configs: [...(eds?.resources.values() ?? [])].map((e) => ({ version_info: eds?.version, endpoint_config: typed(TypeUrl.ClusterLoadAssignment, e), last_updated: updated(eds) })),
    });
  }
  return { configs };
}
