/**
 * Test support for route translation: builds `RouteInputs` from YAML resources (registry via the
 * real registry builder), proxies from a few facts, and a small Envoy route evaluator (virtual
 * host by domain, first matching route, weighted pick by a caller-given number) so tests can say
 * "a request with header end-user: jason goes to reviews v2" instead of reading JSON.
 */

import type { Resource } from '../../../config/resource.ts';
import { ResourceTypes } from '../../../config/resource.ts';
import { buildRegistry } from '../../../registry/registry.ts';
import { resourcesFromYaml, sourceOf } from '../../../registry/test-support.ts';
import { type ProxyNode, proxyNodeFromXds } from '../../proxy-node.ts';
import type { XdsJson } from '../../../xds/types.ts';
import { pickVirtualHost } from '../simulate.ts';
import type { RouteInputs } from './types.ts';

type Json = Record<string, unknown>;

/** RouteInputs over parsed resources (domain suffix cluster.local, root namespace istio-system). */
export function inputsFromResources(resources: readonly Resource[], extra: Partial<RouteInputs> = {}): RouteInputs {
  const of = <T>(type: string): T[] => resources.filter((r) => r.type === type) as T[];
  const registry = buildRegistry(sourceOf(resources));
  const nsLabels = new Map(of<Resource>(ResourceTypes.Namespace).map((n) => [n.metadata.name, n.metadata.labels]));
  return {
    virtualServices: of(ResourceTypes.VirtualService),
    httpRoutes: of(ResourceTypes.HTTPRoute),
    grpcRoutes: of(ResourceTypes.GRPCRoute),
    istioGateways: of(ResourceTypes.IstioGateway),
    gateways: of(ResourceTypes.Gateway),
    referenceGrants: of(ResourceTypes.ReferenceGrant),
    destinationRules: of(ResourceTypes.DestinationRule),
    services: registry.services(),
    domainSuffix: 'cluster.local',
    rootNamespace: 'istio-system',
    namespaceLabels: (ns) => nsLabels.get(ns),
    ...extra,
  };
}

/** RouteInputs from YAML text. */
export function inputsFromYaml(text: string, extra: Partial<RouteInputs> = {}): RouteInputs {
  return inputsFromResources(resourcesFromYaml(text), extra);
}

/** A proxy with the given kind, namespace and labels. */
export function testProxy(namespace: string, labels: Record<string, string> = {}, kind: 'sidecar' | 'router' = 'sidecar'): ProxyNode {
  return proxyNodeFromXds({ id: `${kind}~10.0.0.9~test.${namespace}~${namespace}.svc.cluster.local`, metadata: { NAMESPACE: namespace, LABELS: labels } });
}

/** A synthetic request. */
export interface TestRequest {
  readonly host: string;
  readonly path?: string;
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** What the route table decided. */
export interface TestOutcome {
  readonly vhost?: string;
  readonly route?: Json;
  /** Chosen cluster (weighted pick by `pick` in [0,1)), or undefined. */
  readonly cluster?: string;
  readonly status?: number;
  readonly redirect?: Json;
}

function strMatch(sm: Json, v: string | undefined): boolean {
  if (v === undefined) return false;
  const ic = sm.ignore_case === true;
  const val = ic ? v.toLowerCase() : v;
  if (typeof sm.exact === 'string') return val === (ic ? sm.exact.toLowerCase() : sm.exact);
  if (typeof sm.prefix === 'string') return val.startsWith(ic ? sm.prefix.toLowerCase() : sm.prefix);
  if (sm.safe_regex) return new RegExp(`^(?:${(sm.safe_regex as Json).regex as string})$`).test(v);
  return false;
}

function routeMatches(m: Json, req: TestRequest): boolean {
  const full = req.path ?? '/';
  const q = full.indexOf('?');
  const path = q < 0 ? full : full.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : full.slice(q + 1));
  const cs = m.case_sensitive !== false;
  const p = cs ? path : path.toLowerCase();
  const lc = (s: string): string => (cs ? s : s.toLowerCase());
  if (typeof m.prefix === 'string' && !p.startsWith(lc(m.prefix))) return false;
  if (typeof m.path === 'string' && p !== lc(m.path)) return false;
  if (typeof m.path_separated_prefix === 'string') {
    const pre = lc(m.path_separated_prefix);
    if (!(p === pre || p.startsWith(`${pre}/`))) return false;
  }
  if (m.safe_regex && !new RegExp(`^(?:${(m.safe_regex as Json).regex as string})$`).test(path)) return false;
  const headers: Record<string, string> = { ':method': req.method ?? 'GET', ':authority': req.host, ':path': full };
  for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v;
  for (const h of (m.headers as Json[] | undefined) ?? []) {
    const v = headers[(h.name as string).toLowerCase()];
    let ok = h.present_match === true ? v !== undefined : h.string_match ? strMatch(h.string_match as Json, v) : v !== undefined;
    if (h.invert_match === true) ok = !ok;
    if (!ok) return false;
  }
  for (const qp of (m.query_parameters as Json[] | undefined) ?? []) {
    const v = query.get(qp.name as string) ?? undefined;
    const ok = qp.present_match === true ? v !== undefined : strMatch(qp.string_match as Json, v);
    if (!ok) return false;
  }
  return true;
}

