/**
 * translate(snapshot, proxy): every xDS resource one proxy receives, as a pure function of its
 * two arguments (no clock, environment or globals; equal inputs give equal outputs, so the pair
 * is the cache key). Assembles the per-type modules: scope -> clusters -> endpoints -> listeners
 * (sidecar, gateway or proxyless gRPC) -> routes (via `routes/`) -> secrets, then repairs
 * dangling route clusters and checks consistency (src/xds/consistency.ts) before returning.
 */
import { TrellisError } from '../../errors.ts';
import { TypeUrl } from '../../xds/types.ts';
import type { XdsJson, XdsResourceSet, XdsTypeUrl } from '../../xds/types.ts';
import type { MeshSnapshot } from '../snapshot/snapshot.ts';
import type { ProxyNode } from '../proxy-node.ts';
import { proxyScope } from './scope.ts';
import { catchAllClusters, dynamicForwardProxyCluster, inboundCluster, inboundPorts, outboundCluster, planOutboundClusters, sharedPerSnapshot } from './clusters.ts';
import { loadAssignment } from './endpoints.ts';
import { proxyLocality } from './identity.ts';
import { sidecarListeners, usesForwardProxy } from './listeners-sidecar.ts';
import type { RouteRequest } from './listeners-sidecar.ts';
import { gatewayListeners } from './listeners-gateway.ts';
import type { GatewayRouteRequest } from './listeners-gateway.ts';
import { isProxyless, proxylessCluster, proxylessListeners, proxylessRouteConfig } from './listeners-grpc.ts';
import { buildRoutes, routeInputs } from './route-bridge.ts';
import { secretsFor } from './secrets.ts';
import { sdsNamesOf } from '../../xds/sds-names.ts';
import { repairRouteClusters } from './dangling-clusters.ts';
import { consistencyProblems } from '../../xds/consistency.ts';
import { addHashPolicies, hashPolicyFor } from './cluster-policy.ts';
import { parseOutboundClusterName } from './names.ts';
import { securityFilters, withSecurity } from './security/index.ts';
import { accessLogsFor, metricOverridesFor, tracingFor, type TrafficSide } from './telemetry.ts';
import { applyTelemetry, collectorClusters, type SideTelemetry } from './telemetry-listeners.ts';

export { hashPolicyFor } from './cluster-policy.ts';
export { isProxyless } from './listeners-grpc.ts';
export { HttpProxyRouteName } from './listeners-sidecar.ts';

function byName(list: readonly XdsJson[]): Map<string, XdsJson> {
  const m = new Map<string, XdsJson>();
  for (const r of list) m.set(String(r.name ?? r.cluster_name), r);
  return m;
}

