/**
 * Dangling route clusters, made explicit before translation checks its output for consistency
 * (src/xds/consistency.ts): Envoy answers a route whose cluster is unknown with the route's
 * `cluster_not_found_response_code` (503 by default; 404, 500 selectable) without touching any
 * upstream. We make that explicit instead of shipping a dangling name: a single-cluster action
 * becomes a `direct_response` with that status; a missing entry of `weighted_clusters` is replaced
 * by BlackHoleCluster (no endpoints: 503, the same status clients see from Envoy); mirrors to a
 * missing cluster are dropped (Envoy skips them).
 */
import type { XdsJson } from '../../xds/types.ts';
import { routeActionClusters, routeConfigClusters } from '../../xds/references.ts';
import { BlackHoleCluster } from './names.ts';

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
}
function arr(v: unknown): Json[] {
  return Array.isArray(v) ? (v.filter((x) => obj(x) !== undefined) as Json[]) : [];
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
