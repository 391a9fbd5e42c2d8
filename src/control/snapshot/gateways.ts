/**
 * Gateways a gateway proxy (`router`) implements. Istio Gateways select proxies by `selector`
 * labels (across all namespaces, Istio's default). Gateway API Gateways are matched, like Istio's
 * deployment controller, by the proxy label `gateway.networking.k8s.io/gateway-name` (in the
 * proxy's namespace) or by node metadata `TRELLIS_GATEWAY` (`<ns>/<name>` or `<name>`).
 * Gateway API routes (HTTPRoute, GRPCRoute, TCPRoute, TLSRoute) are indexed by parent.
 */
import type { Resource } from '../../config/resource.ts';
import { ResourceTypes } from '../../config/resource.ts';
import { type RouteView, type IstioGatewayView, type ParentRef, view } from '../../config/views.ts';

export const GatewayNameLabel = 'gateway.networking.k8s.io/gateway-name';

/**
 * The Gateway API Gateways (`namespace/name`) a proxy implements, whether or not they exist: the
 * label names one in the proxy's namespace, `TRELLIS_GATEWAY` one anywhere (a bare name: the
 * proxy's namespace).
 */
export function gatewayApiKeysOf(proxyNamespace: string, labels: Readonly<Record<string, string>>, metadata: Readonly<Record<string, unknown>>): string[] {
  const keys: string[] = [];
  const meta = metadata.TRELLIS_GATEWAY;
  if (typeof meta === 'string' && meta !== '') keys.push(meta.includes('/') ? meta : `${proxyNamespace}/${meta}`);
  const label = labels[GatewayNameLabel];
  if (label !== undefined && label !== '' && !keys.includes(`${proxyNamespace}/${label}`)) keys.push(`${proxyNamespace}/${label}`);
  return keys;
}

export interface GatewayIndex {
  /** Istio Gateways whose selector matches the proxy labels (namespace/name order). */
  istioGatewaysFor(labels: Readonly<Record<string, string>>): readonly Resource[];
  /** Gateway API Gateways implemented by a proxy. */
  gatewayApiGatewaysFor(proxyNamespace: string, labels: Readonly<Record<string, string>>, metadata: Readonly<Record<string, unknown>>): readonly Resource[];
}

export function indexGateways(istio: readonly Resource[], gatewayApi: readonly Resource[]): GatewayIndex {
  return {
    istioGatewaysFor(labels) {
      return istio.filter((g) => {
        const sel = view<IstioGatewayView>(g).selector ?? {};
        // An empty selector selects nothing here (Istio would select every gateway proxy; too broad for local mode).
        if (Object.keys(sel).length === 0) return false;
        for (const [k, v] of Object.entries(sel)) if (labels[k] !== v) return false;
        return true;
      });
    },
    gatewayApiGatewaysFor(proxyNamespace, labels, metadata) {
      const keys = gatewayApiKeysOf(proxyNamespace, labels, metadata);
      if (keys.length === 0) return [];
      return gatewayApi.filter((g) => keys.includes(`${g.metadata.namespace}/${g.metadata.name}`));
    },
  };
}

/** A route with the parentRef that attached it. */
export interface AttachedRoute {
  readonly resource: Resource;
  readonly spec: RouteView;
  readonly parentRef: ParentRef;
}

export interface RouteParentIndex {
  /** Routes of `type` whose parentRefs name the parent (kind `Gateway` or `Service`, namespace/name). */
  routesFor(type: string, parentKind: 'Gateway' | 'Service', namespace: string, name: string): readonly AttachedRoute[];
}

const routeTypes = [ResourceTypes.HTTPRoute, ResourceTypes.GRPCRoute, ResourceTypes.TCPRoute, ResourceTypes.TLSRoute];

/** Indexes Gateway API routes by parent; `list` gives the routes of a type. */
export function indexRouteParents(list: (type: string) => readonly Resource[]): RouteParentIndex {
  const by = new Map<string, AttachedRoute[]>();
  for (const type of routeTypes) {
    for (const r of list(type)) {
      const spec = view<RouteView>(r);
      for (const p of spec.parentRefs ?? []) {
        const kind = p.kind ?? 'Gateway';
        if (kind !== 'Gateway' && kind !== 'Service') continue;
        const key = `${type}\n${kind}\n${p.namespace ?? r.metadata.namespace}/${p.name ?? ''}`;
        const l = by.get(key) ?? [];
        l.push(Object.freeze({ resource: r, spec, parentRef: p }));
        by.set(key, l);
      }
    }
  }
  return { routesFor: (type, kind, ns, name) => by.get(`${type}\n${kind}\n${ns}/${name}`) ?? [] };
}
