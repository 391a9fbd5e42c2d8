/**
 * The bridge to route translation (`routes/`): builds its `RouteInputs` from the snapshot and the
 * proxy's scope, and answers the listeners' route configuration requests with its builders. The
 * explicit-mode `http_proxy` config is assembled here from the per-port sidecar configs: all
 * their virtual hosts with port-qualified domains (`host:port`; bare `host` too for port 80 and
 * wildcards), since an HTTP proxy request names any port, and one catch-all `*` virtual host
 * (Envoy rejects a domain twice in one route configuration). Each service's virtual host also
 * takes `CONNECT host:port` (what Node's fetch sends for every URL through a proxy): the tunnel is
 * terminated and its bytes go to the sidecar's own outbound listener for the port, so the requests
 * inside are routed by the same VirtualServices as plain proxy requests.
 */
import { ResourceTypes } from '../../config/resource.ts';
import type { Resource } from '../../config/resource.ts';
import type { XdsJson } from '../../xds/types.ts';
import { PassthroughCluster } from './names.ts';
import type { MeshSnapshot } from '../snapshot/snapshot.ts';
import type { ProxyNode } from '../proxy-node.ts';
import { buildGatewayApiRoute, buildIstioGatewayRoute, buildSidecarOutboundRoute, buildSidecarServiceRoute } from './routes/index.ts';
import type { IstioServerRef, RouteInputs } from './routes/index.ts';
import type { GatewayResource } from './routes/index.ts';
import type { RouteRequest } from './listeners-sidecar.ts';
import type { GatewayRouteRequest } from './listeners-gateway.ts';
import type { ProxyScope } from './scope.ts';
import { httpProxyConnectClusterName } from './names.ts';

type Json = Record<string, unknown>;

function as<T>(list: readonly Resource[]): readonly T[] {
  return list as unknown as readonly T[];
}

/** RouteInputs for one proxy: its scoped services and the snapshot's routing config. */
export function routeInputs(snapshot: MeshSnapshot, scope: ProxyScope): RouteInputs {
  const nsLabels = new Map(snapshot.list(ResourceTypes.Namespace).map((n) => [n.metadata.name, n.metadata.labels]));
  return {
    virtualServices: as(snapshot.list(ResourceTypes.VirtualService)),
    httpRoutes: as(snapshot.list(ResourceTypes.HTTPRoute)),
    grpcRoutes: as(snapshot.list(ResourceTypes.GRPCRoute)),
    istioGateways: as(snapshot.list(ResourceTypes.IstioGateway)),
    gateways: as(snapshot.list(ResourceTypes.Gateway)),
    referenceGrants: as(snapshot.list(ResourceTypes.ReferenceGrant)),
    destinationRules: as(snapshot.list(ResourceTypes.DestinationRule)),
    services: scope.services,
    domainSuffix: snapshot.mesh.domainSuffix,
    rootNamespace: snapshot.mesh.rootNamespace,
    namespaceLabels: (ns) => nsLabels.get(ns),
    outboundTrafficPolicy: scope.outboundTrafficPolicy,
  };
}

/** Builds every requested route configuration (first request per name wins). */
export function buildRoutes(inputs: RouteInputs, proxy: ProxyNode, requests: readonly (RouteRequest | GatewayRouteRequest)[]): Map<string, XdsJson> {
  const out = new Map<string, XdsJson>();
  const sidecarCache = new Map<number, XdsJson>();
  const sidecar = (port: number) => {
    let c = sidecarCache.get(port);
    if (c === undefined) sidecarCache.set(port, (c = buildSidecarOutboundRoute(inputs, proxy, port)));
    return c;
  };
  for (const r of requests) {
    if (out.has(r.name)) continue;
    switch (r.kind) {
      case 'sidecar':
        out.set(r.name, sidecar(r.port));
        break;
      case 'sidecar-service':
        out.set(r.name, buildSidecarServiceRoute(inputs, proxy, r.port, r.hostname, r.name));
        break;
      case 'http_proxy':
        out.set(r.name, httpProxyRoute(r.name, r.ports.map((p) => [p, sidecar(p)] as const), r.unknownHostsTo));
        break;
      case 'istio-gateway':
        out.set(r.name, buildIstioGatewayRoute(inputs, proxy, r.name, r.servers as unknown as readonly IstioServerRef[]));
        break;
      case 'gateway-api':
        out.set(r.name, buildGatewayApiRoute(inputs, r.name, r.gateway as unknown as GatewayResource, r.port, r.listenerNames));
        break;
    }
  }
  return out;
}

/** A per-port domain as the HTTP proxy matches it (the per-port configs ignore the Host's port). */
function qualified(domain: string, port: number): string[] {
  if (domain === '*') return [];
  if (/:\d+$/.test(domain)) return [domain]; // proxyless-style config already qualified
  const out = [`${domain}:${port}`];
  if (port === 80 || domain.includes('*.')) out.unshift(domain);
  return out;
}

/** Terminates `CONNECT host:port` and sends the tunnel to the outbound listener for `port`. */
function connectRoute(port: number): Json {
  return {
    match: { connect_matcher: {} },
    route: { cluster: httpProxyConnectClusterName(port), upgrade_configs: [{ upgrade_type: 'CONNECT', connect_config: {} }] },
  };
}

/** The explicit-mode HTTP proxy's routes; `unknownHostsTo` replaces PassthroughCluster in the `allow_any` catch-all. */
function httpProxyRoute(name: string, configs: readonly (readonly [number, XdsJson])[], unknownHostsTo?: string): XdsJson {
  const vhosts: Json[] = [];
  const domains = new Set<string>();
  let catchAll: Json | undefined;
  for (const [port, cfg] of configs) {
    for (const vh of (cfg.virtual_hosts as Json[] | undefined) ?? []) {
      const ds = (vh.domains as string[]).flatMap((d) => qualified(d, port)).filter((d) => !domains.has(d));
      if ((vh.domains as string[]).includes('*')) {
        catchAll ??= vh;
        continue;
      }
      if (ds.length === 0) continue;
      ds.forEach((d) => domains.add(d));
      vhosts.push({ ...vh, domains: ds, routes: [connectRoute(port), ...((vh.routes as Json[] | undefined) ?? [])] });
    }
  }
  if (catchAll !== undefined) vhosts.push(unknownHostsTo === undefined ? catchAll : redirectCatchAll(catchAll, unknownHostsTo));
  return { name, virtual_hosts: vhosts, validate_clusters: false };
}

function redirectCatchAll(vh: Json, cluster: string): Json {
  const routes = ((vh.routes as Json[] | undefined) ?? []).map((r) => {
    const action = r.route as Json | undefined;
    return action?.cluster === PassthroughCluster ? { ...r, route: { ...action, cluster } } : r;
  });
  return { ...vh, routes };
}
