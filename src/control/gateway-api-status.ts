/**
 * The Gateway API status Trellis owes the objects it serves, computed from a snapshot (pure, no
 * clock: `lastTransitionTime` is the writer's business): GatewayClass `Accepted` for classes
 * naming this controller; for their Gateways `Accepted`/`Programmed`, the addresses and per
 * listener `Accepted`/`ResolvedRefs`/`Programmed` with `attachedRoutes` and `supportedKinds`;
 * each HTTPRoute/GRPCRoute's parent conditions (the route side is translation's own
 * `computeRouteStatus`/`computeListenerStatus`, so status says what the proxies do). The one
 * computation: the Kubernetes status writer (kube/status.ts) and the conformance runner's
 * status checks both call `gatewayApiStatuses`.
 */
import { ResourceTypes } from '../config/resource.ts';
import type { Resource } from '../config/resource.ts';
import type { MeshSnapshot } from './snapshot/snapshot.ts';
import { DEFAULT_CONTROLLER_NAME, computeListenerStatus, computeRouteStatus } from './translate/routes/index.ts';
import type { RouteCondition, RouteInputs } from './translate/routes/index.ts';
import { routeInputs } from './translate/route-bridge.ts';

/** One object's desired status. */
export interface DesiredStatus {
  readonly resource: Resource;
  /** The status fields this controller owns (merged into what is there). */
  readonly status: Record<string, unknown>;
}

/** Route inputs over every service: status is the mesh's view, not one proxy's. */
function inputs(s: MeshSnapshot): RouteInputs {
  const services = s.registry.services();
  const hosts = new Set(services.map((x) => x.hostname));
  return routeInputs(s, { services, outboundTrafficPolicy: s.mesh.outboundTrafficPolicy, has: (h) => hosts.has(h) });
}

/** A condition with this controller's wording. */
export function condition(type: string, ok: boolean, reason: string, message: string, generation: number | undefined): RouteCondition {
  return { type: type as RouteCondition['type'], status: ok ? 'True' : 'False', reason, message, observedGeneration: generation };
}

/**
 * Addresses of a Gateway: the ClusterIP of the Service labelled with its name (what
 * charts/trellis-gateway creates), else spec.addresses. (A LoadBalancer's external address is
 * Service status, which the store does not read: a known gap.)
 */
function gatewayAddresses(s: MeshSnapshot, gw: Resource): { type: string; value: string }[] {
  const svc = s.list(ResourceTypes.Service, gw.metadata.namespace).find((r) => r.metadata.labels['gateway.networking.k8s.io/gateway-name'] === gw.metadata.name);
  if (svc !== undefined) {
    const spec = svc.spec as { clusterIP?: string };
    if (spec.clusterIP && spec.clusterIP !== 'None') return [{ type: 'IPAddress', value: spec.clusterIP }];
  }
  const spec = gw.spec as { addresses?: { type?: string; value: string }[] };
  return (spec.addresses ?? []).map((a) => ({ type: a.type ?? 'IPAddress', value: a.value }));
}

type GatewaySpec = { gatewayClassName?: string; listeners?: { name: string; tls?: { certificateRefs?: { name: string; namespace?: string; kind?: string; group?: string }[] } }[] };

/** Every Gateway API status `controllerName` owes, from `s`. */
export function gatewayApiStatuses(s: MeshSnapshot, controllerName: string = DEFAULT_CONTROLLER_NAME): DesiredStatus[] {
  const out: DesiredStatus[] = [];
  const ours = new Set<string>();
  for (const gc of s.list(ResourceTypes.GatewayClass)) {
    if ((gc.spec as { controllerName?: string }).controllerName !== controllerName) continue;
    ours.add(gc.metadata.name);
    out.push({ resource: gc, status: { conditions: [condition('Accepted', true, 'Accepted', 'Handled by Trellis', gc.metadata.generation)] } });
  }
  const ri = inputs(s);
  const listeners = computeListenerStatus(ri);
  const secrets = new Set(s.list(ResourceTypes.Secret).map((r) => `${r.metadata.namespace}/${r.metadata.name}`));
  for (const gw of s.list(ResourceTypes.Gateway)) {
    const spec = gw.spec as GatewaySpec;
    if (!ours.has(spec.gatewayClassName ?? '')) continue;
    const gen = gw.metadata.generation;
    const addresses = gatewayAddresses(s, gw);
    const ls = (listeners.get(`${gw.metadata.namespace}/${gw.metadata.name}`) ?? []).map((l) => {
      const lspec = spec.listeners?.find((x) => x.name === l.name);
      const missing = (lspec?.tls?.certificateRefs ?? []).find((r) => (r.kind ?? 'Secret') === 'Secret' && (r.group ?? '') === '' && !secrets.has(`${r.namespace ?? gw.metadata.namespace}/${r.name}`));
      const conditions = l.conditions.map((c) => (c.type === 'ResolvedRefs' && missing !== undefined
        ? condition('ResolvedRefs', false, 'InvalidCertificateRef', `Secret ${missing.namespace ?? gw.metadata.namespace}/${missing.name} not found`, gen)
        : c));
      const resolved = conditions.every((c) => c.status === 'True');
      return { ...l, conditions: [...conditions, condition('Programmed', resolved, resolved ? 'Programmed' : 'Invalid', resolved ? '' : 'listener has unresolved references', gen)] };
    });
    const programmed = addresses.length > 0;
    out.push({
      resource: gw,
      status: {
        addresses,
        conditions: [
          condition('Accepted', true, 'Accepted', 'Resource accepted', gen),
          condition('Programmed', programmed, programmed ? 'Programmed' : 'AddressNotAssigned', programmed ? 'Resource programmed' : 'no Service labelled gateway.networking.k8s.io/gateway-name and no spec.addresses', gen),
        ],
        listeners: ls,
      },
    });
  }
  const routes = computeRouteStatus(ri, controllerName);
  for (const type of [ResourceTypes.HTTPRoute, ResourceTypes.GRPCRoute]) {
    for (const r of s.list(type)) {
      const parents = routes.get(`${r.type}:${r.metadata.namespace}/${r.metadata.name}`) ?? [];
      out.push({ resource: r, status: { parents } });
    }
  }
  return out;
}
