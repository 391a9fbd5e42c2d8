/**
 * Automatic virtual IPs for Kubernetes Services that declare no `clusterIP` (local mode: nobody
 * runs an API server to assign one). Transparent capture needs a VIP per Service: applications
 * resolve `reviews` to it, iptables redirects the connection, and the sidecar tells TCP services
 * apart by it. Addresses come from 240.240.0.0/16, the range Istio's DNS proxy auto-allocates
 * from (class E, never routed on the internet). The choice is a pure function of the set of
 * Services: a hash of `<name>.<namespace>` picks a slot, collisions probe forward in namespace/name
 * order, and explicit cluster IPs are never reused, so the control plane's registry and the
 * runtime's DNS responder, built from the same config, always agree.
 */
import { createHash } from 'node:crypto';

/** The range auto-allocated VIPs come from (Istio's auto-allocation range). */
export const AutoVipPrefix = '240.240.0.0/16';

/** A Service that needs a VIP. */
export interface VipRequest {
  readonly namespace: string;
  readonly name: string;
}

const slots = 65534; // 240.240.0.1 .. 240.240.255.254

function slotIp(slot: number): string {
  const n = slot + 1;
  return `240.240.${n >> 8}.${n & 255}`;
}

/** `namespace/name` -> VIP for every request; addresses in `taken` are skipped. */
export function allocateVips(requests: readonly VipRequest[], taken: ReadonlySet<string> = new Set()): Map<string, string> {
  const out = new Map<string, string>();
  const used = new Set(taken);
  const sorted = [...requests].sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
  for (const r of sorted) {
    const key = `${r.namespace}/${r.name}`;
    if (out.has(key)) continue;
    const h = createHash('sha256').update(`${r.name}.${r.namespace}`).digest();
    let slot = h.readUInt32BE(0) % slots;
    for (let i = 0; i < slots && used.has(slotIp(slot)); i++) slot = (slot + 1) % slots;
    const ip = slotIp(slot);
    if (used.has(ip)) break; // range exhausted: the rest go without a VIP
    used.add(ip);
    out.set(key, ip);
  }
  return out;
}
