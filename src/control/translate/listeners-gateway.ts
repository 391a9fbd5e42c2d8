/**
 * Gateway (`router`) listeners. One listener `0.0.0.0_<port>` per port (bound on
 * `TRELLIS_GATEWAY_PORTS[port]` when node metadata remaps it, e.g. 80 -> 8080 unprivileged).
 * Istio Gateway servers selected by the proxy's labels: plain HTTP servers share one chain with
 * RDS `http.<port>`; TLS-terminating HTTPS servers (SIMPLE, MUTUAL, ISTIO_MUTUAL) get one chain
 * each, matched by SNI (`server_names` = the server's hosts, none for `*`), with RDS
 * `https.<port>.<portName>.<gateway>.<ns>`; PASSTHROUGH servers get SNI chains from the
 * VirtualService `tls` routes bound to the gateway; TCP servers a tcp_proxy from `tcp` routes.
 * Gateway API Gateways matched to the proxy (label `gateway.networking.k8s.io/gateway-name` or
 * metadata `TRELLIS_GATEWAY`): HTTP listeners -> RDS `http.<port>`, HTTPS/Terminate -> SNI chain
 * with certificateRefs as SDS `kubernetes-gateway://<ns>/<name>` and RDS
 * `https.<port>.<listener>.<gateway>.<ns>`, TLS/Passthrough -> TLSRoute chains, TCP -> TCPRoute.
 * When two sources claim one port the first (Istio Gateways, then Gateway API, by name) wins.
 */
import type { Resource } from '../../config/resource.ts';
import { ResourceTypes } from '../../config/resource.ts';
import type { MeshSnapshot } from '../snapshot/snapshot.ts';
import { hostMatches } from '../snapshot/visibility.ts';
import type { ProxyNode } from '../proxy-node.ts';
import { BlackHoleCluster, gatewayHttpRouteName, gatewayHttpsRouteName, outboundClusterName } from './names.ts';
import { downstreamTransportSocket, hcmFilter, socketAddress, tcpProxyFilter, TlsInspector } from './filters.ts';
import { tcpRouteClusters, tlsRouteChains } from './l4-routes.ts';
import type { WeightedCluster } from './l4-routes.ts';
import { metadataMap } from './identity.ts';
import { type GatewayView, type GatewayListener, type GatewayServer, type IstioGatewayView, view } from '../../config/views.ts';

type Json = Record<string, unknown>;

/** A route configuration a gateway listener refers to, and what it is built from. */
export type GatewayRouteRequest =
  | { readonly kind: 'istio-gateway'; readonly name: string; readonly servers: readonly { readonly gateway: Resource; readonly server: GatewayServer }[] }
  | { readonly kind: 'gateway-api'; readonly name: string; readonly gateway: Resource; readonly port: number; readonly listenerNames?: readonly string[] };

export interface GatewayListeners {
  readonly listeners: Json[];
  readonly routes: GatewayRouteRequest[];
}

function serverHosts(server: GatewayServer): string[] {
  return (server.hosts ?? []).map((h) => (h.includes('/') ? h.slice(h.indexOf('/') + 1) : h));
}

function sniNames(hosts: readonly string[]): string[] | undefined {
  if (hosts.length === 0 || hosts.includes('*')) return undefined;
  return [...new Set(hosts)].sort();
}

function chainMatch(sni: string[] | undefined, tls: boolean): Json {
  const m: Json = { transport_protocol: tls ? 'tls' : 'raw_buffer' };
  if (sni !== undefined) m.server_names = sni;
  return m;
}

const stat = (c: readonly WeightedCluster[], port: number) => (c.length === 1 ? c[0].name : `${port}`);

