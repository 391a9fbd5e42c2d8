/**
 * One VirtualService `http` entry -> Envoy `Route`s, following Istio's `translateRoute`: one
 * Envoy route per match (or one catch-all), matches filtered at translation time by gateway,
 * port, sourceLabels and sourceNamespace (a route whose matches all fall away disappears), then the
 * action (redirect, direct response or route with weights, timeout, retries, rewrite, mirrors),
 * header mutations, and per-route fault / CORS filter configs.
 */

import type { ProxyNode } from '../../proxy-node.ts';
import type { ServiceInfo } from '../../../registry/types.ts';
import { outboundClusterName, virtualServiceMetadata } from '../names.ts';
import {
  CORS_FILTER,
  FAULT_FILTER,
  corsConfig,
  faultConfig,
  fractionalPercent,
  grpcStatusCode,
  headerValueOption,
  redirectResponseCode,
  regexMatcher,
  retryPolicy,
  toDuration,
} from './envoy.ts';
import { resolveHost } from './hosts.ts';
import type { Destination, HTTPMatchRequest, RouteHeaders, StringMatch, HTTPRoute } from '../../../config/views.ts';

type Json = Record<string, unknown>;

/** Where the routes are generated: for which proxy, listener port and gateway binding. */
export interface IstioRouteContext {
  /** `mesh` for sidecars; `<ns>/<name>` of the Istio Gateways served, for gateways. */
  readonly gatewayNames: readonly string[];
  readonly port: number;
  readonly proxy: ProxyNode;
  readonly domainSuffix: string;
  readonly servicesByHost: ReadonlyMap<string, ServiceInfo>;
}

/** A VirtualService http entry together with the namespace its names resolve in and the VS's gateways. */
export interface FlatHttp {
  readonly http: HTTPRoute;
  readonly namespace: string;
  readonly vsGateways: readonly string[];
  /** Matches already merged with a delegating root's (undefined = the entry's own). */
  readonly matches?: readonly HTTPMatchRequest[];
  /** The owning VirtualService carries {@link HedgeAnnotation} `"true"` (Trellis extension). */
  readonly hedgeOnPerTryTimeout?: boolean;
  /** The (root) VirtualService the entry belongs to, named in each route's `istio.config` metadata as Istio does. */
  readonly source: { readonly namespace: string; readonly name: string };
}

/**
 * Trellis extension (docs/extensions.md): a VirtualService annotated with this key set to `"true"`
 * gets Envoy's `hedge_policy: { hedge_on_per_try_timeout: true }` on every route generated from
 * its http entries that have `retries.perTryTimeout`: when the per-try timeout fires, a second
 * attempt races the first instead of replacing it. Istio's API has no hedging field.
 */
export const HedgeAnnotation = 'trellis.dev/hedge-on-per-try-timeout';

/** Resolves a VS `gateways` entry to `ns/name` (`mesh` stays `mesh`). */
export function qualifyGateway(name: string, namespace: string): string {
  if (name === 'mesh' || name.includes('/')) return name;
  return `${namespace}/${name}`;
}

function matchApplies(m: HTTPMatchRequest, flat: FlatHttp, ctx: IstioRouteContext): boolean {
  const gws = m.gateways?.length ? m.gateways : flat.vsGateways.length ? flat.vsGateways : ['mesh'];
  if (!gws.some((g) => ctx.gatewayNames.includes(qualifyGateway(g, flat.namespace)))) return false;
  if (m.port !== undefined && m.port !== ctx.port) return false;
  if (m.sourceLabels) {
    for (const [k, v] of Object.entries(m.sourceLabels)) if (ctx.proxy.labels[k] !== v) return false;
  }
  if (m.sourceNamespace !== undefined && m.sourceNamespace !== ctx.proxy.namespace) return false;
  return true;
}

