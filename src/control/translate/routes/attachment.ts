/**
 * Gateway API attachment and reference resolution, shared by route translation and status:
 * which parentRefs of an HTTPRoute/GRPCRoute bind to which Gateway listeners (sectionName, port,
 * allowedRoutes namespaces and kinds, hostname intersection) or to a Service (GAMMA), and whether
 * each backendRef resolves (kind, ReferenceGrant for cross-namespace, existence). Reasons are the
 * Gateway API's condition reasons, so status is a direct projection of these results.
 */

import { labelSelectorMatches } from '../../../config/label-selector.ts';
import type { ServiceInfo } from '../../../registry/types.ts';
import { intersectHosts } from './hosts.ts';
import type { GatewayResource, RouteInputs } from './types.ts';
import type { Resource } from '../../../config/resource.ts';
import type { BackendObjectRef, HTTPRouteView, GatewayListener, ParentRef, RouteRule, HTTPRouteMatch, GRPCRouteView } from '../../../config/views.ts';

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';

/** An HTTPRoute or GRPCRoute with its kind, handled uniformly. */
export interface AnyRoute {
  readonly kind: 'HTTPRoute' | 'GRPCRoute';
  readonly resource: Resource<HTTPRouteView> | Resource<GRPCRouteView>;
}

export type AcceptedReason = 'Accepted' | 'NotAllowedByListeners' | 'NoMatchingListenerHostname' | 'NoMatchingParent' | 'UnsupportedValue';
export type ResolvedReason = 'ResolvedRefs' | 'RefNotPermitted' | 'InvalidKind' | 'BackendNotFound';

/** The outcome of one parentRef. */
export interface ParentAttachment {
  readonly parentRef: ParentRef;
  readonly parentKind: 'Gateway' | 'Service' | 'Other';
  /** `<ns>/<name>` of the parent. */
  readonly parentKey: string;
  readonly accepted: AcceptedReason;
  /** Listeners the route attached to (Gateway parents), with the hostnames the route gets on each. */
  readonly listeners: readonly { readonly listener: GatewayListener; readonly hostnames: readonly string[] }[];
  /** The Service parent (GAMMA), when found. */
  readonly service?: ServiceInfo;
}

/** The outcome of one backendRef. */
export interface BackendResolution {
  readonly reason: ResolvedReason;
  readonly service?: ServiceInfo;
  readonly port?: number;
  readonly message: string;
}

function isCoreGroup(g: string | undefined): boolean {
  return g === undefined || g === '' || g === 'core';
}

/** Whether a parentRef names a Service (GAMMA) rather than a Gateway. */
export function isServiceParent(p: ParentRef): boolean {
  return p.kind === 'Service' && isCoreGroup(p.group);
}

function defaultKinds(protocol: string): string[] {
  switch (protocol) {
    case 'HTTP':
    case 'HTTPS':
      return ['HTTPRoute', 'GRPCRoute'];
    case 'TLS':
      return ['TLSRoute'];
    case 'TCP':
      return ['TCPRoute'];
    case 'UDP':
      return ['UDPRoute'];
    default:
      return [];
  }
}

/** Route kinds a listener admits (`allowedRoutes.kinds` or the protocol's defaults). */
export function listenerKinds(l: GatewayListener): string[] {
  const ks = l.allowedRoutes?.kinds;
  if (ks?.length) return ks.filter((k) => (k.group ?? GATEWAY_GROUP) === GATEWAY_GROUP).map((k) => k.kind);
  return defaultKinds(l.protocol);
}


/** Whether a listener's `allowedRoutes.namespaces` admits routes from `routeNs` (default: Same). */
export function namespaceAllowed(inputs: RouteInputs, gw: GatewayResource, l: GatewayListener, routeNs: string): boolean {
  const from = l.allowedRoutes?.namespaces?.from ?? 'Same';
  if (from === 'All') return true;
  if (from === 'Same') return routeNs === gw.metadata.namespace;
  if (from === 'Selector') {
    const sel = l.allowedRoutes?.namespaces?.selector;
    if (!sel) return false;
    const labels = { 'kubernetes.io/metadata.name': routeNs, ...(inputs.namespaceLabels?.(routeNs) ?? {}) };
    return labelSelectorMatches(sel, labels);
  }
  return false;
}

/** The service a `name.namespace` Kubernetes reference points to, if any. */
export function findKubeService(inputs: RouteInputs, name: string, namespace: string): ServiceInfo | undefined {
  const host = `${name}.${namespace}.svc.${inputs.domainSuffix}`;
  return inputs.services.find((s) => s.hostname === host);
}

const KNOWN_FILTERS = new Set(['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite', 'RequestMirror', 'CORS', 'ExtensionRef']);
const PATH_TYPES = new Set(['Exact', 'PathPrefix', 'RegularExpression']);

/** False when a route uses a filter type or path match type we do not implement (Accepted=False, UnsupportedValue). */
export function routeSupported(route: AnyRoute): boolean {
  for (const rule of (route.resource.spec.rules ?? []) as readonly RouteRule<HTTPRouteMatch>[]) {
    const filters = [...(rule.filters ?? []), ...(rule.backendRefs ?? []).flatMap((b) => b.filters ?? [])];
    if (!filters.every((f) => KNOWN_FILTERS.has(f.type ?? ''))) return false;
    if (route.kind === 'HTTPRoute' && !(rule.matches ?? []).every((m) => m.path?.type === undefined || PATH_TYPES.has(m.path.type))) return false;
  }
  return true;
}

