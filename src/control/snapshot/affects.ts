/**
 * Which proxies a configuration change can affect, for the push queue. Conservative: a change
 * of a type we do not reason about affects every proxy; a false "affected" costs one push, a
 * false "unaffected" leaves a proxy stale.
 */
import type { Resource } from '../../config/resource.ts';
import { ResourceTypes } from '../../config/resource.ts';
import type { ProxyNode } from '../proxy-node.ts';
import { type SidecarView, type VirtualServiceView, view } from '../../config/views.ts';

/** True when any of `changed` (old or new versions) may change what `proxy` is sent. */
export function affectsProxy(changed: readonly Resource[], proxy: ProxyNode, rootNamespace = 'istio-system'): boolean {
  return changed.some((r) => affectsOne(r, proxy, rootNamespace));
}

function affectsOne(r: Resource, proxy: ProxyNode, rootNamespace: string): boolean {
  const gateway = proxy.kind === 'router';
  switch (r.type) {
    case ResourceTypes.IstioGateway:
    case ResourceTypes.Gateway:
    case ResourceTypes.GatewayClass:
      // Gateway servers only shape gateway proxies.
      return gateway;
    case ResourceTypes.Secret:
      // Gateway credentials, and DestinationRule `credentialName`s of sidecars (TLS origination).
      return true;
    case ResourceTypes.Sidecar: {
      if (gateway) return false;
      if (r.metadata.namespace === rootNamespace) return true;
      if (r.metadata.namespace !== proxy.namespace) return false;
      const sel = view<SidecarView>(r).workloadSelector?.labels;
      if (sel === undefined) return true;
      return Object.entries(sel).every(([k, v]) => proxy.labels[k] === v);
    }
    case ResourceTypes.VirtualService: {
      const gws = view<VirtualServiceView>(r).gateways;
      const meshOnly = gws === undefined || gws.length === 0 || gws.every((g) => g === 'mesh');
      // A gateway-only VirtualService still matters to sidecars when it also lists `mesh`; otherwise not.
      if (!gateway && gws !== undefined && gws.length > 0 && !gws.includes('mesh')) return false;
      return gateway ? !meshOnly : true;
    }
    case ResourceTypes.Namespace:
    case ResourceTypes.ConfigMap:
      return false;
    default:
      return true;
  }
}
