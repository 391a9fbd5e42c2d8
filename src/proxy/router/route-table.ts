/**
 * The route table: an Envoy RouteConfiguration (proto3 JSON) compiled once into frozen matchers,
 * and `match(request)` that picks the virtual host by domain (Envoy's order: exact, suffix
 * wildcards longest first, prefix wildcards longest first, then `*`) and the first route whose
 * match (path specifier, case sensitivity, headers, query parameters, runtime fraction, grpc)
 * holds. Invalid config throws TrellisError(XDS_INVALID) naming the exact field, so the
 * xDS client can NACK with it. What a route does is compiled in route-action.ts.
 */
import { configError, optArr, optBool, optObj, optStr, runtimeFraction, type Json } from '../xds-json.ts';
import { compileHeaderMutation, type HeaderMutation } from './header-mutation.ts';
import { compileHeaderMatcher, compileQueryMatcher, headerValue, parseQuery, type HeaderMatch, type HeaderSource, type QueryMatch } from '../http/matchers.ts';
import {
  compileDirectResponse, compileForwardAction, compilePerFilter, compileRedirect,
  type PerFilterConfigParser, type PerFilterConfigs, type RouteActionKind,
} from './route-action.ts';

/** What the route table needs to know about a request. */
export interface RouteRequest extends HeaderSource {
  /** A uniform random number in [0,1) for runtime_fraction matching (injected: tests seed it). */
  readonly random?: number;
}

type PathMatch = (pathNoQuery: string) => boolean;

/** One compiled route. */
export interface CompiledRoute {
  readonly name: string;
  /** Index in its virtual host (for logs/tests). */
  readonly index: number;
  readonly action: RouteActionKind;
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
  readonly perFilter: PerFilterConfigs;
  /** The path prefix the route matched on (for prefix_rewrite), or undefined. */
  readonly matchedPrefix: string | undefined;
  /** Path matcher for regex rewrites and tests. */
  readonly pathRegex: RegExp | undefined;
  readonly caseSensitive: boolean;
  /** Request body buffer limit for retries/mirroring (per_request_buffer_limit_bytes), undefined = default. */
  readonly bufferLimitBytes: number | undefined;
  /** `decorator.operation`: the span name of requests on this route (tracing). */
  readonly operation: string | undefined;
  /** @internal */
  readonly matches: (req: RouteRequest, pathNoQuery: string) => boolean;
}

/** One compiled virtual host. */
export interface CompiledVirtualHost {
  readonly name: string;
  readonly domains: readonly string[];
  readonly routes: readonly CompiledRoute[];
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
  readonly perFilter: PerFilterConfigs;
  readonly includeAttemptCountInRequest: boolean;
  readonly includeAttemptCountInResponse: boolean;
  readonly bufferLimitBytes: number | undefined;
  /** require_tls: requests not known to be https are redirected there (ALL), or only external ones (EXTERNAL_ONLY). */
  readonly requireTls: 'NONE' | 'EXTERNAL_ONLY' | 'ALL';
  /** The https redirect require_tls answers with (undefined for NONE). */
  readonly tlsRedirect: CompiledRoute | undefined;
}

/** The result of matching a request. */
export interface RouteMatch {
  readonly virtualHost: CompiledVirtualHost;
  readonly route: CompiledRoute;
  readonly action: RouteActionKind;
}

/** A compiled RouteConfiguration. */
export interface CompiledRouteTable {
  readonly name: string;
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
  readonly mostSpecificHeaderMutationsWins: boolean;
  readonly perFilter: PerFilterConfigs;
  readonly virtualHosts: readonly CompiledVirtualHost[];
  /** Find the virtual host for an authority (Host header). */
  findVirtualHost(authority: string): CompiledVirtualHost | undefined;
  /** Find the virtual host and route for a request, or undefined (404 NR). */
  match(req: RouteRequest): RouteMatch | undefined;
}

/** Options for compileRouteTable. */
export interface RouteTableOptions {
  /** Parses typed_per_filter_config entries (the filter registry supplies it); raw JSON is kept when absent. */
  perFilterConfigParser?: PerFilterConfigParser;
}

/** Compile a RouteConfiguration with the filters' per-filter config parsers (what RDS consumers call: a bad per-filter config NACKs). */
export function compileRouteConfiguration(json: unknown, filters: { perFilterConfigParser(): PerFilterConfigParser }, path = 'route_config'): CompiledRouteTable {
  return compileRouteTable(json, { perFilterConfigParser: filters.perFilterConfigParser() }, path);
}