/** Istio StringMatch -> Envoy StringMatcher; undefined for an empty match (`{}` = present). */
export function stringMatcher(s: StringMatch, ignoreCase = false): Json | undefined {
  const extra = ignoreCase ? { ignore_case: true } : {};
  if (s.exact !== undefined) return { exact: s.exact, ...extra };
  if (s.prefix !== undefined) return { prefix: s.prefix, ...extra };
  if (s.regex !== undefined) return regexMatcher(s.regex);
  return undefined;
}

function headerMatcher(name: string, s: StringMatch, invert: boolean): Json {
  const sm = stringMatcher(s);
  const out: Json = sm ? { name, string_match: sm } : { name, present_match: true };
  if (invert) out.invert_match = true;
  return out;
}

/** Envoy RouteMatch for one Istio HTTPMatchRequest (undefined = catch-all). */
export function istioRouteMatch(m: HTTPMatchRequest | undefined): Json {
  const out: Json = {};
  const uri = m?.uri;
  if (uri?.exact !== undefined) out.path = uri.exact;
  else if (uri?.regex !== undefined) out.safe_regex = { regex: uri.regex };
  else out.prefix = uri?.prefix ?? '/';
  if (m?.ignoreUriCase) out.case_sensitive = false;
  const headers: Json[] = [];
  if (m?.headers) for (const [k, v] of Object.entries(m.headers)) headers.push(headerMatcher(k.toLowerCase(), v, false));
  if (m?.withoutHeaders) for (const [k, v] of Object.entries(m.withoutHeaders)) headers.push(headerMatcher(k.toLowerCase(), v, true));
  if (m?.method) headers.push(headerMatcher(':method', m.method, false));
  if (m?.authority) headers.push(headerMatcher(':authority', m.authority, false));
  if (m?.scheme) headers.push(headerMatcher(':scheme', m.scheme, false));
  if (headers.length) out.headers = headers;
  if (m?.queryParams) {
    const qps: Json[] = [];
    for (const [k, v] of Object.entries(m.queryParams)) {
      const sm = stringMatcher(v);
      qps.push(sm && !(v.exact === '') ? { name: k, string_match: sm } : { name: k, present_match: true });
    }
    if (qps.length) out.query_parameters = qps;
  }
  return out;
}

/** True for a match that matches every request (Istio's `isCatchAllMatch`). */
export function isCatchAll(m: HTTPMatchRequest | undefined): boolean {
  if (m === undefined) return true;
  const uriAll = m.uri === undefined || m.uri.prefix === '/' || m.uri.regex === '*' || m.uri.regex === '.*';
  return (
    uriAll &&
    !m.headers && !m.withoutHeaders && !m.queryParams && !m.method && !m.authority && !m.scheme &&
    m.port === undefined && !m.sourceLabels && m.sourceNamespace === undefined
  );
}

/** Appends Istio header operations onto a Route or ClusterWeight JSON object. */
export function applyHeaders(target: Json, h: RouteHeaders | undefined): void {
  if (!h) return;
  const add = (field: string, opts: Json[]): void => {
    if (opts.length) target[field] = [...((target[field] as Json[] | undefined) ?? []), ...opts];
  };
  const ops = (o: RouteHeaders['request']): Json[] => [
    ...Object.entries(o?.set ?? {}).map(([k, v]) => headerValueOption(k, v, false)),
    ...Object.entries(o?.add ?? {}).map(([k, v]) => headerValueOption(k, v, true)),
  ];
  add('request_headers_to_add', ops(h.request));
  add('response_headers_to_add', ops(h.response));
  if (h.request?.remove?.length) target.request_headers_to_remove = [...((target.request_headers_to_remove as string[]) ?? []), ...h.request.remove];
  if (h.response?.remove?.length) target.response_headers_to_remove = [...((target.response_headers_to_remove as string[]) ?? []), ...h.response.remove];
}

/** Istio's `GetDestinationCluster`: explicit port, else the service's only port, else the listener port. */
export function destinationCluster(d: Destination, namespace: string, ctx: IstioRouteContext): string {
  const host = resolveHost(d.host ?? '', namespace, ctx.domainSuffix);
  const svc = ctx.servicesByHost.get(host);
  const port = d.port?.number ?? (svc && svc.ports.length === 1 ? svc.ports[0].port : ctx.port);
  return outboundClusterName(port, d.subset ?? '', host);
}

