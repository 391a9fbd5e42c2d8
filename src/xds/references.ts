/**
 * The names one xDS resource refers to in another type, the one home of that rule for the control
 * plane and the proxy alike (go-control-plane's `GetResourceReferences`): the EDS name a cluster's
 * endpoints are requested by, the RDS names a listener's HTTP connection managers load, and the
 * clusters routes and TCP proxies send to. The consistency check (`consistency.ts`), the ADS
 * server's warming hold, the ADS client's follow-up subscriptions, the proxy's cluster parser and
 * the route simulator all read names through here, so they cannot disagree (they once did, on an
 * empty `service_name`). Read from the JSON form of resources (see types.ts); malformed parts are
 * passed over, never thrown on: validating them is the codec's and the proxy's job.
 */
import type { XdsJson } from './types.ts';

/** `typed_config` type of the HTTP connection manager network filter. */
export const HcmType = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
/** `typed_config` type of the TCP proxy network filter. */
export const TcpProxyType = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
}
function objects(v: unknown): Json[] {
  return Array.isArray(v) ? (v.filter((x) => obj(x) !== undefined) as Json[]) : [];
}

/**
 * The ClusterLoadAssignment name a cluster's endpoints are requested by over EDS:
 * `eds_cluster_config.service_name`, or the cluster's own name when that is unset or empty (Envoy
 * reads an empty string as unset). Meaningful for `type: EDS` clusters.
 */
export function edsServiceName(cluster: XdsJson): string {
  const service = obj(cluster.eds_cluster_config)?.service_name;
  if (typeof service === 'string' && service !== '') return service;
  return typeof cluster.name === 'string' ? cluster.name : '';
}

/** True for a cluster whose endpoints come from EDS. */
export function isEdsCluster(cluster: XdsJson): boolean {
  return cluster.type === 'EDS';
}

/** The EDS names the given clusters need (their `edsServiceName`, EDS clusters only). */
export function edsNamesOf(clusters: Iterable<XdsJson>): Set<string> {
  const names = new Set<string>();
  for (const c of clusters) {
    if (!isEdsCluster(c)) continue;
    const name = edsServiceName(c);
    if (name !== '') names.add(name);
  }
  return names;
}

/**
 * A listener's network filters, each as `{ name, typed_config }`: those of every filter chain, of
 * the default chain, and the HTTP connection manager of an API listener (proxyless gRPC).
 */
export function listenerFilters(listener: XdsJson): Json[] {
  const out: Json[] = [];
  const chains = [...objects(listener.filter_chains)];
  const fallback = obj(listener.default_filter_chain);
  if (fallback !== undefined) chains.push(fallback);
  for (const chain of chains) out.push(...objects(chain.filters));
  const api = obj(obj(listener.api_listener)?.api_listener);
  if (api !== undefined) out.push({ name: 'envoy.filters.network.http_connection_manager', typed_config: api });
  return out;
}

/** The HTTP connection manager config of a network filter, if it is one. */
export function hcmOf(filter: Json): Json | undefined {
  const tc = obj(filter.typed_config);
  return tc !== undefined && tc['@type'] === HcmType ? tc : undefined;
}

/** The RDS name an HTTP connection manager config loads its routes by, if it uses RDS. */
export function rdsNameOf(hcm: Json): string | undefined {
  const name = obj(hcm.rds)?.route_config_name;
  return typeof name === 'string' ? name : undefined;
}

/** The RDS names the given listeners' HTTP connection managers load. */
export function rdsNamesOf(listeners: Iterable<XdsJson>): Set<string> {
  const names = new Set<string>();
  for (const l of listeners) {
    for (const f of listenerFilters(l)) {
      const hcm = hcmOf(f);
      const name = hcm === undefined ? undefined : rdsNameOf(hcm);
      if (name !== undefined) names.add(name);
    }
  }
  return names;
}

/** Clusters a route action (or TCP proxy config) sends to: `cluster`, `weighted_clusters`, mirrors. */
export function routeActionClusters(action: Json): string[] {
  const out: string[] = [];
  if (typeof action.cluster === 'string') out.push(action.cluster);
  for (const c of objects(obj(action.weighted_clusters)?.clusters)) if (typeof c.name === 'string') out.push(c.name);
  for (const m of objects(action.request_mirror_policies)) if (typeof m.cluster === 'string') out.push(m.cluster);
  return out;
}

/** Clusters the routes of a route configuration send to. */
export function routeConfigClusters(routeConfig: Json): string[] {
  const out: string[] = [];
  for (const vh of objects(routeConfig.virtual_hosts)) {
    for (const r of objects(vh.routes)) {
      const action = obj(r.route);
      if (action !== undefined) out.push(...routeActionClusters(action));
    }
  }
  return out;
}

/** The TCP proxy config of a network filter, if it is one. */
export function tcpProxyOf(filter: Json): Json | undefined {
  const tc = obj(filter.typed_config);
  return tc !== undefined && tc['@type'] === TcpProxyType ? tc : undefined;
}

/** Clusters a listener sends to directly: TCP proxies' clusters and inline route configurations'. */
export function listenerClusters(listener: XdsJson): string[] {
  const out: string[] = [];
  for (const f of listenerFilters(listener)) {
    const tcp = tcpProxyOf(f);
    if (tcp !== undefined) out.push(...routeActionClusters(tcp));
    const inline = obj(hcmOf(f)?.route_config);
    if (inline !== undefined) out.push(...routeConfigClusters(inline));
  }
  return out;
}
