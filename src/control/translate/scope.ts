/**
 * Which services a proxy knows about (Istio's "sidecar scope"): every service visible to the
 * proxy's namespace (exportTo), narrowed for sidecars by the applicable Sidecar resource's
 * egress `hosts` (`<namespace>/<dnsName>` with `.` = the proxy's namespace, `*` = any, `~` =
 * none; the dnsName may be `*` or `*.suffix`). Also the effective outbound traffic policy.
 */
import type { ServiceInfo } from '../../registry/types.ts';
import type { MeshSnapshot } from '../snapshot/snapshot.ts';
import { hostMatches } from '../snapshot/visibility.ts';
import type { ProxyNode } from '../proxy-node.ts';
import type { SidecarView } from '../../config/views.ts';

export interface ProxyScope {
  /** Services whose clusters (and routes) the proxy receives, in registry order. */
  readonly services: readonly ServiceInfo[];
  /** The Sidecar resource in force, if any. */
  readonly sidecar?: SidecarView;
  readonly outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** True when `service` is in scope (by hostname). */
  has(hostname: string): boolean;
}

/** True when an egress host entry (`ns/dnsName`) selects `svc` for a proxy in `proxyNamespace`. */
export function egressHostSelects(entry: string, svc: ServiceInfo, proxyNamespace: string): boolean {
  const slash = entry.indexOf('/');
  const ns = slash === -1 ? '*' : entry.slice(0, slash);
  const host = slash === -1 ? entry : entry.slice(slash + 1);
  if (ns === '~') return false;
  const wantNs = ns === '.' ? proxyNamespace : ns;
  if (wantNs !== '*' && wantNs !== svc.namespace) return false;
  return hostMatches(host, svc.hostname) || (svc.hostname.includes('*') && host === svc.hostname);
}

/** The scope of `proxy` in `snapshot`. */
export function proxyScope(snapshot: MeshSnapshot, proxy: ProxyNode): ProxyScope {
  const visible = snapshot.registry.services().filter((s) => snapshot.registry.visibleTo(s, proxy.namespace));
  const sidecar = proxy.kind === 'sidecar' ? snapshot.sidecars.forProxy(proxy.namespace, proxy.labels)?.spec : undefined;
  let services = visible;
  const egress = sidecar?.egress;
  if (egress !== undefined && egress.length > 0) {
    const hosts = egress.flatMap((e) => e.hosts ?? []);
    services = visible.filter((s) => hosts.some((h) => egressHostSelects(h, s, proxy.namespace)));
  }
  const mode = sidecar?.outboundTrafficPolicy?.mode;
  const outboundTrafficPolicy = mode === 'REGISTRY_ONLY' || mode === 'ALLOW_ANY' ? mode : snapshot.mesh.outboundTrafficPolicy;
  const names = new Set(services.map((s) => s.hostname));
  return Object.freeze({
    services: Object.freeze(services),
    ...(sidecar !== undefined ? { sidecar } : {}),
    outboundTrafficPolicy,
    has: (h: string) => names.has(h),
  });
}