/** Compile a RouteConfiguration (proto3 JSON). Throws TrellisError(XDS_INVALID) with the field path. */
export function compileRouteTable(json: unknown, options: RouteTableOptions = {}, path = 'route_config'): CompiledRouteTable {
  const rc = optObj(json, path) ?? configError(path, 'expected a RouteConfiguration object');
  const parse = options.perFilterConfigParser;
  const vhosts = optArr(rc.virtual_hosts, `${path}.virtual_hosts`).map((v, i) => compileVirtualHost(v, `${path}.virtual_hosts[${i}]`, parse));
  const exact = new Map<string, CompiledVirtualHost>();
  const suffix = new Map<number, Map<string, CompiledVirtualHost>>();
  const prefix = new Map<number, Map<string, CompiledVirtualHost>>();
  let star: CompiledVirtualHost | undefined;
  vhosts.forEach((vh, i) => {
    vh.domains.forEach((d, j) => {
      const p = `${path}.virtual_hosts[${i}].domains[${j}]`;
      const dup = () => configError(p, `domain '${d}' is already used by another virtual host`);
      if (d === '*') {
        if (star) dup();
        star = vh;
      } else if (d.startsWith('*')) {
        const rest = d.slice(1);
        if (rest.includes('*')) configError(p, `only one wildcard is allowed in '${d}'`);
        const m = suffix.get(rest.length) ?? new Map();
        if (m.has(rest)) dup();
        suffix.set(rest.length, m.set(rest, vh));
      } else if (d.endsWith('*')) {
        const rest = d.slice(0, -1);
        if (rest.includes('*')) configError(p, `only one wildcard is allowed in '${d}'`);
        const m = prefix.get(rest.length) ?? new Map();
        if (m.has(rest)) dup();
        prefix.set(rest.length, m.set(rest, vh));
      } else {
        if (d.includes('*')) configError(p, `wildcard must be at the start or the end of '${d}'`);
        if (exact.has(d)) dup();
        exact.set(d, vh);
      }
    });
  });
  const suffixLens = [...suffix.keys()].sort((a, b) => b - a);
  const prefixLens = [...prefix.keys()].sort((a, b) => b - a);
  const ignorePort = optBool(rc.ignore_port_in_host_matching, `${path}.ignore_port_in_host_matching`) ?? false;

  function findVirtualHost(authority: string): CompiledVirtualHost | undefined {
    let host = authority.toLowerCase();
    if (ignorePort) host = stripPort(host);
    const e = exact.get(host);
    if (e) return e;
    // Wildcards must match at least one character, hence the strict length comparison.
    for (let i = 0; i < suffixLens.length; i++) {
      const len = suffixLens[i];
      if (host.length <= len) continue;
      const hit = suffix.get(len)!.get(host.slice(host.length - len));
      if (hit) return hit;
    }
    for (let i = 0; i < prefixLens.length; i++) {
      const len = prefixLens[i];
      if (host.length <= len) continue;
      const hit = prefix.get(len)!.get(host.slice(0, len));
      if (hit) return hit;
    }
    return star;
  }

  const matchOf = new Map<CompiledRoute, RouteMatch>();
  const table: CompiledRouteTable = {
    name: optStr(rc.name, `${path}.name`) ?? '',
    requestHeaders: compileHeaderMutation(rc, 'request', path),
    responseHeaders: compileHeaderMutation(rc, 'response', path),
    mostSpecificHeaderMutationsWins: optBool(rc.most_specific_header_mutations_wins, `${path}.most_specific_header_mutations_wins`) ?? false,
    perFilter: compilePerFilter(rc.typed_per_filter_config, `${path}.typed_per_filter_config`, parse),
    virtualHosts: Object.freeze(vhosts),
    findVirtualHost,
    match(req) {
      const vh = findVirtualHost(req.authority);
      if (!vh) return undefined;
      if (vh.tlsRedirect !== undefined && needsTlsRedirect(vh.requireTls, req)) return { virtualHost: vh, route: vh.tlsRedirect, action: vh.tlsRedirect.action };
      const q = req.path.indexOf('?');
      const pathNoQuery = q < 0 ? req.path : req.path.slice(0, q);
      const routes = vh.routes;
      for (let i = 0; i < routes.length; i++) {
        const r = routes[i];
        if (!r.matches(req, pathNoQuery)) continue;
        // A match is the same three references every time: made once per route, not per request.
        let hit = matchOf.get(r);
        if (hit === undefined) matchOf.set(r, (hit = Object.freeze({ virtualHost: vh, route: r, action: r.action })));
        return hit;
      }
      return undefined;
    },
  };
  return Object.freeze(table);
}

/** Remove a `:port` suffix from a host (IPv6 literals in brackets keep their colons). */
export function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end < 0 ? host : host.slice(0, end + 1);
  }
  const c = host.lastIndexOf(':');
  return c < 0 || host.indexOf(':') !== c ? host : host.slice(0, c);
}

