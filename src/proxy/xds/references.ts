/**
 * What one xDS type makes the proxy ask for next: the EDS names its clusters need and the RDS
 * names its listeners need. Read from the JSON form of the resources (see src/xds/types.ts), so
 * the ADS client can update its subscriptions right after accepting a CDS or LDS update.
 */
import type { XdsJson } from '../../xds/types.ts';

const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** EDS service names the given clusters subscribe to (`eds_cluster_config.service_name`, else the cluster name). */
export function edsNamesOf(clusters: Iterable<XdsJson>): Set<string> {
  const names = new Set<string>();
  for (const c of clusters) {
    if (c.type !== 'EDS') continue;
    const eds = isObject(c.eds_cluster_config) ? c.eds_cluster_config : {};
    const service = typeof eds.service_name === 'string' && eds.service_name !== '' ? eds.service_name : c.name;
    if (typeof service === 'string') names.add(service);
  }
  return names;
}

function rdsNameOfHcm(hcm: unknown): string | undefined {
  if (!isObject(hcm) || hcm['@type'] !== HCM_TYPE || !isObject(hcm.rds)) return undefined;
  const name = hcm.rds.route_config_name;
  return typeof name === 'string' ? name : undefined;
}

/** RDS route configuration names referenced by HTTP connection managers in the given listeners. */
export function rdsNamesOf(listeners: Iterable<XdsJson>): Set<string> {
  const names = new Set<string>();
  const visitChain = (chain: unknown) => {
    if (!isObject(chain) || !Array.isArray(chain.filters)) return;
    for (const f of chain.filters) {
      if (!isObject(f)) continue;
      const n = rdsNameOfHcm(f.typed_config);
      if (n !== undefined) names.add(n);
    }
  };
  for (const l of listeners) {
    if (Array.isArray(l.filter_chains)) l.filter_chains.forEach(visitChain);
    visitChain(l.default_filter_chain);
    if (isObject(l.api_listener)) {
      const n = rdsNameOfHcm(l.api_listener.api_listener);
      if (n !== undefined) names.add(n);
    }
  }
  return names;
}
