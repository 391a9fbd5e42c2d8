/**
 * ClusterLoadAssignments for a proxy's EDS clusters: healthy endpoints of the service port,
 * filtered by the subset's labels, grouped by locality (sorted), with endpoint weights. Locality
 * load balancing follows Istio, relative to the proxy's locality: with `distribute`, locality
 * weights from the first rule whose `from` matches the proxy; otherwise, when outlier detection is
 * set (Istio's precondition: failover needs health signals), priorities: 0 same
 * region/zone/subzone, 1 same region/zone, 2 same region, then the `failover` target regions of
 * the proxy's region, then everything else.
 */
import type { EndpointInfo, Locality } from '../../registry/types.ts';
import type { MeshSnapshot } from '../snapshot/snapshot.ts';
import type { OutboundCluster } from './clusters.ts';
import type { LocalityLbSetting } from '../../config/views.ts';

type Json = Record<string, unknown>;

function localityKey(l: Locality): string {
  return `${l.region}/${l.zone}/${l.subzone}`;
}

/** Istio locality pattern match (`region/zone/subzone`, each part may be `*`, missing parts match all). */
export function localityMatches(pattern: string, l: Locality): boolean {
  const [r = '*', z = '*', s = '*'] = pattern.split('/');
  return (r === '*' || r === l.region) && (z === '*' || z === l.zone) && (s === '*' || s === l.subzone);
}

function priorityOf(proxy: Locality, ep: Locality, setting: LocalityLbSetting): number {
  if (ep.region === proxy.region) {
    if (ep.zone === proxy.zone) return ep.subzone === proxy.subzone ? 0 : 1;
    return 2;
  }
  const targets = (setting.failover ?? []).filter((f) => f.from === proxy.region).map((f) => f.to);
  if (targets.includes(ep.region)) return 3;
  return targets.length > 0 ? 4 : 3;
}

function distributeWeights(proxy: Locality, keys: readonly Locality[], setting: LocalityLbSetting): Map<string, number> | undefined {
  const rule = (setting.distribute ?? []).find((d) => d.from !== undefined && localityMatches(d.from, proxy));
  if (rule === undefined) return undefined;
  const out = new Map<string, number>();
  for (const l of keys) {
    let w = 0;
    for (const [pattern, weight] of Object.entries(rule.to ?? {})) {
      if (localityMatches(pattern, l)) {
        // Istio splits a pattern's weight evenly over the localities it matches.
        const n = keys.filter((k) => localityMatches(pattern, k)).length;
        w += weight / n;
      }
    }
    out.set(localityKey(l), Math.round(w));
  }
  return out;
}

/** The endpoint label Istio's injector sets on workloads with a sidecar. */
export const TlsModeLabel = 'security.istio.io/tlsMode';

const IstioTlsModeMetadata = Object.freeze({ filter_metadata: { 'envoy.transport_socket_match': { tlsMode: 'istio' } } });

/**
 * Istio's per-endpoint auto-mTLS decision: the endpoint runs a sidecar (tlsMode=istio) and its
 * PeerAuthentication does not DISABLE mTLS on that port, so clients may (and with STRICT must)
 * use ISTIO_MUTUAL.
 */
function acceptsMtls(snapshot: MeshSnapshot, e: EndpointInfo): boolean {
  if (e.labels[TlsModeLabel] !== 'istio' || snapshot.trustBundle.length === 0) return false;
  return snapshot.peerAuthentications.empty || snapshot.peerAuthentications.modeFor(e.namespace, e.labels, e.port).mode !== 'DISABLE';
}

function subsetMatches(labels: Readonly<Record<string, string>>, e: EndpointInfo): boolean {
  for (const [k, v] of Object.entries(labels)) if (e.labels[k] !== v) return false;
  return true;
}

/** The ClusterLoadAssignment of one EDS cluster for a proxy in `proxyLocality`. */
export function loadAssignment(snapshot: MeshSnapshot, c: OutboundCluster, proxyLocality: Locality): Json {
  const eps = snapshot.registry.endpoints(c.service.hostname, c.port.port).filter((e) => e.healthy && subsetMatches(c.labels, e));
  const groups = new Map<string, { locality: Locality; eps: EndpointInfo[] }>();
  for (const e of eps) {
    const k = localityKey(e.locality);
    const g = groups.get(k) ?? { locality: e.locality, eps: [] };
    g.eps.push(e);
    groups.set(k, g);
  }
  const keys = [...groups.keys()].sort();
  const setting = c.policy.loadBalancer?.localityLbSetting;
  const enabled = setting !== undefined && setting.enabled !== false;
  const weights = enabled ? distributeWeights(proxyLocality, keys.map((k) => groups.get(k)!.locality), setting) : undefined;
  const usePriority = enabled && weights === undefined && c.policy.outlierDetection !== undefined && proxyLocality.region !== '';
  const localities: Json[] = [];
  for (const k of keys) {
    const g = groups.get(k)!;
    // Always present: gRPC rejects a LocalityLbEndpoints without a locality (Istio always sends one).
    const le: Json = { locality: { region: g.locality.region, zone: g.locality.zone, sub_zone: g.locality.subzone } };
    le.lb_endpoints = g.eps.map((e) => {
      const lb: Json = { endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } }, load_balancing_weight: e.weight };
      if (acceptsMtls(snapshot, e)) lb.metadata = IstioTlsModeMetadata;
      return lb;
    });
    if (weights !== undefined) {
      const w = weights.get(k) ?? 0;
      if (w === 0) continue; // Istio drops localities that get no traffic.
      le.load_balancing_weight = w;
    } else {
      le.load_balancing_weight = g.eps.reduce((s, e) => s + e.weight, 0);
    }
    if (usePriority) {
      const p = priorityOf(proxyLocality, g.locality, setting!);
      if (p > 0) le.priority = p;
    }
    localities.push(le);
  }
  if (usePriority) compactPriorities(localities);
  return { cluster_name: c.name, endpoints: localities };
}

/** Envoy requires priorities to be contiguous from 0; renumber the used ones. */
function compactPriorities(localities: Json[]): void {
  const used = [...new Set(localities.map((l) => (l.priority as number | undefined) ?? 0))].sort((a, b) => a - b);
  for (const l of localities) {
    const p = used.indexOf((l.priority as number | undefined) ?? 0);
    if (p > 0) l.priority = p;
    else delete l.priority;
  }
}
