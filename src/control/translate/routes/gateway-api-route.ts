/**
 * Gateway API HTTPRoute / GRPCRoute rules -> Envoy `Route`s, as Istio's gateway controller does:
 * PathPrefix as Envoy `path_separated_prefix` (element-wise: `/foo` matches `/foo/bar`, not
 * `/foobar`), GRPCRoute methods as `/service/method` paths, filters (header modifiers, redirect,
 * URL rewrite, mirror, CORS), weighted backends with invalid backends answering 500, timeouts and
 * retries; and the spec's precedence order across rules and routes (`sortGatewayApiRoutes`).
 */

import { escapeFormatString } from '../../../xds/format-string.ts';
import { configMetadataPath, outboundClusterName } from '../names.ts';
import { type AnyRoute, resolveBackend } from './attachment.ts';
import {
  CORS_FILTER,
  corsConfig,
  fractionalPercent,
  headerValueOption,
  redirectResponseCode,
  retryPolicy,
  toDuration,
} from './envoy.ts';
import type { RouteInputs } from './types.ts';
import type { GRPCRouteMatch, HTTPHeaderMatch, HTTPRouteMatch, HeaderModifier, RouteFilter, RouteRule } from '../../../config/views.ts';

type Json = Record<string, unknown>;

/** The cluster name invalid backends route to: it never exists, and the route answers 500 for it. */
export const INVALID_BACKEND_CLUSTER = 'trellis|invalid-backend';

/** One generated route with what Gateway API precedence needs to order it. */
export interface RankedRoute {
  readonly route: Json;
  /** 3 exact, 2 prefix, 1 regex, 0 none (Istio's `getURIRank`). */
  readonly pathRank: number;
  readonly pathLength: number;
  readonly hasMethod: boolean;
  readonly headerCount: number;
  readonly queryCount: number;
  readonly creation: string;
  readonly key: string;
  readonly ruleIndex: number;
  readonly matchIndex: number;
}

/** Sorts by the Gateway API's precedence: exact path, longest path, method, most headers, most query params, oldest route, name, rule/match order. */
export function sortGatewayApiRoutes(rs: readonly RankedRoute[]): Json[] {
  return [...rs]
    .sort(
      (a, b) =>
        b.pathRank - a.pathRank ||
        b.pathLength - a.pathLength ||
        Number(b.hasMethod) - Number(a.hasMethod) ||
        b.headerCount - a.headerCount ||
        b.queryCount - a.queryCount ||
        (a.creation < b.creation ? -1 : a.creation > b.creation ? 1 : 0) ||
        (a.key < b.key ? -1 : a.key > b.key ? 1 : 0) ||
        a.ruleIndex - b.ruleIndex ||
        a.matchIndex - b.matchIndex,
    )
    .map((r) => r.route);
}

function headerMatch(h: HTTPHeaderMatch): Json {
  const sm = h.type === 'RegularExpression' ? { safe_regex: { regex: h.value } } : { exact: h.value };
  return { name: h.name.toLowerCase(), string_match: sm };
}

interface MatchInfo {
  readonly match: Json;
  readonly pathRank: number;
  readonly pathLength: number;
  readonly hasMethod: boolean;
  readonly headerCount: number;
  readonly queryCount: number;
  /** The path prefix matched, for ReplacePrefixMatch rewrites. */
  readonly prefix?: string;
}