/** Every resource `proxy` is sent for `snapshot`; throws TRANSLATE_INCONSISTENT only on an internal bug. */
export function translate(snapshot: MeshSnapshot, proxy: ProxyNode): XdsResourceSet {
  const scope = proxyScope(snapshot, proxy);
  const proxyless = proxy.kind === 'sidecar' && isProxyless(proxy);
  const plan = planOutboundClusters(snapshot, proxy, scope);
  const mx = proxy.metadataExchange && !proxyless;
  const cluster = (c: (typeof plan)[number]) => sharedPerSnapshot(snapshot, `cds|${c.name}|${c.ruleToken}|${c.eds}|${proxyless}|${mx}`, () => (proxyless ? proxylessCluster(outboundCluster(snapshot, c, false)) : outboundCluster(snapshot, c, mx)));
  const clusters: XdsJson[] = plan.map(cluster);
  const locality = proxyLocality(proxy);
  const localityId = JSON.stringify(locality);
  const assignments: XdsJson[] = plan
    .filter((c) => c.eds && c.policy.loadBalancer?.simple !== 'PASSTHROUGH')
    .map((c) => sharedPerSnapshot(snapshot, `eds|${c.name}|${c.ruleToken}|${localityId}`, () => loadAssignment(snapshot, c, locality)));
  const inbound = proxy.kind === 'sidecar' && !proxyless ? inboundPorts(snapshot, proxy, scope) : [];
  if (!proxyless) {
    clusters.push(...catchAllClusters());
    if (usesForwardProxy(proxy, scope)) clusters.push(dynamicForwardProxyCluster());
    clusters.push(...inbound.map(inboundCluster));
  }
  const clusterMap = byName(clusters);
  const clusterNames = new Set(clusterMap.keys());

  let listeners: XdsJson[];
  let requests: (RouteRequest | GatewayRouteRequest)[];
  if (proxyless) ({ listeners, routes: requests } = proxylessListeners(proxy, scope, snapshot.mesh.domainSuffix));
  else if (proxy.kind === 'router') ({ listeners, routes: requests } = gatewayListeners(snapshot, proxy, clusterNames));
  else {
    const sidecar = sidecarListeners(snapshot, proxy, scope, inbound, clusterNames);
    ({ listeners, routes: requests } = sidecar);
    for (const c of sidecar.clusters) {
      clusterMap.set(String(c.name), c);
      clusterNames.add(String(c.name));
    }
  }
  if (!proxyless) {
    // Security filters first: telemetry then sets the stats filter, tracing and access logs on the
    // same HCMs and TCP chains, whatever authorization put in front of the router.
    listeners = withSecurity(listeners, proxy, securityFilters(snapshot, proxy, clusterNames));
    const side = (s: TrafficSide): SideTelemetry => ({ metrics: metricOverridesFor(snapshot, proxy, s), tracing: tracingFor(snapshot, proxy, s), accessLogs: accessLogsFor(snapshot, proxy, s) });
    const sides = { CLIENT: side('CLIENT'), SERVER: side('SERVER') };
    listeners = applyTelemetry(listeners, sides, proxy, snapshot.mesh.trustDomain);
    for (const c of collectorClusters(snapshot, [sides.CLIENT.tracing, sides.SERVER.tracing], clusterNames)) {
      clusterMap.set(String(c.name), c);
      clusterNames.add(String(c.name));
    }
  }

  const routes = buildRoutes(routeInputs(snapshot, scope), proxy, requests);
  const hashFor = (cluster: string) => {
    const c = parseOutboundClusterName(cluster);
    return c === undefined ? undefined : hashPolicyFor(snapshot, c.host, c.subset, c.port, proxy.namespace, proxy.labels);
  };
  for (const [name, rc] of routes) {
    const fixed = addHashPolicies(repairRouteClusters(rc, (c) => clusterNames.has(c)), hashFor);
    routes.set(name, proxyless ? proxylessRouteConfig(fixed) : fixed);
  }

  const set = new Map<XdsTypeUrl, ReadonlyMap<string, XdsJson>>([
    [TypeUrl.Cluster, clusterMap],
    [TypeUrl.ClusterLoadAssignment, byName(assignments)],
    [TypeUrl.Listener, byName(listeners)],
    [TypeUrl.RouteConfiguration, routes],
    [TypeUrl.Secret, secretsFor(snapshot, proxy, sdsNamesOf([...clusterMap.values(), ...listeners]))],
  ]);
  const problems = consistencyProblems(set);
  if (problems.length > 0) {
    throw new TrellisError('TRANSLATE_INCONSISTENT', `proxy ${proxy.id}: generated resources are inconsistent: ${problems.join('; ')}`, { context: { proxy: proxy.id, problems } });
  }
  return set;
}

/**
 * The part of a ProxyNode translation depends on: everything but the node id, its IPs and its
 * workload name, which translate() never reads (test/control-shared-translate.test.ts holds it to
 * that). Proxies with one key share one translation, as Istio shares generated config between
 * alike proxies. The node's content is the key, so a reconnect with other metadata never reuses
 * old output.
 */
export function translationKey(p: ProxyNode): string {
  return JSON.stringify([p.kind, p.namespace, p.labels, p.serviceAccount, p.clusterId, p.captureMode, p.metadata]);
}
