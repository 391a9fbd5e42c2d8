/**
 * Unreachable VirtualService routes (http, tcp and tls). Istio evaluates each list in order and the
 * first route whose match succeeds wins, so a route is dead when every one of its match clauses is covered by
 * a clause of an earlier route — ROUTE_SHADOWED (istioctl IST0130) — and a single clause is dead
 * when an earlier clause of the same or an earlier route covers it — ROUTE_MATCH_INEFFECTIVE
 * (IST0131). A false positive here would teach users to ignore the analyzer, so "covers" is
 * deliberately narrow: the earlier clause may only constrain the URI (exact or prefix; regex never
 * counts) plus conditions that appear identically in the later clause. Istio's prefix match is a
 * plain string prefix (`/api` matches `/apis`), which is what we compare. For tcp routes every
 * condition of the earlier clause (port, destinationSubnets, sourceLabels, gateways,
 * sourceNamespace) must appear identically in the later one; for tls routes, the earlier
 * clause's sniHosts must cover every SNI host of the later one (wildcards as host.ts matches
 * them) and its other conditions appear identically. A route without match matches everything.
 */
import type { Resource } from '../resource.ts';
import { ResourceTypes } from '../resource.ts';
import type { AnalysisContext } from './context.ts';
import { hostMatches } from '../host.ts';
import { isObject, list, view, type HTTPMatchRequest, type VirtualServiceView } from '../views.ts';

/** Keys that name or label a match without changing what it matches. */
const NON_MATCHING_KEYS = new Set(['name', 'statPrefix']);

function isDeepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** True when the URI condition of `a` (undefined = any) accepts every URI `b` accepts. */
function uriCovers(a: HTTPMatchRequest, b: HTTPMatchRequest): boolean {
  const ua = a.uri;
  if (ua === undefined || (typeof ua === 'object' && Object.keys(ua).length === 0)) return true;
  if (typeof ua !== 'object' || ua === null) return false;
  const ub = b.uri;
  if (ub === undefined || typeof ub !== 'object' || ub === null) {
    // b accepts any URI: only a prefix "/" (every path starts with it) covers that.
    return ua.prefix === '/';
  }
  const aFold = a.ignoreUriCase === true;
  const bFold = b.ignoreUriCase === true;
  if (bFold && !aFold) return ua.prefix === '/'; // b accepts case variants a would reject
  const norm = (s: string): string => (aFold ? s.toLowerCase() : s);
  if (typeof ua.prefix === 'string') {
    const p = norm(ua.prefix);
    if (typeof ub.prefix === 'string') return norm(ub.prefix).startsWith(p);
    if (typeof ub.exact === 'string') return norm(ub.exact).startsWith(p);
    return p === '/';
  }
  if (typeof ua.exact === 'string') {
    return typeof ub.exact === 'string' && norm(ub.exact) === norm(ua.exact);
  }
  return false; // regex: we do not reason about regex inclusion
}

/** True when every request matching `b` also matches `a`. */
export function matchCovers(a: HTTPMatchRequest, b: HTTPMatchRequest): boolean {
  if (a === null || typeof a !== 'object' || b === null || typeof b !== 'object') return false;
  for (const key of Object.keys(a)) {
    if (NON_MATCHING_KEYS.has(key) || key === 'uri' || key === 'ignoreUriCase') continue;
    if (!isDeepEqual(a[key], b[key])) return false;
  }
  return uriCovers(a, b);
}

/** A route's match list; an absent or empty list matches everything. */
function matchesOf(route: { match?: readonly HTTPMatchRequest[] }): readonly HTTPMatchRequest[] {
  const raw = list(route.match);
  if (raw.length === 0) return [{}];
  // Entries that are not objects (rejected by schema checks anyway) make the route unjudgeable.
  return raw.every((x) => isObject(x)) ? raw : [];
}

const CATCH_ALL = 'matches every request';

function describe(m: HTTPMatchRequest): string {
  const conds = Object.keys(m).filter((k) => !NON_MATCHING_KEYS.has(k));
  return conds.length === 0 ? CATCH_ALL : JSON.stringify(Object.fromEntries(conds.map((k) => [k, m[k]])));
}

