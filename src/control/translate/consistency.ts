/**
 * Snapshot consistency, after go-control-plane: every RDS name a listener uses has a
 * RouteConfiguration, every cluster a route or TCP proxy names exists, every EDS cluster has a
 * ClusterLoadAssignment and every assignment a cluster. `checkConsistency` reports; translate
 * runs `repairRouteClusters` first, so what it returns is always consistent.
 *
 * Dangling route clusters: Envoy answers a route whose cluster is unknown with the route's
 * `cluster_not_found_response_code` (503 by default; 404, 500 selectable) without touching any
 * upstream. We make that explicit instead of shipping a dangling name: a single-cluster action
 * becomes a `direct_response` with that status; a missing entry of `weighted_clusters` is replaced
 * by BlackHoleCluster (no endpoints: 503, the same status clients see from Envoy); mirrors to a
 * missing cluster are dropped (Envoy skips them).
 */
import { TypeUrl } from '../../xds/types.ts';
import type { XdsJson, XdsResourceSet } from '../../xds/types.ts';
import { BlackHoleCluster } from './names.ts';

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
}
function arr(v: unknown): Json[] {
  return Array.isArray(v) ? (v.filter((x) => obj(x) !== undefined) as Json[]) : [];
}

/** Network filters of a listener (all chains, default chain, api_listener HCM as a pseudo-filter). */
export function listenerFilters(l: XdsJson): Json[] {
  const out: Json[] = [];
  for (const fc of [...arr(l.filter_chains), ...(obj(l.default_filter_chain) ? [obj(l.default_filter_chain)!] : [])]) out.push(...arr(fc.filters));
  const api = obj(obj(l.api_listener)?.api_listener);
  if (api !== undefined) out.push({ name: 'envoy.filters.network.http_connection_manager', typed_config: api });
  return out;
}

function routeActionClusters(action: Json): string[] {
  const out: string[] = [];
  if (typeof action.cluster === 'string') out.push(action.cluster);
  for (const c of arr(obj(action.weighted_clusters)?.clusters)) if (typeof c.name === 'string') out.push(c.name);
  for (const m of arr(action.request_mirror_policies)) if (typeof m.cluster === 'string') out.push(m.cluster);
  return out;
}

function routeConfigClusters(rc: Json): string[] {
  const out: string[] = [];
  for (const vh of arr(rc.virtual_hosts)) for (const r of arr(vh.routes)) {
    const a = obj(r.route);
    if (a !== undefined) out.push(...routeActionClusters(a));
  }
  return out;
}

/** Human-readable problems; empty when the set is consistent. */
export function checkConsistency(set: XdsResourceSet): string[] {
  const problems: string[] = [];
  const listeners = set.get(TypeUrl.Listener) ?? new Map();
  const routes = set.get(TypeUrl.RouteConfiguration) ?? new Map();
  const clusters = set.get(TypeUrl.Cluster) ?? new Map();
  const cla = set.get(TypeUrl.ClusterLoadAssignment) ?? new Map();
  for (const [name, l] of listeners) {
    for (const f of listenerFilters(l)) {
      const tc = obj(f.typed_config) ?? {};
      const rds = obj(tc.rds)?.route_config_name;
      if (typeof rds === 'string' && !routes.has(rds)) problems.push(`listener ${name}: route configuration '${rds}' not found`);
      const inline = obj(tc.route_config);
      if (inline !== undefined) for (const c of routeConfigClusters(inline)) if (!clusters.has(c)) problems.push(`listener ${name}: inline route cluster '${c}' not found`);
      if (typeof tc.cluster === 'string' && !clusters.has(tc.cluster)) problems.push(`listener ${name}: tcp_proxy cluster '${tc.cluster}' not found`);
      for (const c of arr(obj(tc.weighted_clusters)?.clusters)) {
        if (typeof c.name === 'string' && !clusters.has(c.name)) problems.push(`listener ${name}: tcp_proxy cluster '${c.name}' not found`);
      }
    }
  }
  for (const [name, rc] of routes) {
    for (const c of routeConfigClusters(rc)) if (!clusters.has(c)) problems.push(`route configuration ${name}: cluster '${c}' not found`);
  }
  for (const [name, c] of clusters) {
    if (c.type !== 'EDS') continue;
    const service = (obj(c.eds_cluster_config)?.service_name as string | undefined) ?? name;
    if (!cla.has(service)) problems.push(`cluster ${name}: no ClusterLoadAssignment '${service}'`);
  }
  for (const name of cla.keys()) {
    const c = clusters.get(name);
    if (c === undefined || c.type !== 'EDS') problems.push(`ClusterLoadAssignment ${name}: no EDS cluster`);
  }
  return problems;
}

const notFoundStatus: Readonly<Record<string, number>> = { SERVICE_UNAVAILABLE: 503, NOT_FOUND: 404, INTERNAL_SERVER_ERROR: 500 };

/** Returns `rc` with dangling cluster references made explicit (see module doc); `rc` itself when nothing dangles. */
export function repairRouteClusters(rc: XdsJson, has: (cluster: string) => boolean): XdsJson {
  if (routeConfigClusters(rc).every(has)) return rc;
  const vhosts = arr(rc.virtual_hosts).map((vh) => ({
    ...vh,
    routes: arr(vh.routes).map((r) => {
      const a = obj(r.route);
      if (a === undefined || routeActionClusters(a).every(has)) return r;
      const fixed: Json = { ...a };
      if (Array.isArray(fixed.request_mirror_policies)) {
        fixed.request_mirror_policies = arr(fixed.request_mirror_policies).filter((m) => typeof m.cluster !== 'string' || has(m.cluster));
        if ((fixed.request_mirror_policies as Json[]).length === 0) delete fixed.request_mirror_policies;
      }
      if (typeof fixed.cluster === 'string' && !has(fixed.cluster)) {
        const status = notFoundStatus[String(fixed.cluster_not_found_response_code ?? 'SERVICE_UNAVAILABLE')] ?? 503;
        const { route: _route, ...rest } = r;
        return { ...rest, direct_response: { status } };
      }
      const wc = obj(fixed.weighted_clusters);
      if (wc !== undefined) {
        // Missing entries become BlackHoleCluster; several of them merge into one entry (names must be unique).
        const merged: Json[] = [];
        for (const c of arr(wc.clusters)) {
          const name = typeof c.name === 'string' && !has(c.name) ? BlackHoleCluster : c.name;
          const prev = merged.find((m) => m.name === name);
          if (prev !== undefined) prev.weight = Number(prev.weight ?? 0) + Number(c.weight ?? 0);
          else merged.push(name === c.name ? { ...c } : { name, weight: c.weight });
        }
        fixed.weighted_clusters = { ...wc, clusters: merged };
      }
      return { ...r, route: fixed };
    }),
  }));
  return { ...rc, virtual_hosts: vhosts };
}