/** The gateway's listeners and route configuration requests. */
export function gatewayListeners(snapshot: MeshSnapshot, proxy: ProxyNode, clusterNames: ReadonlySet<string>): GatewayListeners {
  const inScope = (n: string) => clusterNames.has(n);
  const remap = metadataMap(proxy, 'TRELLIS_GATEWAY_PORTS');
  const byPort = new Map<number, { chains: Json[]; tls: boolean; owner: string }>();
  const routes: GatewayRouteRequest[] = [];
  const port = (p: number, owner: string) => {
    let e = byPort.get(p);
    if (e === undefined) byPort.set(p, (e = { chains: [], tls: false, owner }));
    return e.owner === owner ? e : undefined;
  };

  // Istio Gateways: servers grouped by port.
  const istio = snapshot.gateways.istioGatewaysFor(proxy.labels);
  const servers = new Map<number, { gateway: Resource; server: GatewayServer }[]>();
  for (const g of istio) {
    for (const s of view<IstioGatewayView>(g).servers ?? []) {
      const n = s.port?.number;
      if (n === undefined) continue;
      const l = servers.get(n) ?? [];
      l.push({ gateway: g, server: s });
      servers.set(n, l);
    }
  }
  for (const [n, list] of [...servers].sort((a, b) => a[0] - b[0])) {
    const e = port(n, 'istio')!;
    const plainHttp = list.filter(({ server }) => {
      const proto = (server.port?.protocol ?? '').toUpperCase();
      return proto === 'HTTP' || proto === 'HTTP2' || proto === 'GRPC' || (proto === 'HTTPS' && server.tls?.mode === undefined && server.tls?.httpsRedirect === true);
    });
    for (const { gateway, server } of list) {
      const proto = (server.port?.protocol ?? '').toUpperCase();
      const gwKey = `${gateway.metadata.namespace}/${gateway.metadata.name}`;
      const mode = server.tls?.mode ?? (proto === 'HTTPS' || proto === 'TLS' ? 'SIMPLE' : undefined);
      if ((proto === 'HTTPS' || proto === 'TLS') && mode === 'PASSTHROUGH') {
        e.tls = true;
        const hosts = serverHosts(server);
        for (const vs of snapshot.virtualServices.forGateway(gwKey)) {
          for (const c of tlsRouteChains(snapshot, vs, n, gwKey, inScope)) {
            const sni = c.sniHosts.filter((h) => hosts.some((sh) => hostMatches(sh, h)));
            if (sni.length === 0) continue;
            e.chains.push({ filter_chain_match: chainMatch(sni, true), filters: [tcpProxyFilter(stat(c.clusters, n), c.clusters)] });
          }
        }
      } else if (proto === 'HTTPS' && !plainHttp.some((p) => p.server === server)) {
        e.tls = true;
        const name = gatewayHttpsRouteName(n, server.port?.name ?? '', gateway.metadata.name, gateway.metadata.namespace);
        const chain: Json = {
          filter_chain_match: chainMatch(sniNames(serverHosts(server)), true),
          filters: [hcmFilter({ statPrefix: `outbound_0.0.0.0_${n}`, routeConfigName: name, useRemoteAddress: true, pathNormalization: snapshot.mesh.pathNormalization })],
        };
        const ts = downstreamTransportSocket({ ...server.tls, mode }, true);
        if (ts !== undefined) chain.transport_socket = ts;
        e.chains.push(chain);
        routes.push({ kind: 'istio-gateway', name, servers: [{ gateway, server }] });
      } else if (proto === 'TCP' || proto === 'TLS' || proto === 'MONGO' || proto === 'REDIS' || proto === 'MYSQL') {
        let clusters: WeightedCluster[] | undefined;
        for (const vs of snapshot.virtualServices.forGateway(gwKey)) {
          clusters = tcpRouteClusters(snapshot, vs, n, gwKey, inScope);
          if (clusters !== undefined) break;
        }
        const c = clusters ?? [{ name: BlackHoleCluster, weight: 100 }];
        const chain: Json = { filters: [tcpProxyFilter(stat(c, n), c)] };
        const ts = proto === 'TLS' ? downstreamTransportSocket({ ...server.tls, mode }, false) : undefined;
        if (ts !== undefined) {
          chain.transport_socket = ts;
          chain.filter_chain_match = chainMatch(sniNames(serverHosts(server)), true);
          e.tls = true;
        }
        e.chains.push(chain);
      }
    }
    if (plainHttp.length > 0) {
      const name = gatewayHttpRouteName(n);
      e.chains.push({
        ...(e.tls ? { filter_chain_match: { transport_protocol: 'raw_buffer' } } : {}),
        filters: [hcmFilter({ statPrefix: `outbound_0.0.0.0_${n}`, routeConfigName: name, useRemoteAddress: true, pathNormalization: snapshot.mesh.pathNormalization })],
      });
      routes.push({ kind: 'istio-gateway', name, servers: plainHttp });
    }
  }

  // Gateway API Gateways.
  for (const gw of snapshot.gateways.gatewayApiGatewaysFor(proxy.namespace, proxy.labels, proxy.metadata)) {
    const spec = view<GatewayView>(gw);
    const owner = `gateway-api:${gw.metadata.namespace}/${gw.metadata.name}`;
    const byN = new Map<number, GatewayListener[]>();
    for (const l of spec.listeners ?? []) {
      if (l.port === undefined) continue;
      const list = byN.get(l.port) ?? [];
      list.push(l);
      byN.set(l.port, list);
    }
    for (const [n, ls] of [...byN].sort((a, b) => a[0] - b[0])) {
      const e = port(n, owner);
      if (e === undefined) continue;
      let http = false;
      for (const l of ls) {
        const proto = (l.protocol ?? '').toUpperCase();
        if (proto === 'HTTP') http = true;
        else if (proto === 'HTTPS' || (proto === 'TLS' && (l.tls?.mode ?? 'Terminate') === 'Terminate')) {
          e.tls = true;
          const certs = (l.tls?.certificateRefs ?? []).filter((c) => (c.kind ?? 'Secret') === 'Secret' && c.name !== undefined);
          const name = gatewayHttpsRouteName(n, l.name ?? '', gw.metadata.name, gw.metadata.namespace);
          const chain: Json = { filter_chain_match: chainMatch(l.hostname !== undefined ? [l.hostname] : undefined, true) };
          if (proto === 'HTTPS') {
            chain.filters = [hcmFilter({ statPrefix: `outbound_0.0.0.0_${n}`, routeConfigName: name, useRemoteAddress: true, pathNormalization: snapshot.mesh.pathNormalization })];
            routes.push({ kind: 'gateway-api', name, gateway: gw, port: n, listenerNames: [l.name ?? ''] });
          } else {
            const c = l4Backends(snapshot, gw, l, ResourceTypes.TCPRoute, inScope);
            chain.filters = [tcpProxyFilter(stat(c, n), c)];
          }
          chain.transport_socket = {
            name: 'envoy.transport_sockets.tls',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
              common_tls_context: {
                ...(proto === 'HTTPS' ? { alpn_protocols: ['h2', 'http/1.1'] } : {}),
                tls_certificate_sds_secret_configs: certs.map((c) => ({
                  name: `kubernetes-gateway://${c.namespace ?? gw.metadata.namespace}/${c.name}`,
                  sds_config: { ads: {}, resource_api_version: 'V3' },
                })),
              },
            },
          };
          e.chains.push(chain);
        } else if (proto === 'TLS') {
          e.tls = true;
          for (const r of snapshot.routeParents.routesFor(ResourceTypes.TLSRoute, 'Gateway', gw.metadata.namespace, gw.metadata.name)) {
            if (r.parentRef.sectionName !== undefined && r.parentRef.sectionName !== l.name) continue;
            const hosts = (r.spec.hostnames ?? []).filter((h) => l.hostname === undefined || hostMatches(l.hostname, h) || hostMatches(h, l.hostname));
            if (hosts.length === 0) continue;
            const c = routeBackends(snapshot, r.resource, inScope);
            e.chains.push({ filter_chain_match: chainMatch([...hosts].sort(), true), filters: [tcpProxyFilter(stat(c, n), c)] });
          }
        } else if (proto === 'TCP') {
          const c = l4Backends(snapshot, gw, l, ResourceTypes.TCPRoute, inScope);
          e.chains.push({ filters: [tcpProxyFilter(stat(c, n), c)] });
        }
      }
      if (http) {
        const name = gatewayHttpRouteName(n);
        e.chains.push({
          ...(e.tls ? { filter_chain_match: { transport_protocol: 'raw_buffer' } } : {}),
          filters: [hcmFilter({ statPrefix: `outbound_0.0.0.0_${n}`, routeConfigName: name, useRemoteAddress: true, pathNormalization: snapshot.mesh.pathNormalization })],
        });
        routes.push({ kind: 'gateway-api', name, gateway: gw, port: n, listenerNames: ls.filter((l) => (l.protocol ?? '').toUpperCase() === 'HTTP').map((l) => l.name ?? '') });
      }
    }
  }

  const listeners: Json[] = [];
  for (const [n, e] of [...byPort].sort((a, b) => a[0] - b[0])) {
    if (e.chains.length === 0) continue;
    const bind = remap?.[String(n)];
    const bindPort = typeof bind === 'number' ? bind : typeof bind === 'string' && /^\d+$/.test(bind) ? Number(bind) : n;
    const l: Json = { name: `0.0.0.0_${n}`, address: socketAddress('0.0.0.0', bindPort), traffic_direction: 'OUTBOUND', filter_chains: e.chains };
    if (e.tls) l.listener_filters = [TlsInspector];
    listeners.push(l);
  }
  return { listeners, routes };
}

