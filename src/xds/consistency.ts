/**
 * Consistency of one proxy's resource set, after go-control-plane's `Snapshot.Consistent`: every
 * RDS name a listener loads has a RouteConfiguration, every cluster a route, inline route or TCP
 * proxy sends to is in the set, every EDS cluster has its ClusterLoadAssignment and every
 * assignment an EDS cluster. An inconsistent set would leave a proxy warming forever or answering
 * 503 / NACKing, so translation refuses to produce one and the ADS server never serves one. The
 * names come from `references.ts`, the one home of that rule.
 */
import { edsServiceName, isEdsCluster, listenerClusters, rdsNamesOf, routeConfigClusters } from './references.ts';
import { TypeUrl, type XdsJson, type XdsResourceSet } from './types.ts';

/** Human-readable problems of `set`; empty when it is consistent. */
export function consistencyProblems(set: XdsResourceSet): string[] {
  const problems: string[] = [];
  const none = new Map<string, XdsJson>();
  const listeners = set.get(TypeUrl.Listener) ?? none;
  const routes = set.get(TypeUrl.RouteConfiguration) ?? none;
  const clusters = set.get(TypeUrl.Cluster) ?? none;
  const assignments = set.get(TypeUrl.ClusterLoadAssignment) ?? none;
  for (const [name, l] of listeners) {
    for (const rds of rdsNamesOf([l])) if (!routes.has(rds)) problems.push(`listener ${name}: route configuration '${rds}' is not in the set`);
    for (const c of new Set(listenerClusters(l))) if (!clusters.has(c)) problems.push(`listener ${name}: cluster '${c}' is not in the set`);
  }
  for (const [name, rc] of routes) {
    for (const c of new Set(routeConfigClusters(rc))) if (!clusters.has(c)) problems.push(`route configuration ${name}: cluster '${c}' is not in the set`);
  }
  const wanted = new Set<string>();
  for (const [name, c] of clusters) {
    if (!isEdsCluster(c)) continue;
    const service = edsServiceName(c);
    wanted.add(service);
    if (!assignments.has(service)) problems.push(`cluster ${name}: ClusterLoadAssignment '${service}' is not in the set`);
  }
  for (const name of assignments.keys()) {
    if (!wanted.has(name)) problems.push(`ClusterLoadAssignment ${name}: no EDS cluster asks for it`);
  }
  return problems;
}
