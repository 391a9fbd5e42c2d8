/**
 * VirtualServices by the gateway they bind to (`mesh` for sidecars, `<ns>/<name>` for Istio
 * Gateways; short gateway names are relative to the VirtualService's namespace, and an unset
 * `gateways` means `mesh`), with exportTo applied per reading namespace. Hosts are qualified
 * relative to the VirtualService's namespace for matching against services.
 */
import { compareByAge, type Resource } from '../../config/resource.ts';
import type { ServiceRegistry } from '../../registry/types.ts';
import { exportedTo, hostsIntersect } from './visibility.ts';
import { type VirtualServiceView, view } from '../../config/views.ts';

/** The gateway name VirtualServices use for sidecars. */
export const MeshGateway = 'mesh';

export interface IndexedVirtualService {
  readonly resource: Resource;
  readonly spec: VirtualServiceView;
  /** Hosts as qualified FQDNs or wildcards. */
  readonly hosts: readonly string[];
  /** Gateways as `mesh` or `<ns>/<name>`. */
  readonly gateways: readonly string[];
}

export interface VirtualServiceIndex {
  /** VirtualServices bound to `gateway` (`mesh` or `ns/name`) and visible from `namespace` (sidecars: the proxy namespace; gateways: ignored when undefined). */
  forGateway(gateway: string, namespace?: string): readonly IndexedVirtualService[];
  /** VirtualServices bound to `gateway` having a host that intersects `host`. */
  forHost(host: string, gateway: string, namespace?: string): readonly IndexedVirtualService[];
  all(): readonly IndexedVirtualService[];
}

/** `ns/name` for a gateway reference written in a resource of namespace `ns`. */
export function qualifyGateway(ref: string, namespace: string): string {
  if (ref === MeshGateway || ref.includes('/')) return ref;
  // Istio also accepts `name.namespace.svc.cluster.local`-style refs; we take the first label as name and second as namespace.
  if (ref.includes('.')) {
    const [name, ns] = ref.split('.');
    return `${ns}/${name}`;
  }
  return `${namespace}/${ref}`;
}

export function indexVirtualServices(vss: readonly Resource[], registry: Pick<ServiceRegistry, 'qualify'>): VirtualServiceIndex {
  const all: IndexedVirtualService[] = [];
  const byGateway = new Map<string, IndexedVirtualService[]>();
  // Istio orders by creation time: the oldest VirtualService wins a host conflict.
  for (const r of [...vss].sort(compareByAge)) {
    const spec = view<VirtualServiceView>(r);
    const ns = r.metadata.namespace;
    const gateways = (spec.gateways !== undefined && spec.gateways.length > 0 ? spec.gateways : [MeshGateway]).map((g) => qualifyGateway(g, ns));
    const e: IndexedVirtualService = Object.freeze({
      resource: r,
      spec,
      hosts: Object.freeze((spec.hosts ?? []).map((h) => registry.qualify(h, ns))),
      gateways: Object.freeze(gateways),
    });
    all.push(e);
    for (const g of new Set(gateways)) {
      const l = byGateway.get(g) ?? [];
      l.push(e);
      byGateway.set(g, l);
    }
  }
  const visible = (l: readonly IndexedVirtualService[], ns: string | undefined) =>
    ns === undefined ? l : l.filter((e) => exportedTo(e.spec.exportTo, e.resource.metadata.namespace, ns));
  return {
    forGateway: (gateway, namespace) => visible(byGateway.get(gateway) ?? [], namespace),
    forHost: (host, gateway, namespace) => visible(byGateway.get(gateway) ?? [], namespace).filter((e) => e.hosts.some((h) => hostsIntersect(h, host))),
    all: () => all,
  };
}
