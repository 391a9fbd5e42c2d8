/**
 * What a matched route does to a request: path rewrites (prefix_rewrite, regex_rewrite), redirect
 * Location computation (Envoy's RouteEntryImplBase::newUri rules for scheme/host/port/path/query),
 * the per-level header mutation lists, and typed_per_filter_config lookup (most specific level
 * wins: weighted cluster > route > virtual host > route configuration). Pure functions, per request.
 */
import type { HeaderMap } from '../upstream/types.ts';
import { applyHeaderMutations, type HeaderMutation } from './header-mutation.ts';
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

/** Apply prefix_rewrite / regex_rewrite of a forward action to `path` (query preserved). */
export function rewritePath(route: CompiledRoute, prefixRewrite: string | undefined, regexRewrite: RegexRewrite | undefined, path: string): string {
  if (prefixRewrite === undefined && !regexRewrite) return path;
  const [p, q] = splitQuery(path);
  if (regexRewrite) return applyRegex(regexRewrite, p) + q;
  // prefix_rewrite only makes sense with prefix / path_separated_prefix / path matches;
  // for an exact `path` match Envoy replaces the whole path.
  const matched = route.matchedPrefix ?? p;
  return prefixRewrite + p.slice(matched.length) + q;
}

const DEFAULT_PORT: Record<string, string> = { http: '80', https: '443' };

/** The Location of a redirect for a request (scheme as seen downstream, i.e. x-forwarded-proto). */
export function redirectLocation(route: CompiledRoute, a: RedirectAction, req: { scheme: string; authority: string; path: string }): string {
  const origScheme = req.scheme;
  const scheme = a.scheme ?? origScheme;
  let host: string;
  if (a.host !== undefined) {
    host = a.host;
  } else {
    host = req.authority;
    const c = host.lastIndexOf(':');
    const hasPort = c > 0 && !host.endsWith(']');
    if (hasPort) {
      const port = host.slice(c + 1);
      // Drop the original port when a port is given, or when it is the default port of the new
      // scheme or (on a scheme change) of the old one: http://a:80 -> https://a.
      if (a.port !== undefined || port === DEFAULT_PORT[scheme] || (a.scheme !== undefined && a.scheme !== origScheme && port === DEFAULT_PORT[origScheme])) host = host.slice(0, c);
    }
  }
  if (a.port !== undefined) {
    const c = host.lastIndexOf(':');
    if (c > 0 && !host.endsWith(']')) host = host.slice(0, c);
    if (String(a.port) !== DEFAULT_PORT[scheme]) host = `${host}:${a.port}`;
  }
  let [p, q] = splitQuery(req.path);
  if (a.path !== undefined) {
    // path_redirect replaces the path; a query in it replaces the request's query.
    const [np, nq] = splitQuery(a.path);
    p = np;
    if (nq !== '') q = nq;
  } else if (a.prefixRewrite !== undefined) {
    p = a.prefixRewrite + p.slice((route.matchedPrefix ?? p).length);
  } else if (a.regexRewrite) {
    p = applyRegex(a.regexRewrite, p);
  }
  if (a.stripQuery) q = '';
  return `${scheme}://${host}${p}${q}`;
}

/** Header mutations of a request/response for a matched route, most specific level first. */
export function mutationLevels(table: CompiledRouteTable, m: RouteMatch, wc: WeightedCluster | undefined, dir: 'request' | 'response'): HeaderMutation[] {
  const key = dir === 'request' ? 'requestHeaders' : 'responseHeaders';
  const levels: HeaderMutation[] = [];
  if (wc) levels.push(wc[key]);
  levels.push(m.route[key], m.virtualHost[key], table[key]);
  return levels;
}

/** Apply route-config/vhost/route/weighted-cluster header mutations to `headers` in Envoy's order. */
export function applyRouteHeaders(headers: HeaderMap, table: CompiledRouteTable, m: RouteMatch, wc: WeightedCluster | undefined, dir: 'request' | 'response'): void {
  applyHeaderMutations(headers, mutationLevels(table, m, wc, dir), table.mostSpecificHeaderMutationsWins);
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