/** Backends of the first TCP/TLS route attached to a Gateway API listener. */
function l4Backends(snapshot: MeshSnapshot, gw: Resource, l: GatewayListener, type: string, inScope: (n: string) => boolean): WeightedCluster[] {
  for (const r of snapshot.routeParents.routesFor(type, 'Gateway', gw.metadata.namespace, gw.metadata.name)) {
    if (r.parentRef.sectionName !== undefined && r.parentRef.sectionName !== l.name) continue;
    return routeBackends(snapshot, r.resource, inScope);
  }
  return [{ name: BlackHoleCluster, weight: 100 }];
}

/** A TCP/TLS route's backendRefs (Services; cross-namespace refs are not checked against ReferenceGrants here). */
function routeBackends(snapshot: MeshSnapshot, route: Resource, inScope: (n: string) => boolean): WeightedCluster[] {
  const rules = (route.spec as { rules?: { backendRefs?: { name?: string; namespace?: string; port?: number; weight?: number; kind?: string }[] }[] }).rules ?? [];
  const out: WeightedCluster[] = [];
  for (const ref of rules[0]?.backendRefs ?? []) {
    if ((ref.kind ?? 'Service') !== 'Service' || ref.name === undefined || ref.port === undefined) continue;
    const host = `${ref.name}.${ref.namespace ?? route.metadata.namespace}.svc.${snapshot.mesh.domainSuffix}`;
    const name = outboundClusterName(ref.port, '', host);
    out.push({ name: inScope(name) ? name : BlackHoleCluster, weight: ref.weight ?? 1 });
  }
  return out.length > 0 ? out.filter((c) => c.weight > 0 || out.length === 1) : [{ name: BlackHoleCluster, weight: 100 }];
}
