/**
 * How a VirtualService names its gateways: `ns/name`, a short name in the VirtualService's
 * namespace, the deprecated `name.namespace[.svc.cluster.local]`, or `mesh` for the sidecars
 * (Istio's default when `gateways` is empty).
 */
import type { Resource } from '../resource.ts';
import { list, view, type VirtualServiceView } from '../views.ts';

/** The reserved gateway name that means every sidecar. */
export const MeshGateway = 'mesh';

/** Parses a VirtualService gateway reference into namespace and name. */
export function parseGatewayRef(ref: string, vsNamespace: string): { namespace: string; name: string } {
  const slash = ref.indexOf('/');
  if (slash >= 0) return { namespace: ref.slice(0, slash), name: ref.slice(slash + 1) };
  const dot = ref.indexOf('.');
  if (dot >= 0) return { namespace: ref.split('.')[1], name: ref.slice(0, dot) };
  return { namespace: vsNamespace, name: ref };
}

/** Gateway references of a VirtualService as written, `mesh` when none is given. */
export function gatewaysOf(vs: Resource): string[] {
  const g = list(view<VirtualServiceView>(vs).gateways).filter((x): x is string => typeof x === 'string');
  return g.length === 0 ? [MeshGateway] : g;
}
