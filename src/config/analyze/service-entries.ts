/**
 * SE_ADDRESSES_REQUIRED (warning, IST0134): a ServiceEntry without `addresses` with a port whose
 * protocol is TCP or unset. Sidecars tell TCP destinations apart only by address: with transparent
 * capture such a port becomes the catch-all for every unknown destination on that port number, and
 * two such entries on one port cannot both be reached. Trellis gives automatic VIPs to Kubernetes
 * Services only (src/registry/vip.ts), not to ServiceEntries, and does not use the `status`
 * addresses Istio allocates, so Istio's DNS auto-allocation exception does not apply.
 */
import { ResourceTypes } from '../resource.ts';
import type { AnalysisContext } from './context.ts';
import { list, view, type ServiceEntryView } from '../views.ts';

/** Runs SE_ADDRESSES_REQUIRED. */
export function checkServiceEntries(ctx: AnalysisContext): void {
  for (const se of ctx.of(ResourceTypes.ServiceEntry)) {
    const spec = view<ServiceEntryView>(se);
    if (list(spec.addresses).length > 0) continue;
    const tcp = list(spec.ports).map((p, i) => ({ p, i })).filter(({ p }) => {
      const proto = typeof p?.protocol === 'string' ? p.protocol.toUpperCase() : '';
      return proto === '' || proto === 'TCP';
    });
    if (tcp.length === 0) continue;
    ctx.report(se, 'warning', 'SE_ADDRESSES_REQUIRED',
      `port${tcp.length > 1 ? 's' : ''} ${tcp.map(({ p }) => `${p?.number ?? '?'}${p?.protocol ? ` (${p.protocol})` : ' (no protocol)'}`).join(', ')} carry plain TCP but the entry has no addresses: sidecars tell TCP destinations apart only by address, so this entry would take every unknown destination on the port. Add addresses, or name an application protocol (HTTP, TLS...)`,
      `spec.ports[${tcp[0].i}]`);
  }
}
