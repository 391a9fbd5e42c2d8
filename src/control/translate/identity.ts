/**
 * Workload identities and proxy facts translation derives from the snapshot: SPIFFE ids of a
 * service's endpoints (for ISTIO_MUTUAL SAN checks), the proxy's own locality (node metadata
 * `TRELLIS_LOCALITY` "region/zone/subzone", else its labels), and the services whose workloads
 * the proxy fronts (selector matches the proxy's labels in its namespace).
 */
import type { Locality, ServiceInfo } from '../../registry/types.ts';
import { localityOf } from '../../registry/locality.ts';
import type { MeshSnapshot } from '../snapshot/snapshot.ts';
import type { ProxyNode } from '../proxy-node.ts';

/** `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`. */
export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/** Distinct sorted SPIFFE ids of the endpoints behind a service port. */
export function serviceIdentities(snapshot: MeshSnapshot, svc: ServiceInfo, port: number): string[] {
  const ids = new Set<string>();
  for (const e of snapshot.registry.endpoints(svc.hostname, port)) {
    if (e.serviceAccount !== '') ids.add(spiffeId(snapshot.mesh.trustDomain, e.namespace, e.serviceAccount));
  }
  return [...ids].sort();
}

/** The proxy's locality. */
export function proxyLocality(proxy: ProxyNode): Locality {
  const meta = proxy.metadata.TRELLIS_LOCALITY;
  return localityOf({ explicit: typeof meta === 'string' ? meta : undefined, labels: proxy.labels });
}

/** Services in the proxy's namespace whose selector selects the proxy (its inbound services). */
export function inboundServices(snapshot: MeshSnapshot, proxy: ProxyNode): ServiceInfo[] {
  return snapshot.registry.servicesInNamespace(proxy.namespace).filter((s) => {
    if (s.selector === undefined || Object.keys(s.selector).length === 0) return false;
    return Object.entries(s.selector).every(([k, v]) => proxy.labels[k] === v);
  });
}

/** A JSON object from node metadata (value or JSON string), else undefined. */
export function metadataMap(proxy: ProxyNode, key: string): Record<string, unknown> | undefined {
  let v = proxy.metadata[key];
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch {
      return undefined;
    }
  }
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** A port number from node metadata (number or numeric string), else undefined. */
export function metadataPort(proxy: ProxyNode, key: string): number | undefined {
  const v = proxy.metadata[key];
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isInteger(n) && n >= 0 && n <= 65535 ? n : undefined;
}

/** Truthy metadata flag ("true", "1", true). */
export function metadataFlag(proxy: ProxyNode, key: string): boolean {
  const v = proxy.metadata[key];
  return v === true || v === 'true' || v === '1' || v === 1;
}
