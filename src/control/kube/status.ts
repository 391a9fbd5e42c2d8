/**
 * The status Trellis owes the objects it serves, computed from a snapshot (pure; the writer
 * applies it): Gateway API GatewayClass `Accepted`; Gateway `Accepted`/`Programmed`, its
 * addresses and per-listener `Accepted`/`ResolvedRefs`/`Programmed` with `attachedRoutes` and
 * `supportedKinds`; each route's parent conditions for the parents this controller handles
 * (route-side logic is the translation's own `computeRouteStatus`/`computeListenerStatus`); and,
 * when asked, the analyzer's findings on Istio objects as `status.validationMessages`, as istiod
 * writes them with analysis on. `lastTransitionTime` is the writer's business.
 */
import { ResourceTypes } from '../../config/resource.ts';
import type { Diagnostic, Resource } from '../../config/resource.ts';
import { analyzeConfig } from '../../config/analyze/index.ts';
import type { MeshSnapshot } from '../snapshot/snapshot.ts';
import { DEFAULT_CONTROLLER_NAME, computeListenerStatus, computeRouteStatus } from '../translate/routes/index.ts';
import type { RouteCondition, RouteInputs } from '../translate/routes/index.ts';
import { routeInputs } from '../translate/route-bridge.ts';

/** One object's desired status. */
export interface DesiredStatus {
  readonly resource: Resource;
  /** The status fields this controller owns (merged into what is there). */
  readonly status: Record<string, unknown>;
}

type Json = Record<string, unknown>;

/** Route inputs over every service: status is the mesh's view, not one proxy's. */
function inputs(s: MeshSnapshot): RouteInputs {
  const services = s.registry.services();
  const hosts = new Set(services.map((x) => x.hostname));
  return routeInputs(s, { services, outboundTrafficPolicy: s.mesh.outboundTrafficPolicy, has: (h) => hosts.has(h) });
}

function cond(type: string, ok: boolean, reason: string, message: string, generation: number | undefined): RouteCondition {
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

const IstioKinds = [ResourceTypes.VirtualService, ResourceTypes.DestinationRule, ResourceTypes.IstioGateway, ResourceTypes.ServiceEntry,
  ResourceTypes.Sidecar, ResourceTypes.PeerAuthentication, ResourceTypes.RequestAuthentication, ResourceTypes.AuthorizationPolicy];

function level(d: Diagnostic): string {
  return d.severity === 'error' ? 'ERROR' : d.severity === 'warning' ? 'WARNING' : 'INFO';
}

/** Every status this controller owes, from `s`. */
export function desiredStatuses(s: MeshSnapshot, opts: { analysis: boolean; controllerName?: string }): DesiredStatus[] {
  const controller = opts.controllerName ?? DEFAULT_CONTROLLER_NAME;
  const out: DesiredStatus[] = [];
  const ours = new Set<string>();
  for (const gc of s.list(ResourceTypes.GatewayClass)) {
    if ((gc.spec as { controllerName?: string }).controllerName !== controller) continue;
    ours.add(gc.metadata.name);
    out.push({ resource: gc, status: { conditions: [cond('Accepted', true, 'Accepted', 'Handled by Trellis', gc.metadata.generation)] } });
  }
  const ri = inputs(s);
  const listeners = computeListenerStatus(ri);
  const secrets = new Set(s.list(ResourceTypes.Secret).map((r) => `${r.metadata.namespace}/${r.metadata.name}`));
  for (const gw of s.list(ResourceTypes.Gateway)) {
    const spec = gw.spec as { gatewayClassName?: string; listeners?: { name: string; tls?: { certificateRefs?: { name: string; namespace?: string; kind?: string; group?: string }[] } }[] };
    if (!ours.has(spec.gatewayClassName ?? '')) continue;
    const gen = gw.metadata.generation;
    const addresses = gatewayAddresses(s, gw);
    const ls = (listeners.get(`${gw.metadata.namespace}/${gw.metadata.name}`) ?? []).map((l) => {
      const lspec = spec.listeners?.find((x) => x.name === l.name);
      const missing = (lspec?.tls?.certificateRefs ?? []).find((r) => (r.kind ?? 'Secret') === 'Secret' && (r.group ?? '') === '' && !secrets.has(`${r.namespace ?? gw.metadata.namespace}/${r.name}`));
      const conditions = l.conditions.map((c) => (c.type === 'ResolvedRefs' && missing !== undefined
        ? cond('ResolvedRefs', false, 'InvalidCertificateRef', `Secret ${missing.namespace ?? gw.metadata.namespace}/${missing.name} not found`, gen)
        : c));
      const resolved = conditions.every((c) => c.status === 'True');
      return { ...l, conditions: [...conditions, cond('Programmed', resolved, resolved ? 'Programmed' : 'Invalid', resolved ? '' : 'listener has unresolved references', gen)] };
    });
    const programmed = addresses.length > 0;
    out.push({
      resource: gw,
      status: {
        addresses,
        conditions: [
          cond('Accepted', true, 'Accepted', 'Resource accepted', gen),
          cond('Programmed', programmed, programmed ? 'Programmed' : 'AddressNotAssigned', programmed ? 'Resource programmed' : 'no Service labelled gateway.networking.k8s.io/gateway-name and no spec.addresses', gen),
        ],
        listeners: ls,
      },
    });
  }
  const routes = computeRouteStatus(ri, controller);
  for (const type of [ResourceTypes.HTTPRoute, ResourceTypes.GRPCRoute]) {
    for (const r of s.list(type)) {
      const parents = routes.get(`${r.type}:${r.metadata.namespace}/${r.metadata.name}`) ?? [];
      out.push({ resource: r, status: { parents } });
    }
  }
  if (opts.analysis) {
    const all = IstioKinds.flatMap((t) => [...s.list(t)]);
    const findings = analyzeConfig([...all, ...s.list(ResourceTypes.Service), ...s.list(ResourceTypes.Gateway), ...s.list(ResourceTypes.Namespace)]);
    const byKey = new Map<string, Json[]>();
    for (const d of findings) {
      if (d.resource === undefined) continue;
      const key = `${d.resource.kind}/${d.resource.namespace}/${d.resource.name}`;
      if (!byKey.has(key)) byKey.set(key, []);
      byKey.get(key)!.push({ level: level(d), type: { code: d.code, name: d.code }, description: d.message, documentationUrl: 'https://github.com/trellis-mesh/trellis/blob/main/docs/diagnostics.md' });
    }
    for (const r of all) {
      const messages = byKey.get(`${r.kind}/${r.metadata.namespace}/${r.metadata.name}`) ?? [];
      out.push({ resource: r, status: { validationMessages: messages, observedGeneration: r.metadata.generation } });
    }
  }
  return out;
}