function percentOf(p: { value?: number } | undefined, legacy?: number): number {
  if (p?.value !== undefined) return p.value;
  if (legacy !== undefined) return legacy;
  return 100;
}

function routeAction(http: HTTPRoute, route: Json, flat: FlatHttp, ctx: IstioRouteContext): Json {
  const dests = (http.route ?? []).filter((d) => d.destination?.host);
  const action: Json = {};
  const weighted = dests.length > 1 ? dests.filter((d) => (d.weight ?? 0) > 0) : dests;
  const allUnweighted = dests.length > 1 && dests.every((d) => d.weight === undefined);
  const used = allUnweighted ? dests : weighted;
  if (used.length === 1) {
    action.cluster = destinationCluster(used[0].destination!, flat.namespace, ctx);
    applyHeaders(route, used[0].headers);
  } else if (used.length > 1) {
    action.weighted_clusters = {
      clusters: used.map((d) => {
        const cw: Json = { name: destinationCluster(d.destination!, flat.namespace, ctx), weight: allUnweighted ? 1 : d.weight };
        applyHeaders(cw, d.headers);
        return cw;
      }),
    };
  } else {
    // Every destination has weight 0: nothing can serve it (Envoy rejects an all-zero weighted_clusters).
    return {};
  }
  action.timeout = toDuration(http.timeout) ?? '0s';
  if (http.rewrite?.uriRegexRewrite?.match !== undefined) {
    action.regex_rewrite = { pattern: { regex: http.rewrite.uriRegexRewrite.match }, substitution: http.rewrite.uriRegexRewrite.rewrite ?? '' };
  } else if (http.rewrite?.uri !== undefined) {
    // Envoy's prefix_rewrite swaps the matched prefix, or the whole path for exact and regex matches: Istio's documented meaning.
    action.prefix_rewrite = http.rewrite.uri;
  }
  if (http.rewrite?.authority) action.host_rewrite_literal = http.rewrite.authority;
  const r = http.retries;
  const policy = r
    ? retryPolicy({ attempts: r.attempts ?? 2, retryOn: r.retryOn, perTryTimeout: toDuration(r.perTryTimeout), retryRemoteLocalities: r.retryRemoteLocalities })
    : retryPolicy();
  if (policy) action.retry_policy = policy;
  // Hedging needs a per-try timeout to trigger; without one the annotation has nothing to act on.
  if (flat.hedgeOnPerTryTimeout && policy?.per_try_timeout !== undefined) action.hedge_policy = { hedge_on_per_try_timeout: true };
  const mirrors: Json[] = [];
  if (http.mirror?.host) {
    mirrors.push({
      cluster: destinationCluster(http.mirror, flat.namespace, ctx),
      runtime_fraction: { default_value: fractionalPercent(percentOf(http.mirrorPercentage, http.mirrorPercent)) },
      trace_sampled: false,
    });
  }
  for (const m of http.mirrors ?? []) {
    if (!m.destination?.host) continue;
    mirrors.push({
      cluster: destinationCluster(m.destination, flat.namespace, ctx),
      runtime_fraction: { default_value: fractionalPercent(percentOf(m.percentage)) },
      trace_sampled: false,
    });
  }
  if (mirrors.length) action.request_mirror_policies = mirrors;
  // As Istio: a timeout also caps grpc-timeout headers. The stream-duration cap itself is only
  // for proxyless gRPC (which reads no route `timeout`); on Envoy it would race the route timeout
  // and answer 408/`downstream duration timeout` instead of 504/`upstream request timeout`.
  if (action.timeout !== '0s') action.max_stream_duration = { grpc_timeout_header_max: action.timeout };
  return action;
}

