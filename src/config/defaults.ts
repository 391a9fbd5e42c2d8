/**
 * Defaults the upstream APIs document but their CRD schemas do not carry as `default`
 * (those are applied by the schema validator). Kubernetes Service: port protocol TCP,
 * targetPort = port, type ClusterIP, sessionAffinity None. Gateway API defaults (route match
 * PathPrefix "/", backendRef group ""/kind Service/weight 1, parentRef group/kind, listener
 * allowedRoutes from Same) come from the schemas; we fill any the older schemas lack.
 * Runs on the mutable copy before freezing.
 */
import { ResourceTypes } from './resource.ts';
import type { ResourceType } from './resource.ts';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function each(v: unknown, fn: (o: Obj) => void): void {
  if (Array.isArray(v)) for (const x of v) if (isObj(x)) fn(x);
}

function serviceDefaults(spec: Obj): void {
  spec.type ??= 'ClusterIP';
  spec.sessionAffinity ??= 'None';
  each(spec.ports, (p) => {
    p.protocol ??= 'TCP';
    p.targetPort ??= p.port;
  });
}

function parentRefDefaults(spec: Obj): void {
  each(spec.parentRefs, (r) => {
    r.group ??= 'gateway.networking.k8s.io';
    r.kind ??= 'Gateway';
  });
}

function backendRefDefaults(rule: Obj): void {
  each(rule.backendRefs, (b) => {
    b.group ??= '';
    b.kind ??= 'Service';
    b.weight ??= 1;
  });
}

function httpRouteDefaults(spec: Obj): void {
  parentRefDefaults(spec);
  spec.rules ??= [{ matches: [{ path: { type: 'PathPrefix', value: '/' } }] }];
  each(spec.rules, (rule) => {
    if (rule.matches === undefined || (Array.isArray(rule.matches) && rule.matches.length === 0)) {
      rule.matches = [{ path: { type: 'PathPrefix', value: '/' } }];
    }
    each(rule.matches, (m) => {
      if (isObj(m.path)) {
        m.path.type ??= 'PathPrefix';
        m.path.value ??= '/';
      }
      each(m.headers, (h) => { h.type ??= 'Exact'; });
      each(m.queryParams, (q) => { q.type ??= 'Exact'; });
    });
    backendRefDefaults(rule);
  });
}

function grpcRouteDefaults(spec: Obj): void {
  parentRefDefaults(spec);
  each(spec.rules, (rule) => {
    each(rule.matches, (m) => {
      if (isObj(m.method)) m.method.type ??= 'Exact';
      each(m.headers, (h) => { h.type ??= 'Exact'; });
    });
    backendRefDefaults(rule);
  });
}

function gatewayDefaults(spec: Obj): void {
  each(spec.listeners, (l) => {
    if (!isObj(l.allowedRoutes)) l.allowedRoutes = {};
    const ar = l.allowedRoutes as Obj;
    if (!isObj(ar.namespaces)) ar.namespaces = {};
    (ar.namespaces as Obj).from ??= 'Same';
  });
}

/** Applies documented API defaults to a validated spec (in place). */
export function applyDefaults(type: ResourceType, spec: Obj): void {
  switch (type) {
    case ResourceTypes.Service: serviceDefaults(spec); break;
    case ResourceTypes.HTTPRoute: httpRouteDefaults(spec); break;
    case ResourceTypes.GRPCRoute: grpcRouteDefaults(spec); break;
    case ResourceTypes.TCPRoute:
    case ResourceTypes.TLSRoute:
      parentRefDefaults(spec);
      each(spec.rules, backendRefDefaults);
      break;
    case ResourceTypes.Gateway: gatewayDefaults(spec); break;
    default: break;
  }
}
