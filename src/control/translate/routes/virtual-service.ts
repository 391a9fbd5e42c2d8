/**
 * Which VirtualServices apply where, and how several combine, following Istio: ordering by
 * creation time then namespace/name (oldest first); `exportTo` visibility; binding to `mesh` or
 * to `ns/name` gateways; one level of delegation (a root entry's matches intersected with each
 * delegate entry's, conflicting pairs dropped); entries after a catch-all entry in one VS dropped;
 * and for gateways several VSs on one host concatenated with catch-all routes moved last
 * (Istio's `CombineVHostRoutes`).
 */

import type { Resource } from '../../../config/resource.ts';
import { exportedTo, hostMatches, resolveHost } from './hosts.ts';
import { HedgeAnnotation, isCatchAll, qualifyGateway, type FlatHttp } from './istio-route.ts';
import type { RouteInputs, VirtualServiceResource } from './types.ts';
import type { HTTPMatchRequest, StringMatch } from '../../../config/views.ts';

type Json = Record<string, unknown>;

/** Istio's config order: oldest creationTimestamp first, then namespace, then name. */
export function byAge<T extends Pick<Resource, 'metadata'>>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => {
    const ta = a.metadata.creationTimestamp ?? '';
    const tb = b.metadata.creationTimestamp ?? '';
    if (ta !== tb) return ta < tb ? -1 : 1;
    if (a.metadata.namespace !== b.metadata.namespace) return a.metadata.namespace < b.metadata.namespace ? -1 : 1;
    return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
  });
}

/** The VS's gateways as `ns/name` (or `mesh`); an empty list means `mesh`. */
export function vsGateways(vs: VirtualServiceResource): string[] {
  const g = vs.spec.gateways ?? [];
  return g.length ? g.map((x) => qualifyGateway(x, vs.metadata.namespace)) : ['mesh'];
}

/** True when the VS or any of its per-match gateways binds it to one of `gatewayNames`. */
function boundTo(vs: VirtualServiceResource, gatewayNames: readonly string[]): boolean {
  const names = new Set(vsGateways(vs));
  for (const h of vs.spec.http ?? []) for (const m of h.match ?? []) for (const g of m.gateways ?? []) names.add(qualifyGateway(g, vs.metadata.namespace));
  return [...names].some((n) => gatewayNames.includes(n));
}

/** Root VirtualServices (with hosts) visible from `namespace` and bound to one of `gatewayNames`, oldest first. */
export function selectVirtualServices(inputs: RouteInputs, gatewayNames: readonly string[], namespace: string): VirtualServiceResource[] {
  return byAge(
    inputs.virtualServices.filter(
      (vs) =>
        (vs.spec.hosts?.length ?? 0) > 0 &&
        exportedTo(vs.spec.exportTo, vs.metadata.namespace, namespace) &&
        boundTo(vs, gatewayNames),
    ),
  );
}

/** The VS hosts resolved to FQDNs. */
export function vsHosts(vs: VirtualServiceResource, domainSuffix: string): string[] {
  return (vs.spec.hosts ?? []).map((h) => resolveHost(h, vs.metadata.namespace, domainSuffix));
}

/**
 * For a sidecar virtual host: the single VS that applies to `host` — an exact host match beats a
 * wildcard one, and among equals the oldest wins (Istio does not merge VSs for sidecars).
 */
export function virtualServiceForHost(candidates: readonly VirtualServiceResource[], host: string, domainSuffix: string): VirtualServiceResource | undefined {
  let wildcard: VirtualServiceResource | undefined;
  for (const vs of candidates) {
    const hosts = vsHosts(vs, domainSuffix);
    if (hosts.some((h) => h.toLowerCase() === host.toLowerCase())) return vs;
    if (!wildcard && hosts.some((h) => hostMatches(h, host))) wildcard = vs;
  }
  return wildcard;
}

/**
 * `virtualServiceForHost` over a fixed candidate list, indexed once: a sidecar route config asks
 * for every visible service, and scanning every VS per service was quadratic (the top frame of
 * the control-plane benchmark at 1,000 services). Same answers, in the same precedence.
 */
export class VirtualServiceHostIndex {
  readonly #exact = new Map<string, VirtualServiceResource>();
  readonly #wildcards: { vs: VirtualServiceResource; hosts: string[] }[] = [];