/** Envoy RouteMatch for an HTTPRoute match. */
export function httpRouteMatch(m: HTTPRouteMatch | undefined): MatchInfo {
  const out: Json = {};
  const type = m?.path?.type ?? 'PathPrefix';
  const value = m?.path?.value ?? '/';
  let pathRank = 2;
  let prefix: string | undefined;
  if (type === 'Exact') {
    out.path = value;
    pathRank = 3;
  } else if (type === 'RegularExpression') {
    out.safe_regex = { regex: value };
    pathRank = 1;
  } else {
    const trimmed = value.length > 1 ? value.replace(/\/+$/, '') : value;
    prefix = trimmed;
    if (trimmed === '/' || trimmed === '') out.prefix = '/';
    else out.path_separated_prefix = trimmed;
    if (m?.path === undefined) pathRank = 2;
  }
  const headers: Json[] = (m?.headers ?? []).map(headerMatch);
  if (m?.method) headers.push({ name: ':method', string_match: { exact: m.method } });
  if (headers.length) out.headers = headers;
  const qps = (m?.queryParams ?? []).map((q) => ({
    name: q.name,
    string_match: q.type === 'RegularExpression' ? { safe_regex: { regex: q.value } } : { exact: q.value },
  }));
  if (qps.length) out.query_parameters = qps;
  return {
    match: out,
    pathRank,
    pathLength: value.length,
    hasMethod: m?.method !== undefined,
    headerCount: m?.headers?.length ?? 0,
    queryCount: qps.length,
    prefix,
  };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Envoy RouteMatch for a GRPCRoute match: the method becomes the `/service/method` path. */
export function grpcRouteMatch(m: GRPCRouteMatch | undefined): MatchInfo {
  const out: Json = {};
  const svc = m?.method?.service;
  const meth = m?.method?.method;
  let pathRank = 0;
  let pathLength = 0;
  if (m?.method?.type === 'RegularExpression') {
    out.safe_regex = { regex: `/${svc || '[^/]+'}/${meth || '[^/]+'}` };
    pathRank = 1;
    pathLength = (svc ?? '').length + (meth ?? '').length;
  } else if (svc && meth) {
    const path = `/${svc}/${meth}`;
    out.path = path;
    pathRank = 3;
    pathLength = path.length;
  } else if (svc) {
    out.prefix = `/${svc}/`;
    pathRank = 2;
    pathLength = svc.length;
  } else if (meth) {
    out.safe_regex = { regex: `/[^/]+/${escapeRegex(meth)}` };
    pathRank = 1;
    pathLength = meth.length;
  } else {
    out.prefix = '/';
  }
  const headers = (m?.headers ?? []).map(headerMatch);
  if (headers.length) out.headers = headers;
  return { match: out, pathRank, pathLength, hasMethod: false, headerCount: headers.length, queryCount: 0 };
}

/** Gateway API header values are literal (unlike Istio's, which Envoy formats): `%` is escaped. */
function applyModifier(target: Json, mod: HeaderModifier | undefined, dir: 'request' | 'response'): void {
  if (!mod) return;
  const opts = [
    ...(mod.set ?? []).map((h) => headerValueOption(h.name, escapeFormatString(h.value), false)),
    ...(mod.add ?? []).map((h) => headerValueOption(h.name, escapeFormatString(h.value), true)),
  ];
  const addField = `${dir}_headers_to_add`;
  const removeField = `${dir}_headers_to_remove`;
  if (opts.length) target[addField] = [...((target[addField] as Json[] | undefined) ?? []), ...opts];
  if (mod.remove?.length) target[removeField] = [...((target[removeField] as string[] | undefined) ?? []), ...mod.remove];
}

function ruleFilters(rule: RouteRule<unknown>): RouteFilter[] {
  return [...(rule.filters ?? []), ...(rule.backendRefs ?? []).flatMap((b) => b.filters ?? [])];
}

/** ExtensionRef filters name custom filters we do not have: the spec wants such rules to answer with an error, never skip the filter. */
function hasExtensionRef(rule: RouteRule<unknown>): boolean {
  return ruleFilters(rule).some((f) => f.type === 'ExtensionRef');
}

function prefixRewrite(prefix: string | undefined, replacement: string): Json {
  // Replacing a path-separated prefix with "/" must not leave "//rest": strip the prefix and its slashes instead.
  if (prefix !== undefined && prefix !== '/' && (replacement === '/' || replacement === '')) {
    return { regex_rewrite: { pattern: { regex: `^${escapeRegex(prefix)}/*` }, substitution: '/' } };
  }
  const r = replacement.length > 1 ? replacement.replace(/\/+$/, '') : replacement;
  if (prefix === '/' && r !== '/') return { regex_rewrite: { pattern: { regex: '^/' }, substitution: `${r}/` } };
  return { prefix_rewrite: r };
}

/** The listener (Gateway listener, or the Service port for GAMMA routes) a route is served on. */
export interface ServingListener {
  readonly port: number;
  /** What clients speak to it: https on an HTTPS listener (TLS terminated there), else http. */
  readonly scheme: 'http' | 'https';
  /** The route is served for its Service parent (GAMMA): see resolveBackend. */
  readonly mesh: boolean;
}

const WELL_KNOWN_PORTS: Readonly<Record<string, number>> = { http: 80, https: 443 };

/**
 * `port_redirect` of a RequestRedirect (undefined: none). The Gateway API's port is `port` when
 * given, else the well-known port of `scheme` when given, else the listener's port; and Location
 * SHOULD NOT show 80 for http or 443 for https. Envoy writes Location from host_redirect, else
 * from the request's Host keeping its port unless port_redirect is set or the scheme changes
 * away from that port's default (Http::Utility::newUri, processRequestHost), then appends
 * port_redirect as given. So the port is set unless Envoy's Location without it already means
 * it: the scheme's default port with the host replaced, or with a Host that can only carry this
 * listener's default port (dropped by Envoy on a scheme change, the wanted port otherwise).
 */
export function redirectPort(f: NonNullable<RouteFilter['requestRedirect']>, listener: Pick<ServingListener, 'port' | 'scheme'>): number | undefined {
  const scheme = f.scheme ?? listener.scheme;
  const wanted = f.port ?? (f.scheme !== undefined ? WELL_KNOWN_PORTS[scheme] : listener.port);
  if (wanted === undefined || wanted !== WELL_KNOWN_PORTS[scheme]) return wanted;
  if (f.hostname || listener.port === WELL_KNOWN_PORTS[listener.scheme]) return undefined;
  return wanted;
}

function redirectAction(f: NonNullable<RouteFilter['requestRedirect']>, info: MatchInfo, listener: ServingListener): Json {
  const out: Json = {};
  if (f.scheme) out.scheme_redirect = f.scheme;
  if (f.hostname) out.host_redirect = f.hostname;
  const port = redirectPort(f, listener);
  if (port !== undefined) out.port_redirect = port;
  if (f.path?.type === 'ReplaceFullPath') out.path_redirect = f.path.replaceFullPath ?? '/';
  else if (f.path?.type === 'ReplacePrefixMatch') Object.assign(out, prefixRewrite(info.prefix, f.path.replacePrefixMatch ?? '/'));
  out.response_code = redirectResponseCode(f.statusCode ?? 302);
  return out;
}

function mirrorPercent(m: NonNullable<RouteFilter['requestMirror']>): number {
  if (m.percent !== undefined) return m.percent;
  if (m.fraction?.numerator !== undefined) return (m.fraction.numerator / (m.fraction.denominator ?? 100)) * 100;
  return 100;
}

/**
 * The Envoy route (without match) for one rule, shared by every match of the rule.
 * `info` is used for prefix rewrites, which depend on the matched prefix.
 */
function ruleRoute(inputs: RouteInputs, route: AnyRoute, rule: RouteRule<unknown>, info: MatchInfo, listener: ServingListener): Json {
  const out: Json = {};
  if (hasExtensionRef(rule)) {
    out.direct_response = { status: 500 };
    return out;
  }
  let redirect: Json | undefined;
  let rewrite: Json | undefined;
  const mirrors: Json[] = [];
  const tpfc: Json = {};
  // Redirect / rewrite / mirror filters on the only backend act on the whole route (Envoy cannot
  // redirect or rewrite per weighted cluster); header modifiers stay per backend below.
  const live = (rule.backendRefs ?? []).filter((b) => (b.weight ?? 1) > 0);
  const lifted = live.length === 1 ? (live[0].filters ?? []).filter((f) => f.type === 'RequestRedirect' || f.type === 'URLRewrite' || f.type === 'RequestMirror') : [];
  for (const f of [...(rule.filters ?? []), ...lifted]) {
    if (f.type === 'RequestHeaderModifier') applyModifier(out, f.requestHeaderModifier, 'request');
    else if (f.type === 'ResponseHeaderModifier') applyModifier(out, f.responseHeaderModifier, 'response');
    else if (f.type === 'RequestRedirect' && f.requestRedirect) redirect = redirectAction(f.requestRedirect, info, listener);
    else if (f.type === 'URLRewrite' && f.urlRewrite) {
      rewrite = {};
      if (f.urlRewrite.hostname) rewrite.host_rewrite_literal = f.urlRewrite.hostname;
      const p = f.urlRewrite.path;
      if (p?.type === 'ReplaceFullPath') rewrite.regex_rewrite = { pattern: { regex: '^/.*$' }, substitution: p.replaceFullPath ?? '/' };
      else if (p?.type === 'ReplacePrefixMatch') Object.assign(rewrite, prefixRewrite(info.prefix, p.replacePrefixMatch ?? '/'));
    } else if (f.type === 'RequestMirror' && f.requestMirror?.backendRef) {
      const res = resolveBackend(inputs, route, f.requestMirror.backendRef, listener.mesh);
      if (res.service && res.port !== undefined) {
        mirrors.push({
          cluster: outboundClusterName(res.port, '', res.service.hostname),
          runtime_fraction: { default_value: fractionalPercent(mirrorPercent(f.requestMirror)) },
          trace_sampled: false,
        });
      }
    } else if (f.type === 'CORS' && f.cors) {
      const c = f.cors;
      tpfc[CORS_FILTER] = corsConfig({
        // Envoy rejects an empty prefix, so `*` is a match-all regex; a `*` inside an origin matches any
        // characters, dots included (conformance HTTPRouteCORS: https://*.bar.com allows https://xpto.www.bar.com).
        origins: (c.allowOrigins ?? []).map((o) => (o === '*' ? { safe_regex: { regex: '.*' } } : o.includes('*') ? { safe_regex: { regex: `^${o.split('*').map(escapeRegex).join('.*')}$` } } : { exact: o })),
        methods: c.allowMethods,
        headers: c.allowHeaders,
        exposeHeaders: c.exposeHeaders,
        maxAgeSeconds: c.maxAge,
        allowCredentials: c.allowCredentials,
        // Gateway API: the gateway answers every preflight itself (conformance HTTPRouteCORS).
        forwardNotMatchingPreflights: false,
      });
    }
  }
  if (Object.keys(tpfc).length) out.typed_per_filter_config = tpfc;
  if (redirect) {
    out.redirect = redirect;
    return out;
  }
  const refs = rule.backendRefs ?? [];
  const backends: Json[] = [];
  let invalid = false;
  for (const b of refs) {
    const weight = b.weight ?? 1;
    if (weight === 0) continue;
    const res = resolveBackend(inputs, route, b, listener.mesh);
    const cw: Json = {
      name: res.service && res.port !== undefined ? outboundClusterName(res.port, '', res.service.hostname) : INVALID_BACKEND_CLUSTER,
      weight,
    };
    if (!res.service) invalid = true;
    for (const f of b.filters ?? []) {
      if (f.type === 'RequestHeaderModifier') applyModifier(cw, f.requestHeaderModifier, 'request');
      else if (f.type === 'ResponseHeaderModifier') applyModifier(cw, f.responseHeaderModifier, 'response');
    }
    backends.push(cw);
  }
  if (backends.length === 0 || backends.every((b) => b.name === INVALID_BACKEND_CLUSTER)) {
    // No backend, all weights 0, or nothing resolvable: the spec asks for 500s.
    out.direct_response = { status: 500 };
    return out;
  }
  const action: Json = {};
  if (backends.length === 1) {
    const { name, weight, ...headers } = backends[0];
    void weight;
    action.cluster = name;
    for (const [k, v] of Object.entries(headers)) out[k] = [...((out[k] as unknown[] | undefined) ?? []), ...(v as unknown[])];
  } else {
    action.weighted_clusters = { clusters: backends };
  }
  if (invalid) action.cluster_not_found_response_code = 'INTERNAL_SERVER_ERROR';
  const timeout = toDuration(rule.timeouts?.request) ?? '0s';
  action.timeout = timeout;
  if (rewrite) Object.assign(action, rewrite);
  const perTry = toDuration(rule.timeouts?.backendRequest);
  const retry = rule.retry;
  const policy = retry
    ? retryPolicy({
        attempts: retry.attempts ?? 2,
        // Gateway API: implementations SHOULD retry connection errors (disconnect, reset, timeout,
        // TCP failure) when a retry stanza is set (conformance HTTPRouteRetryConnectionError).
        retryOn: 'connect-failure,reset,refused-stream,unavailable,cancelled',
        retriableStatusCodes: retry.codes ?? [],
        perTryTimeout: perTry,
        backoffBase: toDuration(retry.backoff),
      })
    : retryPolicy(perTry !== undefined ? { perTryTimeout: perTry } : {});
  if (policy) action.retry_policy = policy;
  if (mirrors.length) action.request_mirror_policies = mirrors;
  // See istio-route.ts: grpc-timeout cap only; proxyless gRPC gets max_stream_duration from listeners-grpc.ts.
  if (timeout !== undefined && timeout !== '0s') action.max_stream_duration = { grpc_timeout_header_max: timeout };
  out.route = action;
  return out;
}

/** Name Istio-style: `<ns>.<route>.<rule index or rule name>`. */
function routeName(route: AnyRoute, rule: RouteRule<unknown>, index: number): string {
  const m = route.resource.metadata;
  return `${m.namespace}.${m.name}.${rule.name ?? index}`;
}

/** All ranked Envoy routes of one HTTPRoute or GRPCRoute served on `listener` (before precedence sorting). */
export function gatewayApiRoutes(inputs: RouteInputs, route: AnyRoute, listener: ServingListener): RankedRoute[] {
  const out: RankedRoute[] = [];
  const meta = route.resource.metadata;
  const key = `${meta.namespace}/${meta.name}`;
  const routeMetadata = { filter_metadata: { istio: { config: configMetadataPath('gateway.networking.k8s.io/v1', route.kind === 'GRPCRoute' ? 'grpc-route' : 'http-route', meta.namespace, meta.name) } } };
  const rules = (route.resource.spec.rules ?? []) as readonly RouteRule<HTTPRouteMatch | GRPCRouteMatch>[];
  rules.forEach((rule, ruleIndex) => {
    const matches: (HTTPRouteMatch | GRPCRouteMatch | undefined)[] = rule.matches?.length ? [...rule.matches] : [undefined];
    matches.forEach((m, matchIndex) => {
      const info = route.kind === 'GRPCRoute' ? grpcRouteMatch(m as GRPCRouteMatch | undefined) : httpRouteMatch(m as HTTPRouteMatch | undefined);
      const body = ruleRoute(inputs, route, rule, info, listener);
      const r: Json = { name: routeName(route, rule, ruleIndex), match: info.match, ...body, metadata: routeMetadata };
      out.push({
        route: r,
        pathRank: info.pathRank,
        pathLength: info.pathLength,
        hasMethod: info.hasMethod,
        headerCount: info.headerCount,
        queryCount: info.queryCount,
        creation: meta.creationTimestamp ?? '',
        key,
        ruleIndex,
        matchIndex,
      });
    });
  });
  return out;
}
