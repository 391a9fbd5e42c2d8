/**
 * VirtualService `tcp` and `tls` routes -> the clusters a TCP proxy sends to. Destinations
 * resolve like HTTP ones: host qualified in the VirtualService's namespace, port from
 * `destination.port` or the service's only port (else the listener port), subset appended;
 * a destination not in the proxy's scope goes to BlackHoleCluster (Istio drops such routes,
 * blackholing the traffic). Matching: the first rule whose match (port, gateways, sniHosts for
 * TLS) applies wins; a rule without matches applies always.
 */
import type { MeshSnapshot } from '../snapshot/snapshot.ts';
import type { IndexedVirtualService } from '../snapshot/virtual-services.ts';
import { hostMatches } from '../snapshot/visibility.ts';
import { BlackHoleCluster, outboundClusterName } from './names.ts';
import type { L4Match, RouteDestination } from '../../config/views.ts';

export interface WeightedCluster {
  readonly name: string;
  readonly weight: number;
}

/** Cluster names for a VS destination list. */
export function destinationClusters(
  snapshot: MeshSnapshot,
  vs: IndexedVirtualService,
  route: readonly RouteDestination[] | undefined,
  listenerPort: number,
  inScope: (clusterName: string) => boolean,
): WeightedCluster[] {
  const out: WeightedCluster[] = [];
  const dests = route ?? [];
  for (const d of dests) {
    const host = d.destination?.host;
    if (host === undefined) continue;
    const svc = snapshot.registry.lookupHost(host, vs.resource.metadata.namespace);
    const port = d.destination?.port?.number ?? (svc !== undefined && svc.ports.length === 1 ? svc.ports[0].port : listenerPort);
    const name = svc !== undefined ? outboundClusterName(port, d.destination?.subset ?? '', svc.hostname) : '';
    out.push({ name: name !== '' && inScope(name) ? name : BlackHoleCluster, weight: d.weight ?? (dests.length === 1 ? 100 : 0) });
  }
  return out.filter((c) => c.weight > 0 || out.length === 1);
}

/** True when an L4 match applies to a listener port and gateway. */
export function l4MatchApplies(m: L4Match, port: number, gateway: string, vsNamespace: string): boolean {
  if (m.port !== undefined && m.port !== port) return false;
  if (m.gateways !== undefined && m.gateways.length > 0) {
    const qualified = m.gateways.map((g) => (g === 'mesh' || g.includes('/') ? g : `${vsNamespace}/${g}`));
    if (!qualified.includes(gateway)) return false;
  }
  return true;
}

/** The first `tcp` rule of `vs` applying to (port, gateway), as weighted clusters. */
export function tcpRouteClusters(snapshot: MeshSnapshot, vs: IndexedVirtualService, port: number, gateway: string, inScope: (n: string) => boolean): WeightedCluster[] | undefined {
  for (const rule of vs.spec.tcp ?? []) {
    const ms = rule.match ?? [];
    if (ms.length > 0 && !ms.some((m) => l4MatchApplies(m, port, gateway, vs.resource.metadata.namespace))) continue;
    const cs = destinationClusters(snapshot, vs, rule.route, port, inScope);
    if (cs.length > 0) return cs;
  }
  return undefined;
}

/** TLS rules of `vs` for (port, gateway): each SNI host list with its clusters, in order. */
export function tlsRouteChains(
  snapshot: MeshSnapshot,
  vs: IndexedVirtualService,
  port: number,
  gateway: string,
  inScope: (n: string) => boolean,
): { sniHosts: string[]; clusters: WeightedCluster[] }[] {
  const out: { sniHosts: string[]; clusters: WeightedCluster[] }[] = [];
  for (const rule of vs.spec.tls ?? []) {
    const sni = new Set<string>();
    for (const m of rule.match ?? []) {
      if (!l4MatchApplies(m, port, gateway, vs.resource.metadata.namespace)) continue;
      for (const h of m.sniHosts ?? []) {
        // sniHosts must be covered by the VirtualService's hosts; short names qualify in its namespace.
        const q = snapshot.registry.qualify(h, vs.resource.metadata.namespace);
        if (vs.hosts.some((vh) => hostMatches(vh, q) || hostMatches(vh, h))) sni.add(h.includes('.') ? h : q);
      }
    }
    if (sni.size === 0) continue;
    const clusters = destinationClusters(snapshot, vs, rule.route, port, inScope);
    if (clusters.length > 0) out.push({ sniHosts: [...sni].sort(), clusters });
  }
  return out;
}