/** Resolves one parentRef of a route. */
export function attachParent(inputs: RouteInputs, route: AnyRoute, p: ParentRef): ParentAttachment {
  const routeNs = route.resource.metadata.namespace;
  const ns = p.namespace ?? routeNs;
  const parentKey = `${ns}/${p.name}`;
  if (isServiceParent(p)) {
    const service = findKubeService(inputs, p.name, ns);
    if (!service) return { parentRef: p, parentKind: 'Service', parentKey, accepted: 'NoMatchingParent', listeners: [] };
    if (p.port !== undefined && !service.ports.some((sp) => sp.port === p.port)) {
      return { parentRef: p, parentKind: 'Service', parentKey, accepted: 'NoMatchingParent', listeners: [], service };
    }
    if (!routeSupported(route)) return { parentRef: p, parentKind: 'Service', parentKey, accepted: 'UnsupportedValue', listeners: [], service };
    return { parentRef: p, parentKind: 'Service', parentKey, accepted: 'Accepted', listeners: [], service };
  }
  if ((p.kind ?? 'Gateway') !== 'Gateway' || (p.group ?? GATEWAY_GROUP) !== GATEWAY_GROUP) {
    return { parentRef: p, parentKind: 'Other', parentKey, accepted: 'NoMatchingParent', listeners: [] };
  }
  const gw = inputs.gateways.find((g) => g.metadata.name === p.name && g.metadata.namespace === ns);
  if (!gw) return { parentRef: p, parentKind: 'Gateway', parentKey, accepted: 'NoMatchingParent', listeners: [] };
  const candidates = (gw.spec.listeners ?? []).filter(
    (l) => (p.sectionName === undefined || l.name === p.sectionName) && (p.port === undefined || l.port === p.port),
  );
  if (candidates.length === 0) return { parentRef: p, parentKind: 'Gateway', parentKey, accepted: 'NoMatchingParent', listeners: [] };
  const allowed = candidates.filter((l) => listenerKinds(l).includes(route.kind) && namespaceAllowed(inputs, gw, l, routeNs));
  if (allowed.length === 0) return { parentRef: p, parentKind: 'Gateway', parentKey, accepted: 'NotAllowedByListeners', listeners: [] };
  const routeHosts = route.resource.spec.hostnames ?? [];
  const listeners: { listener: GatewayListener; hostnames: string[] }[] = [];
  for (const l of allowed) {
    const lh = l.hostname ?? '*';
    const hostnames = routeHosts.length === 0 ? [lh] : routeHosts.map((h) => intersectHosts(h, lh)).filter((h): h is string => h !== undefined);
    if (hostnames.length) listeners.push({ listener: l, hostnames: [...new Set(hostnames)] });
  }
  if (listeners.length === 0) return { parentRef: p, parentKind: 'Gateway', parentKey, accepted: 'NoMatchingListenerHostname', listeners: [] };
  if (!routeSupported(route)) return { parentRef: p, parentKind: 'Gateway', parentKey, accepted: 'UnsupportedValue', listeners: [] };
  return { parentRef: p, parentKind: 'Gateway', parentKey, accepted: 'Accepted', listeners };
}

/** Whether a ReferenceGrant in `toNs` lets `fromKind` routes in `fromNs` refer to Service `name`. */
export function referenceGranted(inputs: RouteInputs, fromKind: string, fromNs: string, toNs: string, toKind: string, name: string): boolean {
  return inputs.referenceGrants.some(
    (g) =>
      g.metadata.namespace === toNs &&
      (g.spec.from ?? []).some((f) => f.group === GATEWAY_GROUP && f.kind === fromKind && f.namespace === fromNs) &&
      (g.spec.to ?? []).some((t) => isCoreGroup(t.group) && t.kind === toKind && (t.name === undefined || t.name === '' || t.name === name)),
  );
}

/**
 * Resolves one backendRef (or mirror backendRef) of a route. `mesh`: the route is served for a
 * Service parent (GAMMA), whose backendRefs may name Services in any namespace without a
 * ReferenceGrant (GEP-1426 "namespace boundaries": mesh authorization governs that traffic, as
 * in Istio); routes bound to a Gateway need the grant.
 */
export function resolveBackend(inputs: RouteInputs, route: AnyRoute, ref: BackendObjectRef, mesh = false): BackendResolution {
  const kind = ref.kind ?? 'Service';
  const ns = ref.namespace ?? route.resource.metadata.namespace;
  if (!isCoreGroup(ref.group) || kind !== 'Service') {
    return { reason: 'InvalidKind', message: `backendRef ${ref.name}: unsupported kind ${ref.group ?? ''}/${kind}` };
  }
  if (!mesh && ns !== route.resource.metadata.namespace && !referenceGranted(inputs, route.kind, route.resource.metadata.namespace, ns, 'Service', ref.name)) {
    return { reason: 'RefNotPermitted', message: `backendRef ${ns}/${ref.name} not permitted by any ReferenceGrant` };
  }
  const service = findKubeService(inputs, ref.name, ns);
  if (!service) return { reason: 'BackendNotFound', message: `backend ${ns}/${ref.name} not found` };
  const port = ref.port ?? (service.ports.length === 1 ? service.ports[0].port : undefined);
  if (port === undefined) return { reason: 'BackendNotFound', message: `backendRef ${ns}/${ref.name}: port required` };
  return { reason: 'ResolvedRefs', service, port, message: '' };
}

/** HTTPRoutes and GRPCRoutes of the inputs as AnyRoute. */
export function allRoutes(inputs: RouteInputs): AnyRoute[] {
  return [
    ...inputs.httpRoutes.map((r) => ({ kind: 'HTTPRoute' as const, resource: r })),
    ...inputs.grpcRoutes.map((r) => ({ kind: 'GRPCRoute' as const, resource: r })),
  ];
}
