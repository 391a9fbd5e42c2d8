/**
 * Gateway API status as a pure projection of attachment and reference resolution: per route, one
 * RouteParentStatus per parentRef with `Accepted` and `ResolvedRefs` conditions (Gateway API
 * reasons, observedGeneration = metadata.generation); per Gateway, listener status with
 * `attachedRoutes` and `supportedKinds`. No clock is read: `lastTransitionTime` is left to the
 * writer of status, which knows when a condition changed.
 */

import { resourceKey } from '../../../config/resource.ts';
import { type AnyRoute, GATEWAY_GROUP, allRoutes, attachParent, isServiceParent, listenerKinds, resolveBackend } from './attachment.ts';
import type { RouteInputs } from './types.ts';
import type { ParentRef, RouteRule } from '../../../config/views.ts';

/** A status condition (Kubernetes `metav1.Condition` without lastTransitionTime). */
export interface RouteCondition {
  readonly type: 'Accepted' | 'ResolvedRefs' | 'Programmed';
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration?: number;
}

/** Gateway API RouteParentStatus. */
export interface RouteParentStatus {
  readonly parentRef: ParentRef;
  readonly controllerName: string;
  readonly conditions: readonly RouteCondition[];
}

/** Gateway API ListenerStatus (the part routing decides). */
export interface ListenerStatus {
  readonly name: string;
  readonly attachedRoutes: number;
  readonly supportedKinds: readonly { readonly group: string; readonly kind: string }[];
  readonly conditions: readonly RouteCondition[];
}

/** Trellis's Gateway API controller name. */
export const DEFAULT_CONTROLLER_NAME = 'trellis.dev/gateway-controller';

const ACCEPTED_MESSAGES: Record<string, string> = {
  Accepted: 'Route was valid',
  NotAllowedByListeners: 'no listener of the parent allows this route (namespace or kind)',
  NoMatchingListenerHostname: 'no listener hostname intersects the route hostnames',
  NoMatchingParent: 'parent not found, or no listener matches sectionName/port',
  UnsupportedValue: 'route uses a filter this implementation does not support',
};

/** The first unresolved backendRef (rules, backend filters' mirrors, rule mirrors), or ResolvedRefs; `mesh` for a Service parent. */
function resolvedRefs(inputs: RouteInputs, route: AnyRoute, mesh: boolean): { reason: string; message: string } {
  for (const rule of (route.resource.spec.rules ?? []) as readonly RouteRule<unknown>[]) {
    const refs = [
      ...(rule.backendRefs ?? []),
      ...(rule.filters ?? []).flatMap((f) => (f.requestMirror?.backendRef ? [f.requestMirror.backendRef] : [])),
    ];
    for (const ref of refs) {
      const r = resolveBackend(inputs, route, ref, mesh);
      if (r.reason !== 'ResolvedRefs') return { reason: r.reason, message: r.message };
    }
  }
  return { reason: 'ResolvedRefs', message: 'All references resolved' };
}

function withDefaults(p: ParentRef): ParentRef {
  if (p.kind === 'Service') return { group: '', ...p };
  return { group: GATEWAY_GROUP, kind: 'Gateway', ...p };
}

/**
 * Status of every HTTPRoute and GRPCRoute, keyed by `resourceKey` (`<type>:<ns>/<name>`). Parents
 * that are neither a Gateway of `inputs.gateways` nor a Service still get a status (NoMatchingParent).
 */
export function computeRouteStatus(inputs: RouteInputs, controllerName: string = DEFAULT_CONTROLLER_NAME): Map<string, RouteParentStatus[]> {
  const out = new Map<string, RouteParentStatus[]>();
  for (const route of allRoutes(inputs)) {
    const gen = route.resource.metadata.generation;
    // References resolve differently for Service (mesh) and Gateway parents: once per kind.
    const refsFor = new Map<boolean, { reason: string; message: string }>();
    const parents: RouteParentStatus[] = [];
    for (const p of route.resource.spec.parentRefs ?? []) {
      const a = attachParent(inputs, route, p);
      const mesh = isServiceParent(p);
      let refs = refsFor.get(mesh);
      if (refs === undefined) refsFor.set(mesh, (refs = resolvedRefs(inputs, route, mesh)));
      const accepted = a.accepted;
      const conditions: RouteCondition[] = [
        { type: 'Accepted', status: accepted === 'Accepted' ? 'True' : 'False', reason: accepted, message: ACCEPTED_MESSAGES[accepted], observedGeneration: gen },
        { type: 'ResolvedRefs', status: refs.reason === 'ResolvedRefs' ? 'True' : 'False', reason: refs.reason, message: refs.message, observedGeneration: gen },
      ];
      parents.push({ parentRef: withDefaults(p), controllerName, conditions });
    }
    out.set(resourceKey(route.resource), parents);
  }
  return out;
}

/** Route kinds Trellis implements (TLSRoute/TCPRoute listeners are translated outside this folder). */
export const IMPLEMENTED_ROUTE_KINDS: readonly string[] = ['HTTPRoute', 'GRPCRoute', 'TLSRoute', 'TCPRoute'];

/**
 * Listener status of every Gateway (keyed `<ns>/<name>`): attachedRoutes counts the routes
 * accepted on each listener (a route attached twice to one listener counts once).
 */
export function computeListenerStatus(inputs: RouteInputs, implementedKinds: readonly string[] = IMPLEMENTED_ROUTE_KINDS): Map<string, ListenerStatus[]> {
  const counts = new Map<string, Set<string>>();
  for (const route of allRoutes(inputs)) {
    for (const p of route.resource.spec.parentRefs ?? []) {
      const a = attachParent(inputs, route, p);
      if (a.accepted !== 'Accepted' || a.parentKind !== 'Gateway') continue;
      for (const { listener } of a.listeners) {
        const k = `${a.parentKey}#${listener.name}`;
        if (!counts.has(k)) counts.set(k, new Set());
        counts.get(k)!.add(resourceKey(route.resource));
      }
    }
  }
  const out = new Map<string, ListenerStatus[]>();
  for (const gw of inputs.gateways) {
    const gwKey = `${gw.metadata.namespace}/${gw.metadata.name}`;
    const gen = gw.metadata.generation;
    out.set(
      gwKey,
      (gw.spec.listeners ?? []).map((l) => {
        const kinds = listenerKinds(l);
        const supportedKinds = kinds.filter((k) => implementedKinds.includes(k)).map((kind) => ({ group: GATEWAY_GROUP, kind }));
        const invalidKinds = (l.allowedRoutes?.kinds ?? []).some((k) => !implementedKinds.includes(k.kind) || (k.group ?? GATEWAY_GROUP) !== GATEWAY_GROUP);
        const conditions: RouteCondition[] = [
          { type: 'Accepted', status: 'True', reason: 'Accepted', message: '', observedGeneration: gen },
          invalidKinds
            ? { type: 'ResolvedRefs', status: 'False', reason: 'InvalidRouteKinds', message: 'listener allows route kinds this implementation does not support', observedGeneration: gen }
            : { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', message: '', observedGeneration: gen },
        ];
        return { name: l.name, attachedRoutes: counts.get(`${gwKey}#${l.name}`)?.size ?? 0, supportedKinds, conditions };
      }),
    );
  }
  return out;
}