/** True when every connection matching TCP clause `b` also matches `a`: each condition of `a` appears identically in `b`. */
export function l4MatchCovers(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  if (!isObject(a) || !isObject(b)) return false;
  for (const key of Object.keys(a)) if (!NON_MATCHING_KEYS.has(key) && !isDeepEqual(a[key], b[key])) return false;
  return true;
}

/** TLS clauses: `a`'s sniHosts cover every SNI host of `b` (wildcards included), and its other conditions appear identically in `b`. */
export function tlsMatchCovers(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  if (!isObject(a) || !isObject(b)) return false;
  const sa = Array.isArray(a.sniHosts) ? a.sniHosts.filter((h): h is string => typeof h === 'string') : undefined;
  const sb = Array.isArray(b.sniHosts) ? b.sniHosts.filter((h): h is string => typeof h === 'string') : undefined;
  if (sa !== undefined) {
    if (sb === undefined || sb.length === 0 || !sb.every((h) => sa.some((p) => hostMatches(p, h)))) return false;
  }
  for (const key of Object.keys(a)) if (key !== 'sniHosts' && !NON_MATCHING_KEYS.has(key) && !isDeepEqual(a[key], b[key])) return false;
  return true;
}

type Section = 'http' | 'tcp' | 'tls';
type Clause = Record<string, unknown>;
const coversBySection: Readonly<Record<Section, (a: Clause, b: Clause) => boolean>> = {
  http: (a, b) => matchCovers(a as HTTPMatchRequest, b as HTTPMatchRequest),
  tcp: l4MatchCovers,
  tls: tlsMatchCovers,
};

/** Runs ROUTE_SHADOWED / ROUTE_MATCH_INEFFECTIVE over the http, tcp and tls routes of every VirtualService. */
export function checkShadowing(ctx: AnalysisContext): void {
  for (const vs of ctx.of(ResourceTypes.VirtualService)) {
    const spec = view<VirtualServiceView>(vs);
    for (const section of ['http', 'tcp', 'tls'] as const) checkRoutes(ctx, vs, section, list(spec[section]) as readonly { match?: readonly Clause[]; name?: string; delegate?: unknown }[]);
  }
}

function checkRoutes(ctx: AnalysisContext, vs: Resource, section: Section, routes: readonly { match?: readonly Clause[]; name?: string; delegate?: unknown }[]): void {
  // Not filtered: indexes must stay those of the document for field paths.
  const covers = coversBySection[section];
  const earlier: { route: number; clause: number; match: Clause }[] = [];
  routes.forEach((route, i) => {
    if (route === null || typeof route !== 'object' || Array.isArray(route) || route.delegate !== undefined) return;
    const explicit = list(route.match).length > 0;
    const clauses = matchesOf(route as { match?: readonly HTTPMatchRequest[] }) as readonly Clause[];
    if (clauses.length === 0) return;
    const coveredBy = clauses.map((m) => earlier.find((e) => covers(e.match, m)));
    const sameRoute: (typeof earlier)[number][] = [];
    if (coveredBy.every((c) => c !== undefined)) {
      const first = coveredBy[0]!;
      const by = `spec.${section}[${first.route}]${list(routes[first.route].match).length > 0 ? `.match[${first.clause}]` : ''}`;
      const what = section === 'http' ? 'request' : 'connection';
      ctx.report(vs, 'warning', 'ROUTE_SHADOWED',
        `${section} route ${i}${route.name ? ` '${route.name}'` : ''} is never used: earlier ${by} ${describe(first.match) === CATCH_ALL ? `matches every ${what}` : `(${describe(first.match)}) already matches every ${what} this route matches`}`,
        `spec.${section}[${i}]`);
    } else if (explicit) {
      clauses.forEach((m, k) => {
        const by = coveredBy[k] ?? sameRoute.find((e) => covers(e.match, m));
        if (by !== undefined) {
          ctx.report(vs, 'warning', 'ROUTE_MATCH_INEFFECTIVE',
            `match ${k} of ${section} route ${i} is never used: spec.${section}[${by.route}].match[${by.clause}] (${describe(by.match)}) is checked first and covers it`,
            `spec.${section}[${i}].match[${k}]`);
        }
        sameRoute.push({ route: i, clause: k, match: m });
      });
    }
    clauses.forEach((m, k) => earlier.push({ route: i, clause: k, match: m }));
  });
}