function compileVirtualHost(v: unknown, path: string, parse: PerFilterConfigParser | undefined): CompiledVirtualHost {
  const o = optObj(v, path) ?? configError(path, 'expected a VirtualHost');
  const domains = optArr(o.domains, `${path}.domains`).map((d, i) => (optStr(d, `${path}.domains[${i}]`) ?? '').toLowerCase());
  if (domains.length === 0) configError(`${path}.domains`, 'at least one domain is required');
  const requireTls = o.require_tls === undefined ? 'NONE' : o.require_tls;
  if (requireTls !== 'NONE' && requireTls !== 'EXTERNAL_ONLY' && requireTls !== 'ALL') configError(`${path}.require_tls`, `expected NONE, EXTERNAL_ONLY or ALL, got ${JSON.stringify(requireTls)}`);
  const routes = optArr(o.routes, `${path}.routes`).map((r, i) => compileRoute(r, `${path}.routes[${i}]`, i, o, path, parse));
  const bufferLimit = perRequestBufferLimit(o, path);
  return Object.freeze({
    name: optStr(o.name, `${path}.name`) ?? '',
    domains: Object.freeze(domains),
    routes: Object.freeze(routes),
    requestHeaders: compileHeaderMutation(o, 'request', path),
    responseHeaders: compileHeaderMutation(o, 'response', path),
    perFilter: compilePerFilter(o.typed_per_filter_config, `${path}.typed_per_filter_config`, parse),
    includeAttemptCountInRequest: optBool(o.include_request_attempt_count, `${path}.include_request_attempt_count`) ?? false,
    includeAttemptCountInResponse: optBool(o.include_attempt_count_in_response, `${path}.include_attempt_count_in_response`) ?? false,
    bufferLimitBytes: bufferLimit,
    requireTls,
    tlsRedirect: requireTls === 'NONE' ? undefined : tlsRedirectRoute(path),
  });
}

/** Envoy's SSL redirect route: 301 to the same URL with https (Istio's Gateway `httpsRedirect`). */
function tlsRedirectRoute(path: string): CompiledRoute {
  return Object.freeze({
    name: '', index: -1,
    action: compileRedirect({ https_redirect: true }, `${path}.require_tls`),
    requestHeaders: compileHeaderMutation({}, 'request', path),
    responseHeaders: compileHeaderMutation({}, 'response', path),
    perFilter: compilePerFilter(undefined, path, undefined),
    matchedPrefix: undefined, pathRegex: undefined, caseSensitive: true, bufferLimitBytes: undefined, operation: undefined,
    matches: () => true,
  });
}

/** As Envoy decides it: by x-forwarded-proto (the edge sets it from the connection), EXTERNAL_ONLY sparing x-envoy-internal requests. */
function needsTlsRedirect(mode: 'NONE' | 'EXTERNAL_ONLY' | 'ALL', req: RouteRequest): boolean {
  const xfp = headerValue(req, 'x-forwarded-proto') ?? req.scheme;
  if (xfp === 'https') return false;
  return mode === 'ALL' || (mode === 'EXTERNAL_ONLY' && headerValue(req, 'x-envoy-internal') !== 'true');
}

function perRequestBufferLimit(o: Json, path: string): number | undefined {
  const v = o.per_request_buffer_limit_bytes;
  if (v === undefined || v === null) return undefined;
  const n = Number(typeof v === 'object' ? (v as Json).value : v);
  if (!Number.isInteger(n) || n < 0) configError(`${path}.per_request_buffer_limit_bytes`, 'expected a non-negative integer');
  return n;
}

