/**
 * Gateway API references. Routes (HTTPRoute, GRPCRoute, TCPRoute, TLSRoute): each `parentRef`
 * must name an existing Gateway (and listener, when `sectionName` is set) or, for mesh (GAMMA)
 * routes, a Service — PARENT_NOT_FOUND; each `backendRef` must name an existing Service (or, as
 * Istio allows, a ServiceEntry / `Hostname`) — ROUTE_BACKEND_NOT_FOUND; a backendRef into another
 * namespace needs a ReferenceGrant there — REF_NOT_PERMITTED (not for a route whose parents are all
 * Services: GAMMA backends may be anywhere, GEP-1426). Gateways: a TLS listener's
 * `certificateRefs` must name an existing Secret — SECRET_NOT_FOUND — and a cross-namespace one
 * needs a ReferenceGrant — REF_NOT_PERMITTED. Parent references need no grant (the Gateway's
 * `allowedRoutes` governs them), per the Gateway API spec.
 */
import type { Resource } from '../resource.ts';
import { ResourceTypes } from '../resource.ts';
import type { AnalysisContext } from './context.ts';
import { isObject, list, view, type GatewayView, type RouteView } from '../views.ts';

const GW_GROUP = 'gateway.networking.k8s.io';
const ISTIO_GROUP = 'networking.istio.io';

/** Runs the Gateway API reference checks. */
export function checkGatewayApi(ctx: AnalysisContext): void {
  for (const t of [ResourceTypes.HTTPRoute, ResourceTypes.GRPCRoute, ResourceTypes.TCPRoute, ResourceTypes.TLSRoute]) {
    for (const route of ctx.of(t)) checkRoute(ctx, route);
  }
  for (const gw of ctx.of(ResourceTypes.Gateway)) checkCertificates(ctx, gw);
}

function checkRoute(ctx: AnalysisContext, route: Resource): void {
  const ns = route.metadata.namespace;
  const spec = view<RouteView>(route);
  list(spec.parentRefs).forEach((p, i) => {
    if (p === null || typeof p !== 'object' || typeof p.name !== 'string') return;
    const group = p.group ?? GW_GROUP;
    const kind = p.kind ?? 'Gateway';
    const pns = p.namespace ?? ns;
    const path = `spec.parentRefs[${i}]`;
    if (group === GW_GROUP && kind === 'Gateway') {
      const gw = ctx.find(ResourceTypes.Gateway, pns, p.name);
      if (gw === undefined) {
        ctx.report(route, 'error', 'PARENT_NOT_FOUND', `parent Gateway ${pns}/${p.name} is not defined`, `${path}.name`);
      } else if (typeof p.sectionName === 'string' && p.sectionName !== '') {
        const names = list(view<GatewayView>(gw).listeners).map((l) => l?.name);
        if (!names.includes(p.sectionName)) {
          ctx.report(route, 'error', 'PARENT_NOT_FOUND',
            `Gateway ${pns}/${p.name} has no listener '${p.sectionName}' (listeners: ${names.join(', ')})`, `${path}.sectionName`);
        }
      }
    } else if (group === '' && kind === 'Service') {
      if (ctx.find(ResourceTypes.Service, pns, p.name) === undefined) {
        ctx.report(route, 'error', 'PARENT_NOT_FOUND', `parent Service ${pns}/${p.name} is not defined`, `${path}.name`);
      }
    }
  });
  // Backends of a route served only for Service parents (GAMMA) may be in any namespace without a
  // ReferenceGrant (GEP-1426 namespace boundaries); a Gateway parent needs the grant.
  const gatewayBound = list(spec.parentRefs).some((p) => p !== null && typeof p === 'object' && !((p.group ?? GW_GROUP) === '' && p.kind === 'Service'));
  list(spec.rules).forEach((rule, i) => {
    list(rule?.backendRefs).forEach((b, j) => {
      if (b === null || typeof b !== 'object' || typeof b.name !== 'string') return;
      const group = b.group ?? '';
      const kind = b.kind ?? 'Service';
      const bns = b.namespace ?? ns;
      const path = `spec.rules[${i}].backendRefs[${j}]`;
      let exists: boolean | undefined;
      if (group === '' && kind === 'Service') exists = ctx.find(ResourceTypes.Service, bns, b.name) !== undefined;
      else if (group === ISTIO_GROUP && kind === 'ServiceEntry') exists = ctx.find(ResourceTypes.ServiceEntry, bns, b.name) !== undefined;
      else if (group === ISTIO_GROUP && kind === 'Hostname') exists = ctx.hostKnown(b.name.toLowerCase());
      if (exists === undefined) return; // a kind we do not resolve (ServiceImport, InferencePool...)
      if (!exists) {
        ctx.report(route, 'error', 'ROUTE_BACKEND_NOT_FOUND', `backend ${kind} ${bns}/${b.name} is not defined`, `${path}.name`);
        return;
      }
      if (bns !== ns && kind !== 'Hostname' && gatewayBound) {
        const granted = ctx.referenceGranted({ group: GW_GROUP, kind: route.kind, namespace: ns }, { group, kind, namespace: bns, name: b.name });
        if (!granted) {
          ctx.report(route, 'error', 'REF_NOT_PERMITTED',
            `backend ${kind} ${bns}/${b.name} is in another namespace and no ReferenceGrant in ${bns} allows ${route.kind} from ${ns}`, `${path}.namespace`);
        }
      }
    });
  });
}

function checkCertificates(ctx: AnalysisContext, gw: Resource): void {
  const ns = gw.metadata.namespace;
  list(view<GatewayView>(gw).listeners).forEach((l, i) => {
    const tls = l?.tls;
    if (!isObject(tls) || (tls.mode ?? 'Terminate') !== 'Terminate') return;
    list(tls.certificateRefs).forEach((ref, k) => {
      if (ref === null || typeof ref !== 'object' || typeof ref.name !== 'string') return;
      const group = ref.group ?? '';
      const kind = ref.kind ?? 'Secret';
      if (group !== '' || kind !== 'Secret') return;
      const sns = ref.namespace ?? ns;
      const path = `spec.listeners[${i}].tls.certificateRefs[${k}]`;
      if (ctx.find(ResourceTypes.Secret, sns, ref.name) === undefined) {
        ctx.report(gw, 'error', 'SECRET_NOT_FOUND', `listener '${l?.name ?? i}' certificate Secret ${sns}/${ref.name} is not defined`, `${path}.name`);
      } else if (sns !== ns && !ctx.referenceGranted({ group: GW_GROUP, kind: 'Gateway', namespace: ns }, { group: '', kind: 'Secret', namespace: sns, name: ref.name })) {
        ctx.report(gw, 'error', 'REF_NOT_PERMITTED',
          `certificate Secret ${sns}/${ref.name} is in another namespace and no ReferenceGrant in ${sns} allows Gateways from ${ns}`, `${path}.namespace`);
      }
    });
  });
}