  constructor(candidates: readonly VirtualServiceResource[], domainSuffix: string) {
    for (const vs of candidates) {
      const hosts = vsHosts(vs, domainSuffix);
      for (const h of hosts) {
        const key = h.toLowerCase();
        if (!this.#exact.has(key)) this.#exact.set(key, vs);
      }
      if (hosts.some((h) => h.includes('*'))) this.#wildcards.push({ vs, hosts });
    }
  }

  /** The VS for `host`: the first with the exact host, else the first whose (wildcard) host covers it. */
  forHost(host: string): VirtualServiceResource | undefined {
    const exact = this.#exact.get(host.toLowerCase());
    if (exact !== undefined) return exact;
    for (const w of this.#wildcards) if (w.hosts.some((h) => hostMatches(h, host))) return w.vs;
    return undefined;
  }
}

function sameStringMatch(a: StringMatch, b: StringMatch): boolean {
  return a.exact === b.exact && a.prefix === b.prefix && a.regex === b.regex;
}

/** The delegate's uri must lie within the root's: undefined on conflict. */
function mergeUri(root: StringMatch | undefined, del: StringMatch | undefined): StringMatch | undefined | null {
  if (!root) return del;
  if (!del) return root;
  if (sameStringMatch(root, del)) return del;
  if (root.prefix !== undefined) {
    if (del.exact !== undefined && del.exact.startsWith(root.prefix)) return del;
    if (del.prefix !== undefined && del.prefix.startsWith(root.prefix)) return del;
  }
  return null;
}

function mergeMap(a: Readonly<Record<string, StringMatch>> | undefined, b: Readonly<Record<string, StringMatch>> | undefined): Record<string, StringMatch> | undefined | null {
  if (!a) return b ? { ...b } : undefined;
  const out: Record<string, StringMatch> = { ...a };
  for (const [k, v] of Object.entries(b ?? {})) {
    if (out[k] && !sameStringMatch(out[k], v)) return null;
    out[k] = v;
  }
  return out;
}

function mergeOne<T>(a: T | undefined, b: T | undefined, eq: (x: T, y: T) => boolean): T | undefined | null {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return eq(a, b) ? b : null;
}

/** Istio's `mergeHTTPMatchRequest`: the delegate's match narrowed by the root's; null when they conflict. */
export function mergeMatch(root: HTTPMatchRequest, del: HTTPMatchRequest): HTTPMatchRequest | null {
  const uri = mergeUri(root.uri, del.uri);
  const headers = mergeMap(root.headers, del.headers);
  const withoutHeaders = mergeMap(root.withoutHeaders, del.withoutHeaders);
  const queryParams = mergeMap(root.queryParams, del.queryParams);
  const method = mergeOne(root.method, del.method, sameStringMatch);
  const authority = mergeOne(root.authority, del.authority, sameStringMatch);
  const scheme = mergeOne(root.scheme, del.scheme, sameStringMatch);
  const port = mergeOne(root.port, del.port, (x, y) => x === y);
  const parts = [uri, headers, withoutHeaders, queryParams, method, authority, scheme, port];
  if (parts.some((p) => p === null)) return null;
  const out: Record<string, unknown> = { ...root, ...del };
  for (const [k, v] of Object.entries({ uri, headers, withoutHeaders, queryParams, method, authority, scheme, port })) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  // Source and gateway selection belong to the root (a delegate cannot widen them).
  for (const k of ['sourceLabels', 'sourceNamespace', 'gateways'] as const) {
    if (root[k] !== undefined) out[k] = root[k];
    else delete out[k];
  }
  if (del.name && root.name) out.name = `${root.name}.${del.name}`;
  return out as HTTPMatchRequest;
}

function mergeMatchLists(root: readonly HTTPMatchRequest[], del: readonly HTTPMatchRequest[]): HTTPMatchRequest[] | null {
  if (root.length === 0) return [...del];
  if (del.length === 0) return [...root];
  const out: HTTPMatchRequest[] = [];
  for (const r of root) for (const d of del) {
    const m = mergeMatch(r, d);
    if (m) out.push(m);
  }
  return out.length ? out : null;
}

/** The hedging opt-in of the VS that defines an http entry (a delegate's own annotation for its entries). */
function wantsHedging(vs: VirtualServiceResource): boolean {
  return vs.metadata.annotations?.[HedgeAnnotation] === 'true';
}

/**
 * A root VS's http entries with delegation expanded (one level, as Istio) and, as Istio does,
 * entries after the first catch-all dropped because they could never match.
 */
export function flattenVirtualService(vs: VirtualServiceResource, inputs: RouteInputs): FlatHttp[] {
  const out: FlatHttp[] = [];
  const gws = vsGateways(vs);
  const source = { namespace: vs.metadata.namespace, name: vs.metadata.name };
  for (const http of vs.spec.http ?? []) {
    if (http.delegate?.name) {
      const ns = http.delegate.namespace ?? vs.metadata.namespace;
      const del = inputs.virtualServices.find((d) => d.metadata.name === http.delegate!.name && d.metadata.namespace === ns && !(d.spec.hosts?.length));
      if (!del || !exportedTo(del.spec.exportTo, ns, vs.metadata.namespace)) continue;
      for (const dh of del.spec.http ?? []) {
        if (dh.delegate) continue; // Istio supports a single level of delegation.
        const merged = mergeMatchLists(http.match ?? [], dh.match ?? []);
        if (merged === null) continue;
        out.push({ http: dh, namespace: ns, vsGateways: gws, matches: merged, hedgeOnPerTryTimeout: wantsHedging(del), source });
      }
    } else {
      out.push({ http, namespace: vs.metadata.namespace, vsGateways: gws, hedgeOnPerTryTimeout: wantsHedging(vs), source });
    }
    const ms = http.match ?? [];
    if (ms.length === 0 || ms.some(isCatchAll)) break;
  }
  return out;
}

/** True when an Envoy route matches every request (prefix `/` or regex `.*`, no header or query conditions). */
export function isCatchAllRoute(r: Json): boolean {
  const m = (r.match ?? {}) as Json;
  const all = m.prefix === '/' || (m.safe_regex as Json | undefined)?.regex === '.*' || (m.safe_regex as Json | undefined)?.regex === '*';
  return all && m.headers === undefined && m.query_parameters === undefined;
}

/** Istio's `CombineVHostRoutes`: concatenation keeping order, with catch-all routes moved to the end. */
export function combineVHostRoutes(...lists: readonly Json[][]): Json[] {
  const normal: Json[] = [];
  const catchAll: Json[] = [];
  for (const l of lists) for (const r of l) (isCatchAllRoute(r) ? catchAll : normal).push(r);
  return [...normal, ...catchAll];
}