function compileRoute(v: unknown, path: string, index: number, vhost: Json, vhostPath: string, parse: PerFilterConfigParser | undefined): CompiledRoute {
  const o = optObj(v, path) ?? configError(path, 'expected a Route');
  const m = optObj(o.match, `${path}.match`) ?? configError(`${path}.match`, 'is required');
  const mp = `${path}.match`;
  const caseSensitive = optBool(m.case_sensitive, `${mp}.case_sensitive`) ?? true;
  const fold = (s: string) => (caseSensitive ? s : s.toLowerCase());
  let pathMatch: PathMatch;
  let matchedPrefix: string | undefined;
  let pathRegex: RegExp | undefined;
  const specifiers = ['prefix', 'path', 'safe_regex', 'path_separated_prefix', 'connect_matcher', 'path_match_policy'].filter((k) => m[k] !== undefined);
  if (specifiers.length !== 1) configError(mp, `exactly one path specifier is required (prefix, path, safe_regex, path_separated_prefix), got ${specifiers.length === 0 ? 'none' : specifiers.join(', ')}`);
  if (m.prefix !== undefined) {
    const p = fold(optStr(m.prefix, `${mp}.prefix`) ?? '');
    matchedPrefix = optStr(m.prefix, `${mp}.prefix`);
    pathMatch = caseSensitive ? (s) => s.startsWith(p) : (s) => s.toLowerCase().startsWith(p);
  } else if (m.path !== undefined) {
    const p = fold(optStr(m.path, `${mp}.path`) ?? '');
    pathMatch = caseSensitive ? (s) => s === p : (s) => s.toLowerCase() === p;
  } else if (m.safe_regex !== undefined) {
    const ro = optObj(m.safe_regex, `${mp}.safe_regex`);
    const src = optStr(ro?.regex, `${mp}.safe_regex.regex`) ?? configError(`${mp}.safe_regex.regex`, 'is required');
    try {
      // Envoy ignores case_sensitive for regexes.
      pathRegex = new RegExp(`^(?:${src})$`);
    } catch (err) {
      configError(`${mp}.safe_regex.regex`, `invalid regex '${src}'`, err);
    }
    const re = pathRegex;
    pathMatch = (s) => re.test(s);
  } else if (m.path_separated_prefix !== undefined) {
    const raw = optStr(m.path_separated_prefix, `${mp}.path_separated_prefix`) ?? '';
    if (raw === '' || raw.endsWith('/') || /[?#]/.test(raw)) configError(`${mp}.path_separated_prefix`, `'${raw}' must not be empty, end with '/' or contain '?' or '#'`);
    const p = fold(raw);
    matchedPrefix = raw;
    pathMatch = (s) => {
      const f = fold(s);
      return f.startsWith(p) && (f.length === p.length || f.charCodeAt(p.length) === 47 /* '/' */);
    };
  } else if (m.connect_matcher !== undefined) {
    pathMatch = () => true;
  } else {
    return configError(`${mp}.path_match_policy`, 'path match policy extensions are not supported');
  }
  const isConnect = m.connect_matcher !== undefined;
  const headers: HeaderMatch[] = optArr(m.headers, `${mp}.headers`).map((h, i) => compileHeaderMatcher(h, `${mp}.headers[${i}]`));
  const query: QueryMatch[] = optArr(m.query_parameters, `${mp}.query_parameters`).map((q, i) => compileQueryMatcher(q, `${mp}.query_parameters[${i}]`));
  const fraction = runtimeFraction(m.runtime_fraction, `${mp}.runtime_fraction`);
  const grpc = m.grpc !== undefined && m.grpc !== null;
  if (m.dynamic_metadata !== undefined || m.filter_state !== undefined || m.cel_expr !== undefined) configError(mp, 'dynamic_metadata, filter_state and cel_expr matchers are not supported');

  const matches = (req: RouteRequest, pathNoQuery: string): boolean => {
    if (isConnect !== (req.method === 'CONNECT')) return false;
    if (!pathMatch(pathNoQuery)) return false;
    if (grpc && !(headerValue(req, 'content-type') ?? '').startsWith('application/grpc')) return false;
    for (let i = 0; i < headers.length; i++) if (!headers[i](req)) return false;
    if (query.length > 0) {
      const qp = parseQuery(req.path);
      for (const q of query) if (!q(qp)) return false;
    }
    if (fraction !== undefined && !((req.random ?? Math.random()) < fraction)) return false;
    return true;
  };

  const actions = ['route', 'redirect', 'direct_response', 'non_forwarding_action', 'filter_action'].filter((k) => o[k] !== undefined);
  if (actions.length !== 1) configError(path, `exactly one action is required (route, redirect, direct_response), got ${actions.length === 0 ? 'none' : actions.join(', ')}`);
  let action: RouteActionKind;
  if (o.route !== undefined) action = compileForwardAction(optObj(o.route, `${path}.route`)!, `${path}.route`, vhost, vhostPath, parse);
  else if (o.redirect !== undefined) action = compileRedirect(optObj(o.redirect, `${path}.redirect`)!, `${path}.redirect`);
  else if (o.direct_response !== undefined) action = compileDirectResponse(optObj(o.direct_response, `${path}.direct_response`)!, `${path}.direct_response`);
  else if (o.non_forwarding_action !== undefined) action = Object.freeze({ kind: 'non_forwarding' as const });
  else return configError(`${path}.filter_action`, 'not supported');

  return Object.freeze({
    name: optStr(o.name, `${path}.name`) ?? '',
    index,
    action,
    requestHeaders: compileHeaderMutation(o, 'request', path),
    responseHeaders: compileHeaderMutation(o, 'response', path),
    perFilter: compilePerFilter(o.typed_per_filter_config, `${path}.typed_per_filter_config`, parse),
    matchedPrefix,
    pathRegex,
    caseSensitive,
    bufferLimitBytes: perRequestBufferLimit(o, path),
    operation: optStr(optObj(o.decorator, `${path}.decorator`)?.operation, `${path}.decorator.operation`),
    matches,
  });
}
