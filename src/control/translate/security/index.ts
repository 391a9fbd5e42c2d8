/**
 * The security filters of one proxy, added to the listeners that receive traffic for it: a
 * sidecar's inbound listeners (explicit `inbound_*`, transparent `virtualInbound`) and every
 * gateway listener. HTTP chains get, after Istio's stats filter and before fault/cors/router,
 * jwt_authn (RequestAuthentication), then the CUSTOM pair (RBAC shadow + ext_authz), then RBAC AUDIT, DENY, ALLOW; TCP chains get
 * the network RBAC filters (and the network ext_authz of a gRPC CUSTOM provider) before
 * tcp_proxy. Ports in policies are workload (or gateway server) ports; in explicit capture the
 * proxy binds them remapped (TRELLIS_INBOUND_PORTS / TRELLIS_GATEWAY_PORTS), so `destination_port`
 * matchers use the port the data plane actually sees.
 */
import type { MeshSnapshot } from '../../snapshot/snapshot.ts';
import type { ProxyNode } from '../../proxy-node.ts';
import { metadataMap } from '../identity.ts';
import { noPolicies, policiesFor } from './authz-policies.ts';
import { httpRbacFilters, networkRbacFilters } from './authz-filters.ts';
import { jwtAuthnFilter } from './jwt-authn.ts';
import { customFilters } from './ext-authz.ts';
import { HcmType, TcpProxyType } from '../../../xds/references.ts';

type Json = Record<string, unknown>;

const StatsFilterName = 'trellis.filters.http.stats';

/**
 * `sec` inserted after a leading stats filter: a Trellis proxy creates a stream's filters as the
 * request reaches them, so the stats filter must come before anything that may answer (a jwt_authn
 * 401, an RBAC 403) for Istio's metrics to count the denial as Envoy's do.
 */
function withHttpFilters(existing: readonly Json[], sec: readonly Json[]): Json[] {
  const at = existing[0]?.name === StatsFilterName ? 1 : 0;
  return [...existing.slice(0, at), ...sec, ...existing.slice(at)];
}

/** What one proxy's listeners get. */
export interface SecurityFilters {
  /** HTTP filters to put first (after the stats filter) in every HCM of a receiving listener. */
  readonly http: readonly Json[];
  /** Network filters to put before tcp_proxy in every TCP chain of a receiving listener. */
  readonly tcp: readonly Json[];
  /** `metadata.filter_metadata` for receiving listeners (Trellis switches), when not default. */
  readonly listenerMetadata: Json | undefined;
}

function portMapper(proxy: ProxyNode): (p: number) => number {
  if (proxy.captureMode === 'transparent') return (p) => p;
  const map = metadataMap(proxy, proxy.kind === 'router' ? 'TRELLIS_GATEWAY_PORTS' : 'TRELLIS_INBOUND_PORTS');
  return (p) => {
    const v = map?.[String(p)];
    const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
    return Number.isInteger(n) && n > 0 && n <= 65535 ? n : p;
  };
}

/** The security filters for `proxy` (empty when no policy applies). */
export function securityFilters(snapshot: MeshSnapshot, proxy: ProxyNode, clusterNames: ReadonlySet<string>): SecurityFilters {
  const policies = policiesFor(snapshot, proxy);
  const jwt = jwtAuthnFilter(snapshot, proxy);
  if (noPolicies(policies) && jwt === undefined) return { http: [], tcp: [], listenerMetadata: undefined };
  const port = portMapper(proxy);
  const naming = snapshot.mesh.authorizationDenialNamesPolicy !== false;
  const custom = customFilters(policies.CUSTOM, snapshot.mesh.extAuthzProviders ?? [], clusterNames, port);
  return {
    http: [...(jwt !== undefined ? [jwt] : []), ...custom.http, ...httpRbacFilters(policies, port)],
    tcp: [...custom.tcp, ...networkRbacFilters(policies, port)],
    listenerMetadata: naming ? undefined : { filter_metadata: { 'trellis.authz': { name_policy_on_deny: false } } },
  };
}

function decorateChain(chain: Json, sec: SecurityFilters): Json {
  const filters = (chain.filters as Json[] | undefined) ?? [];
  const out: Json[] = [];
  for (const f of filters) {
    const typed = f.typed_config as Json | undefined;
    if (typed?.['@type'] === HcmType && sec.http.length > 0) {
      out.push({ ...f, typed_config: { ...typed, http_filters: withHttpFilters((typed.http_filters as Json[] | undefined) ?? [], sec.http) } });
    } else if (typed?.['@type'] === TcpProxyType && sec.tcp.length > 0) {
      out.push(...sec.tcp, f);
    } else {
      out.push(f);
    }
  }
  return { ...chain, filters: out };
}

/** True for listeners that receive traffic for the proxy's own workload (or gateway). */
function receives(l: Json, proxy: ProxyNode): boolean {
  return proxy.kind === 'router' || l.traffic_direction === 'INBOUND';
}

/** The listeners with the security filters added where they apply. */
export function withSecurity(listeners: readonly Json[], proxy: ProxyNode, sec: SecurityFilters): Json[] {
  if (sec.http.length === 0 && sec.tcp.length === 0 && sec.listenerMetadata === undefined) return [...listeners];
  return listeners.map((l) => {
    if (!receives(l, proxy)) return l;
    const out: Json = { ...l, filter_chains: ((l.filter_chains as Json[] | undefined) ?? []).map((c) => decorateChain(c, sec)) };
    if (l.default_filter_chain !== undefined) out.default_filter_chain = decorateChain(l.default_filter_chain as Json, sec);
    if (sec.listenerMetadata !== undefined) {
      const meta = (l.metadata as Json | undefined) ?? {};
      out.metadata = { ...meta, filter_metadata: { ...((meta.filter_metadata as Json | undefined) ?? {}), ...(sec.listenerMetadata.filter_metadata as Json) } };
    }
    return out;
  });
}