function perFilterConfig(http: HTTPRoute): Json | undefined {
  const out: Json = {};
  const f = http.fault;
  if (f && (f.delay?.fixedDelay || f.abort)) {
    const delay = f.delay?.fixedDelay ? { fixedDelay: toDuration(f.delay.fixedDelay) ?? '0s', percent: percentOf(f.delay.percentage, f.delay.percent) } : undefined;
    let abort;
    if (f.abort) {
      const grpc = f.abort.grpcStatus !== undefined ? grpcStatusCode(f.abort.grpcStatus) : undefined;
      abort = { httpStatus: f.abort.httpStatus, grpcStatus: grpc, percent: percentOf(f.abort.percentage) };
    }
    out[FAULT_FILTER] = faultConfig({ delay, abort });
  }
  const c = http.corsPolicy;
  if (c) {
    const origins: Json[] = [];
    for (const o of c.allowOrigins ?? []) {
      const sm = stringMatcher(o);
      if (sm) origins.push(sm);
    }
    for (const o of c.allowOrigin ?? []) origins.push(o === '*' ? { prefix: '*' } : { exact: o });
    const maxAge = c.maxAge !== undefined ? toDuration(c.maxAge) : undefined;
    out[CORS_FILTER] = corsConfig({
      origins,
      methods: c.allowMethods,
      headers: c.allowHeaders,
      exposeHeaders: c.exposeHeaders,
      maxAgeSeconds: maxAge !== undefined ? Number(maxAge.slice(0, -1)) : undefined,
      allowCredentials: c.allowCredentials,
    });
  }
  return Object.keys(out).length ? out : undefined;
}

/**
 * Envoy routes for one (already delegate-flattened) VirtualService http entry; [] when none of
 * its matches apply to this proxy/gateway/port. Delegating entries must be expanded beforehand.
 */
export function translateIstioHttp(flat: FlatHttp, ctx: IstioRouteContext): Json[] {
  const http = flat.http;
  const allMatches = flat.matches ?? http.match ?? [];
  const matches: (HTTPMatchRequest | undefined)[] = allMatches.length ? allMatches.filter((m) => matchApplies(m, flat, ctx)) : [undefined];
  if (matches.length === 0) return [];
  const out: Json[] = [];
  for (const m of matches) {
    const route: Json = { match: istioRouteMatch(m) };
    if (http.name) route.name = m?.name ? `${http.name}.${m.name}` : http.name;
    if (http.redirect) {
      const rd = http.redirect;
      const redirect: Json = {};
      if (rd.uri !== undefined) redirect.path_redirect = rd.uri;
      if (rd.authority !== undefined) redirect.host_redirect = rd.authority;
      if (rd.port !== undefined) redirect.port_redirect = rd.port;
      if (rd.scheme !== undefined) redirect.scheme_redirect = rd.scheme;
      redirect.response_code = redirectResponseCode(rd.redirectCode ?? 301);
      route.redirect = redirect;
    } else if (http.directResponse) {
      const dr = http.directResponse;
      const resp: Json = { status: dr.status ?? 200 };
      if (dr.body?.string !== undefined) resp.body = { inline_string: dr.body.string };
      else if (dr.body?.bytes !== undefined) resp.body = { inline_bytes: dr.body.bytes };
      route.direct_response = resp;
    } else {
      const action = routeAction(http, route, flat, ctx);
      if (Object.keys(action).length === 0) route.direct_response = { status: 503 };
      else route.route = action;
    }
    applyHeaders(route, http.headers);
    const tpfc = perFilterConfig(http);
    if (tpfc) route.typed_per_filter_config = tpfc;
    route.metadata = virtualServiceMetadata(flat.source.namespace, flat.source.name);
    out.push(orderRouteFields(route));
  }
  return out;
}

/** Stable field order (name, match, action, rest) so goldens read like Envoy config dumps. */
function orderRouteFields(r: Json): Json {
  const { name, match, ...rest } = r;
  return { ...(name !== undefined ? { name } : {}), match, ...rest };
}
