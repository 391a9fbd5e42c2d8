/**
 * What a matched route does to a request: path rewrites (prefix_rewrite, regex_rewrite), redirect
 * Location computation (Envoy's RouteEntryImplBase::newUri rules for scheme/host/port/path/query),
 * the per-level header mutation lists, and typed_per_filter_config lookup (most specific level
 * wins: weighted cluster > route > virtual host > route configuration). Pure functions, per request.
 */
import type { HeaderMap } from '../upstream/types.ts';
import { applyHeaderMutation, applyHeaderMutationLevels } from './header-mutation.ts';
import type { FormatContext } from './header-format.ts';
import { DISABLED_FILTER, type RedirectAction, type RegexRewrite, type WeightedCluster } from './route-action.ts';
import type { CompiledRoute, CompiledRouteTable, RouteMatch } from './route-table.ts';

function splitQuery(path: string): [string, string] {
  const q = path.indexOf('?');
  return q < 0 ? [path, ''] : [path.slice(0, q), path.slice(q)];
}

function applyRegex(rw: RegexRewrite, p: string): string {
  rw.pattern.lastIndex = 0;
  return p.replace(rw.pattern, rw.substitution);
}

/**
 * Whether a forward action rewrites the path. As Envoy, an empty prefix_rewrite is no rewrite, and
 * a configured rewrite counts even when it leaves the path unchanged (x-envoy-original-path is set).
 */
export function hasPathRewrite(prefixRewrite: string | undefined, regexRewrite: RegexRewrite | undefined): boolean {
  return !!prefixRewrite || regexRewrite !== undefined;
}

/** Apply prefix_rewrite / regex_rewrite of a forward action to `path` (query preserved); `path` when none (see hasPathRewrite). */
export function rewritePath(route: CompiledRoute, prefixRewrite: string | undefined, regexRewrite: RegexRewrite | undefined, path: string): string {
  if (!hasPathRewrite(prefixRewrite, regexRewrite)) return path;
  const [p, q] = splitQuery(path);
  if (prefixRewrite) {
    // For an exact `path` or regex match the matched part is the whole path.
    const matched = route.matchedPrefix ?? p;
    return prefixRewrite + p.slice(matched.length) + q;
  }
  return applyRegex(regexRewrite!, p) + q;
}

/**
 * The request host for a redirect Location (Envoy's processRequestHost): the port is dropped when
 * a port_redirect is given, or when the scheme changes and the port is the default one of the
 * request's (x-forwarded-proto) scheme — http://a:80 -> https://a, but http://a:443 -> https://a:443.
 */
function redirectHost(authority: string, newScheme: string, hasNewPort: boolean, requestProto: string): string {
  if (authority === '') return authority;
  let end: number;
  if (authority.startsWith('[')) {
    end = authority.lastIndexOf(']:');
    if (end >= 0) end += 1;
  } else {
    end = authority.lastIndexOf(':');
  }
  if (end < 0) return authority;
  const port = authority.slice(end);
  let remove = hasNewPort;
  if (newScheme !== requestProto) remove ||= (requestProto === 'https' && port === ':443') || (requestProto === 'http' && port === ':80');
  return remove ? authority.slice(0, end) : authority;
}

/**
 * The request path after a redirect's own prefix_rewrite / regex_rewrite (query kept), undefined
 * when it has none or it yields nothing. Envoy rewrites the request's :path in place, so response
 * header formats (%REQ(:PATH)%) of the redirect see this path.
 */
export function redirectRewrittenPath(route: CompiledRoute, a: RedirectAction, path: string): string | undefined {
  const [p, q] = splitQuery(path);
  const rewritten = a.prefixRewrite ? a.prefixRewrite + p.slice((route.matchedPrefix ?? p).length) : a.regexRewrite ? applyRegex(a.regexRewrite, p) : '';
  return rewritten !== '' ? rewritten + q : undefined;
}

/**
 * The Location of a redirect for a request (Envoy's Http::Utility::newUri after the redirect's
 * path rewrite): scheme from scheme_redirect/https_redirect else the request's; host_redirect
 * verbatim else the request host (see redirectHost); port_redirect appended as given, default
 * ports included; path_redirect with a query replaces the query and ignores strip_query.
 */