/** Evaluates a request against a RouteConfiguration like Envoy's router would pick a route. */
export function evaluate(config: XdsJson, req: TestRequest, pick = 0): TestOutcome {
  const best = pickVirtualHost(config, req.host);
  if (!best) return { status: 404 };
  const route = ((best.routes as Json[]) ?? []).find((r) => routeMatches(r.match as Json, req));
  if (!route) return { vhost: best.name as string, status: 404 };
  if (route.direct_response) return { vhost: best.name as string, route, status: (route.direct_response as Json).status as number };
  if (route.redirect) return { vhost: best.name as string, route, redirect: route.redirect as Json };
  const action = route.route as Json;
  if (typeof action.cluster === 'string') return { vhost: best.name as string, route, cluster: action.cluster };
  const clusters = ((action.weighted_clusters as Json).clusters as Json[]) ?? [];
  const total = clusters.reduce((s, c) => s + (c.weight as number), 0);
  let acc = 0;
  for (const c of clusters) {
    acc += (c.weight as number) / total;
    if (pick < acc) return { vhost: best.name as string, route, cluster: c.name as string };
  }
  return { vhost: best.name as string, route, cluster: clusters.at(-1)?.name as string };
}

/** Path and host a route forwards (or redirects) with: applies prefix_rewrite / regex_rewrite / host rewrites like Envoy. */
export function rewrittenRequest(route: Json, path: string): { path: string; host?: string } {
  const action = ((route.route ?? route.redirect) ?? {}) as Json;
  const m = (route.match ?? {}) as Json;
  let p = path;
  if (typeof action.path_redirect === 'string') p = action.path_redirect;
  else if (typeof action.prefix_rewrite === 'string') {
    const matched = typeof m.path === 'string' ? m.path : typeof m.path_separated_prefix === 'string' ? m.path_separated_prefix : typeof m.prefix === 'string' ? m.prefix : p;
    p = action.prefix_rewrite + p.slice(matched.length);
  } else if (action.regex_rewrite) {
    const rr = action.regex_rewrite as { pattern: { regex: string }; substitution: string };
    p = p.replace(new RegExp(rr.pattern.regex, 'g'), rr.substitution.replace(/\\(\d)/g, '$$$1'));
  }
  const host = (action.host_rewrite_literal ?? action.host_redirect) as string | undefined;
  return host === undefined ? { path: p } : { path: p, host };
}

/**
 * A trellis Gateway `gw` in namespace infra with one HTTP listener on `port`, and an HTTPRoute `r`
 * beside it whose rules are `rules` (a YAML flow list).
 */
export function gatewayWithRoute(rules: string, port = 80): string {
  return `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec: {gatewayClassName: trellis, listeners: [{name: http, port: ${port}, protocol: HTTP}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules: ${rules}
`;
}
