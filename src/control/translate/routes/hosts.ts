/**
 * Hostname rules of route generation: short-name resolution, wildcard matching and `exportTo`
 * come from src/config/host.ts (the one home of host rules); here, Gateway API hostname
 * intersection and the domain lists of sidecar and gateway virtual hosts (FQDN,
 * namespace-qualified short names, VIPs, each with and without `:port`).
 */

import type { ServiceInfo } from '../../../registry/types.ts';
import { hostMatches } from '../../../config/host.ts';

export { exportedTo, hostMatches, resolveHost } from '../../../config/host.ts';

/** The more specific of two hostnames when they overlap (Gateway API hostname intersection); undefined when disjoint. */
export function intersectHosts(a: string, b: string): string | undefined {
  if (hostMatches(a, b)) return b;
  if (hostMatches(b, a)) return a;
  return undefined;
}

/** Hostname of a Kubernetes Service, or undefined for other registry entries. */
function kubeServiceParts(svc: ServiceInfo, domainSuffix: string): { name: string; ns: string } | undefined {
  const suffix = `.svc.${domainSuffix}`;
  if (!svc.origin.startsWith('core/Service:') || !svc.hostname.endsWith(suffix)) return undefined;
  const [name, ns] = svc.hostname.slice(0, -suffix.length).split('.');
  return name && ns ? { name, ns } : undefined;
}

/**
 * Domains of a sidecar outbound virtual host, as Istio's `generateVirtualHostDomains`: the FQDN,
 * for Kubernetes Services `name.ns.svc` and `name.ns` (plus bare `name` from the same namespace),
 * and the VIPs. `withPorts`: each also with `:port`, for clients that match the Host header
 * including its port (proxyless gRPC); Envoy and our proxy get the bare names plus the route
 * configuration's `ignore_port_in_host_matching`, as Istio does since 1.16 (half the bytes of
 * the largest resource a sidecar receives).
 */
export function sidecarDomains(svc: ServiceInfo, port: number, proxyNamespace: string, domainSuffix: string, withPorts = true): string[] {
  const names = [svc.hostname];
  const kube = kubeServiceParts(svc, domainSuffix);
  if (kube) {
    if (kube.ns === proxyNamespace) names.push(kube.name);
    names.push(`${kube.name}.${kube.ns}.svc`, `${kube.name}.${kube.ns}`);
  }
  for (const vip of svc.addresses) names.push(vip.includes(':') ? `[${vip}]` : vip);
  if (!withPorts) return names;
  const out: string[] = [];
  for (const n of names) out.push(n, `${n}:${port}`);
  return out;
}

/** Name of a sidecar outbound virtual host: `<hostname>:<port>`. */
export function vhostName(host: string, port: number): string {
  return `${host}:${port}`;
}

/**
 * Domains of a gateway virtual host: the host, plus `host:*` so a Host header carrying a port
 * still matches. Not for wildcard hosts: Envoy allows one wildcard per domain and NACKs
 * `*.example.com:*` (envoyproxy/envoy#12647; conformance HTTPRouteListenerHostnameMatching).
 */
export function gatewayDomains(host: string): string[] {
  return host === '*' ? ['*'] : host.startsWith('*') ? [host] : [host, `${host}:*`];
}