export function redirectLocation(route: CompiledRoute, a: RedirectAction, req: { scheme: string; authority: string; path: string; headers?: HeaderMap }): string {
  const xfp = req.headers?.['x-forwarded-proto'];
  const requestProto = (Array.isArray(xfp) ? xfp[0] : xfp) ?? req.scheme;
  const scheme = a.scheme ?? req.scheme;
  const port = a.port !== undefined ? `:${a.port}` : '';
  const host = a.host ?? redirectHost(req.authority, scheme, port !== '', requestProto);
  let path = redirectRewrittenPath(route, a, req.path) ?? req.path;
  let p: string;
  let q: string;
  let pathHasQuery = false;
  if (a.path !== undefined) {
    [p, q] = splitQuery(path);
    const [, nq] = splitQuery(a.path);
    pathHasQuery = nq !== '';
    path = pathHasQuery ? a.path : a.path + q;
  }
  if (!path.startsWith('/')) path = `/${path}`;
  if (a.stripQuery && !pathHasQuery) path = splitQuery(path)[0];
  return `${scheme}://${host}${port}${path}`;
}

/**
 * True when a level that applies to this request (`dir`) has a format string, i.e. the caller must
 * pass a FormatContext to applyRouteHeaders; false (the usual case) spares building one per request.
 */
export function routeHeadersNeedFormat(table: CompiledRouteTable, m: RouteMatch, wc: WeightedCluster | undefined, dir: 'request' | 'response'): boolean {
  const key = dir === 'request' ? 'requestHeaders' : 'responseHeaders';
  return (wc?.[key].formatted ?? false) || m.route[key].formatted || m.virtualHost[key].formatted || table[key].formatted;
}

/**
 * Apply route-config/vhost/route/weighted-cluster header mutations to `headers` in Envoy's order:
 * the weighted cluster's own list always goes first (Envoy's WeightedClusterEntry applies it before
 * delegating to the route), then route/vhost/config in the order most_specific_header_mutations_wins picks.
 */
export function applyRouteHeaders(headers: HeaderMap, table: CompiledRouteTable, m: RouteMatch, wc: WeightedCluster | undefined, dir: 'request' | 'response', ctx?: FormatContext): void {
  const key = dir === 'request' ? 'requestHeaders' : 'responseHeaders';
  if (wc) applyHeaderMutation(headers, wc[key], ctx);
  // The weighted cluster's host rewrite happens between its own mutations and the route's (Envoy's
  // WeightedClusterEntry finalizes the request before delegating), so later formats see it.
  const next = ctx !== undefined && dir === 'request' && wc?.hostRewriteLiteral ? { ...ctx, authority: wc.hostRewriteLiteral } : ctx;
  applyHeaderMutationLevels(headers, m.route[key], m.virtualHost[key], table[key], table.mostSpecificHeaderMutationsWins, next);
}

/**
 * The typed_per_filter_config for `filterName` at the most specific level, undefined when none;
 * `DISABLED_FILTER` when the route disabled the filter (FilterConfig.disabled).
 */
export function perFilterConfig(table: CompiledRouteTable, m: RouteMatch | undefined, wc: WeightedCluster | undefined, filterName: string): unknown {
  if (wc?.perFilter.has(filterName)) return wc.perFilter.get(filterName);
  if (m?.route.perFilter.has(filterName)) return m.route.perFilter.get(filterName);
  if (m?.virtualHost.perFilter.has(filterName)) return m.virtualHost.perFilter.get(filterName);
  return table.perFilter.get(filterName);
}

export { DISABLED_FILTER };

/** Pick a weighted cluster with a uniform random number in [0,1). */
export function pickWeightedCluster(clusters: readonly WeightedCluster[], totalWeight: number, random: number): WeightedCluster {
  let r = Math.floor(random * totalWeight);
  for (const c of clusters) {
    if (r < c.weight) return c;
    r -= c.weight;
  }
  return clusters[clusters.length - 1];
}
