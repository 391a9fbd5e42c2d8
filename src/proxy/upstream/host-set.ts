/**
 * Building a cluster's host list from its load assignment: one `Host` per endpoint (or per resolved
 * address for STRICT_DNS), reusing the existing `Host` object when an endpoint with the same
 * address and port survives an update, so its outlier state, counters and pool carry over. Also
 * picks each endpoint's transport socket from `transport_socket_matches` (Istio's auto-mTLS uses
 * the `tlsMode: istio` endpoint label this way).
 */
import type { UpstreamTlsConfig } from '../tls/upstream-tls-config.ts';
import type { ClusterConfig } from './cluster-config.ts';
import { Host } from './host.ts';
import type { EndpointSpec, LoadAssignment } from './load-assignment.ts';

/** The transport socket for an endpoint: the first match whose every key equals the endpoint's metadata. */
export function transportFor(cfg: ClusterConfig, ep: EndpointSpec): UpstreamTlsConfig | undefined {
  for (const m of cfg.transportSocketMatches) {
    if (Object.entries(m.match).every(([k, v]) => ep.transportSocketMatch[k] === v)) return m.tls;
  }
  return cfg.tls;
}

/**
 * Hosts for `la`. `resolved` maps a DNS name to its addresses (STRICT_DNS); names missing from it
 * yield no hosts. `previous` hosts with the same key are updated in place and reused.
 */
export function buildHosts(cfg: ClusterConfig, la: LoadAssignment | undefined, previous: readonly Host[], resolved?: ReadonlyMap<string, readonly string[]>): Host[] {
  if (la === undefined) return [];
  const old = new Map(previous.map((h) => [h.key, h]));
  const out: Host[] = [];
  const seen = new Set<string>();
  la.priorities.forEach((level, priority) => {
    for (const group of level.localities) {
      for (const ep of group.endpoints) {
        const addresses = resolved === undefined ? [ep.address] : resolved.get(ep.address) ?? [];
        for (const address of addresses) {
          const init = { weight: ep.weight, health: ep.health, locality: group.locality, localityWeight: group.weight, priority, tls: transportFor(cfg, ep) };
          const fresh = new Host(address, ep.port, init);
          if (seen.has(fresh.key)) continue; // Envoy keeps one host per address; the first (highest priority) wins.
          seen.add(fresh.key);
          const prev = old.get(fresh.key);
          if (prev === undefined) {
            out.push(fresh);
            continue;
          }
          prev.weight = init.weight;
          prev.health = init.health;
          prev.locality = init.locality;
          prev.localityWeight = init.localityWeight;
          prev.priority = priority;
          prev.tls = init.tls;
          out.push(prev);
        }
      }
    }
  });
  return out;
}
