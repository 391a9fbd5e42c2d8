/**
 * Sidecar listeners, in both capture modes (DESIGN.md "Two ways to capture traffic").
 *
 * Explicit capture (default; no privileges): the workload dials its sidecar on loopback.
 *   - One outbound listener per distinct service port P in scope, named `<addr>_<P>`, bound on
 *     `<addr>:<local port>`; addr = node metadata `TRELLIS_OUTBOUND_ADDRESS` (default 127.0.0.1),
 *     local port = `TRELLIS_OUTBOUND_PORTS[P]` (JSON {"9080": 19080}) or P itself when there is no
 *     map (with a map, an unmapped port has no listener, only HTTP proxy routes). HTTP-family
 *     ports carry an HCM with RDS route config `"<P>"` (Istio's name; virtual hosts by Host
 *     header); ports whose services are all of unknown protocol are sniffed as Istio does
 *     (http_inspector: HTTP chain on application_protocols http/1.0, http/1.1, h2c, else TCP to the
 *     first service; inbound likewise). Other ports: TLS/HTTPS services by SNI (tls_inspector + server_names, VirtualService
 *     `tls` routes first), then the first plain TCP service on P (registry order; VirtualService
 *     `tcp` routes apply); a port shared by HTTP and TCP services is HTTP (as Istio's conflict rule).
 *     Unmatched TLS goes to BlackHoleCluster (no original destination to pass through to).
 *   - An HTTP proxy listener `127.0.0.1_<port>` when `TRELLIS_HTTP_PROXY_PORT` is set, with RDS
 *     `http_proxy` (every in-scope HTTP service, domains qualified with `:port`), for `HTTP_PROXY=`;
 *     under ALLOW_ANY its unknown hosts go to the request's authority (dynamic forward proxy).
 *   - Inbound: one listener `inbound_<addr>_<port>` per inbound port (services selecting the
 *     workload, or the Sidecar's `ingress`), bound on `TRELLIS_INBOUND_ADDRESS` (default 0.0.0.0)
 *     and `TRELLIS_INBOUND_PORTS[port]` or the port; it forwards to `inbound|<port>||`, i.e. the
 *     application on 127.0.0.1:`TRELLIS_APP_PORTS[port]` (or the port).
 * Transparent capture (iptables, Istio's layout): `virtualOutbound` on 15001 with
 * use_original_dst, the same per-port outbound listeners as `0.0.0.0_<P>` with bind_to_port false
 * (TCP services told apart by VIP prefix_ranges, default chain Passthrough/BlackHole per
 * outboundTrafficPolicy; HTTP ports get one chain per service VIP with that service's own route
 * configuration `<host>:<P>` before the Host-based chain: see clusterIpChains), and `virtualInbound` on 15006 (original_dst listener filter) with one
 * chain per inbound port (destination_port match) plus a passthrough chain.
 */
import type { PortProtocol, ServiceInfo } from '../../registry/types.ts';
import { isHttpProtocol } from '../../registry/protocol.ts';
import type { MeshSnapshot } from '../snapshot/snapshot.ts';
import { MeshGateway } from '../snapshot/virtual-services.ts';
import type { ProxyNode } from '../proxy-node.ts';
import { BlackHoleCluster, DynamicForwardProxyCluster, httpProxyConnectClusterName, inboundClusterName, outboundClusterName, PassthroughCluster, sidecarOutboundRouteName, sidecarServiceRouteName } from './names.ts';
import { hcmConfig, hcmFilter, HttpInspector, inboundMtlsTransportSocket, IstioMtlsAlpn, MetadataExchangeFilter, sniffedChains, socketAddress, tcpProxyFilter, TlsInspector } from './filters.ts';
import type { MtlsMode } from '../snapshot/peer-authentications.ts';
import { tcpRouteClusters, tlsRouteChains } from './l4-routes.ts';
import type { WeightedCluster } from './l4-routes.ts';
import type { InboundPort } from './clusters.ts';
import { metadataMap, metadataPort } from './identity.ts';
import type { ProxyScope } from './scope.ts';
import type { PathNormalizationMode } from '../../config/mesh-config.ts';

type Json = Record<string, unknown>;

const OriginalDstFilter = Object.freeze({
  name: 'envoy.filters.listener.original_dst',
  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst' },
});

/** RDS name of the explicit-mode HTTP proxy listener (Istio's `http_proxy`). */
export const HttpProxyRouteName = 'http_proxy';

/** What listeners ask of route translation. */
export type RouteRequest =
  | { readonly kind: 'sidecar'; readonly name: string; readonly port: number }
  | { readonly kind: 'sidecar-service'; readonly name: string; readonly port: number; readonly hostname: string }
  | { readonly kind: 'http_proxy'; readonly name: string; readonly ports: readonly number[]; readonly unknownHostsTo?: string };

export interface SidecarListeners {
  readonly listeners: Json[];
  readonly routes: RouteRequest[];
  /** Clusters only these listeners use (the HTTP proxy's CONNECT hairpins). */
  readonly clusters: Json[];
}

function mapped(map: Record<string, unknown> | undefined, port: number): number {
  const v = map?.[String(port)];
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
  return Number.isInteger(n) && n > 0 && n <= 65535 ? n : port;
}

/** A STATIC cluster with one endpoint. */
function staticCluster(name: string, address: string, port: number): Json {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(address, port) } }] }] },
  };
}

function metaString(proxy: ProxyNode, key: string, fallback: string): string {
  const v = proxy.metadata[key];
  return typeof v === 'string' && v !== '' ? v : fallback;
}

/** Services in scope grouped by port number (ascending), UDP and portless skipped. */
function servicesByPort(scope: ProxyScope): Map<number, { svc: ServiceInfo; protocol: PortProtocol }[]> {
  const out = new Map<number, { svc: ServiceInfo; protocol: PortProtocol }[]>();
  for (const svc of scope.services) {
    for (const p of svc.ports) {
      if (p.protocol === 'UDP' || p.port <= 0) continue;
      const l = out.get(p.port) ?? [];
      l.push({ svc, protocol: p.protocol });
      out.set(p.port, l);
    }
  }
  return new Map([...out].sort((a, b) => a[0] - b[0]));
}

/** Filter chains for a non-HTTP outbound port. */
function tcpChains(snapshot: MeshSnapshot, proxy: ProxyNode, scope: ProxyScope, port: number, svcs: { svc: ServiceInfo; protocol: PortProtocol }[], clusterNames: ReadonlySet<string>, transparent: boolean): { chains: Json[]; tls: boolean } {
  const inScope = (n: string) => clusterNames.has(n);
  const chains: Json[] = [];
  const stat = (c: readonly WeightedCluster[]) => (c.length === 1 ? c[0].name : `${port}`);
  const covered = new Set<string>();
  let tls = false;
  const vss = snapshot.virtualServices.forGateway(MeshGateway, proxy.namespace);
  for (const { svc, protocol } of svcs) {
    if (protocol !== 'TLS' && protocol !== 'HTTPS') continue;
    tls = true;
    for (const vs of vss) {
      if (!vs.hosts.includes(svc.hostname)) continue;
      for (const c of tlsRouteChains(snapshot, vs, port, MeshGateway, inScope)) {
        const sni = c.sniHosts.filter((h) => !covered.has(h));
        if (sni.length === 0) continue;
        sni.forEach((h) => covered.add(h));
        chains.push({ filter_chain_match: { server_names: sni, transport_protocol: 'tls' }, filters: [tcpProxyFilter(stat(c.clusters), c.clusters)] });
      }
    }
    if (!covered.has(svc.hostname)) {
      covered.add(svc.hostname);
      const c = [{ name: outboundClusterName(port, '', svc.hostname), weight: 100 }];
      chains.push({ filter_chain_match: { server_names: [svc.hostname], transport_protocol: 'tls' }, filters: [tcpProxyFilter(c[0].name, c)] });
    }
  }
  const plain = svcs.filter((s) => s.protocol !== 'TLS' && s.protocol !== 'HTTPS');
  const tcpFor = (svc: ServiceInfo): WeightedCluster[] => {
    for (const vs of vss) {
      if (!vs.hosts.includes(svc.hostname)) continue;
      const c = tcpRouteClusters(snapshot, vs, port, MeshGateway, inScope);
      if (c !== undefined) return c;
    }
    return [{ name: outboundClusterName(port, '', svc.hostname), weight: 100 }];
  };
  if (transparent) {
    for (const { svc } of plain) {
      if (svc.addresses.length === 0) continue;
      const c = tcpFor(svc);
      chains.push({
        filter_chain_match: { prefix_ranges: svc.addresses.map((a) => ({ address_prefix: a, prefix_len: a.includes(':') ? 128 : 32 })) },
        filters: [tcpProxyFilter(stat(c), c)],
      });
    }
    const fallback = plain.find((s) => s.svc.addresses.length === 0);
    const c = fallback !== undefined ? tcpFor(fallback.svc) : [{ name: scope.outboundTrafficPolicy === 'REGISTRY_ONLY' ? BlackHoleCluster : PassthroughCluster, weight: 100 }];
    chains.push({ filters: [tcpProxyFilter(stat(c), c)] });
  } else {
    const first = plain[0];
    const c = first !== undefined ? tcpFor(first.svc) : [{ name: BlackHoleCluster, weight: 100 }];
    chains.push({ filters: [tcpProxyFilter(stat(c), c)] });
  }
  return { chains, tls };
}

/**
 * Transparent capture, HTTP port: one filter chain per service cluster IP (prefix_ranges on the
 * original destination) whose HCM uses that service's own route configuration, so a request to
 * a Service's VIP gets that Service's routes whatever its Host header says (Gateway API mesh
 * "ClusterIP matching"). Other destinations (pod IPs, unknown addresses, headless services) fall
 * through to the port's Host-based chain. A VIP claimed twice keeps its first service.
 */
function clusterIpChains(snapshot: MeshSnapshot, proxy: ProxyNode, scope: ProxyScope, port: number, svcs: readonly { svc: ServiceInfo; protocol: PortProtocol }[], clusterNames: ReadonlySet<string>, sniff: boolean, routes: RouteRequest[]): Json[] {
  const chains: Json[] = [];
  const claimed = new Set<string>();
  for (const { svc } of svcs) {
    const vips = svc.addresses.filter((a) => a !== '0.0.0.0' && a !== '::' && !claimed.has(a));
    if (vips.length === 0) continue;
    vips.forEach((a) => claimed.add(a));
    const name = sidecarServiceRouteName(port, svc.hostname);
    const match = { prefix_ranges: vips.map((a) => ({ address_prefix: a, prefix_len: a.includes(':') ? 128 : 32 })) };
    const hcm = hcmFilter({ statPrefix: `outbound_${port}_${svc.hostname}`, routeConfigName: name, pathNormalization: snapshot.mesh.pathNormalization });
    routes.push({ kind: 'sidecar-service', name, port, hostname: svc.hostname });
    if (!sniff) {
      chains.push({ name: `${svc.hostname}:${port}`, filter_chain_match: match, filters: [hcm] });
      continue;
    }
    const { chains: tcp } = tcpChains(snapshot, proxy, scope, port, [{ svc, protocol: 'UNKNOWN' }], clusterNames, false);
    chains.push(...sniffedChains(match, hcm, (tcp[tcp.length - 1].filters as Json[])[0]));
  }
  return chains;
}

/**
 * ALLOW_ANY through an explicit-capture sidecar's HTTP proxy: unknown hosts go to the request's
 * authority by Envoy's dynamic forward proxy (no original destination to pass through to).
 */
export function usesForwardProxy(proxy: ProxyNode, scope: ProxyScope): boolean {
  return proxy.kind === 'sidecar' && proxy.captureMode !== 'transparent' && scope.outboundTrafficPolicy === 'ALLOW_ANY' && metadataPort(proxy, 'TRELLIS_HTTP_PROXY_PORT') !== undefined;
}

/** The sidecar's listeners and the route configurations they need. */
export function sidecarListeners(snapshot: MeshSnapshot, proxy: ProxyNode, scope: ProxyScope, inbound: readonly InboundPort[], clusterNames: ReadonlySet<string>): SidecarListeners {
  const transparent = proxy.captureMode === 'transparent';
  const listeners: Json[] = [];
  const routes: RouteRequest[] = [];
  const outAddr = transparent ? '0.0.0.0' : metaString(proxy, 'TRELLIS_OUTBOUND_ADDRESS', '127.0.0.1');
  const outPorts = metadataMap(proxy, 'TRELLIS_OUTBOUND_PORTS');
  const httpPorts: number[] = [];
  for (const [port, svcs] of servicesByPort(scope)) {
    const name = `${outAddr}_${port}`;
    // Explicit capture with a port map (`trellis up`): a port the map lacks (a ServiceEntry added
    // after the sidecar started) gets no listener of its own, since binding the real port would
    // collide between sidecars; its HTTP services stay reachable through the HTTP proxy listener.
    if (!transparent && outPorts !== undefined && mapped(outPorts, port) === port && outPorts[String(port)] === undefined) {
      if (svcs.some((s) => isHttpProtocol(s.protocol) || s.protocol === 'UNKNOWN')) httpPorts.push(port);
      continue;
    }
    const l: Json = {
      name,
      address: socketAddress(outAddr, transparent ? port : mapped(outPorts, port)),
      traffic_direction: 'OUTBOUND',
    };
    if (transparent) l.bind_to_port = false;
    const httpish = svcs.filter((s) => isHttpProtocol(s.protocol) || s.protocol === 'UNKNOWN');
    if (httpish.length > 0) {
      const rds = sidecarOutboundRouteName(port);
      const hcm = hcmFilter({ statPrefix: `outbound_${outAddr}_${port}`, routeConfigName: rds, pathNormalization: snapshot.mesh.pathNormalization });
      const sniff = !svcs.some((s) => isHttpProtocol(s.protocol));
      const vipChains = transparent ? clusterIpChains(snapshot, proxy, scope, port, httpish, clusterNames, sniff, routes) : [];
      if (!sniff) {
        l.filter_chains = [...vipChains, { filters: [hcm] }];
      } else {
        // Only unknown-protocol services: sniff like Istio (HTTP by inspector, else TCP to the first service).
        const unknown = svcs.filter((s) => s.protocol === 'UNKNOWN');
        const { chains } = tcpChains(snapshot, proxy, scope, port, unknown.slice(0, 1), clusterNames, false);
        l.filter_chains = [...vipChains, ...sniffedChains({}, hcm, (chains[chains.length - 1].filters as Json[])[0])];
        l.listener_filters = [HttpInspector];
      }
      routes.push({ kind: 'sidecar', name: rds, port });
      httpPorts.push(port);
    } else {
      const { chains, tls } = tcpChains(snapshot, proxy, scope, port, svcs, clusterNames, transparent);
      l.filter_chains = chains;
      if (tls) l.listener_filters = [TlsInspector];
    }
    listeners.push(l);
  }
  const httpProxyPort = transparent ? undefined : metadataPort(proxy, 'TRELLIS_HTTP_PROXY_PORT');
  const forwardProxy = usesForwardProxy(proxy, scope);
  const clusters: Json[] = [];
  if (httpProxyPort !== undefined) {
    listeners.push({
      name: `127.0.0.1_${httpProxyPort}`,
      address: socketAddress('127.0.0.1', httpProxyPort),
      traffic_direction: 'OUTBOUND',
      filter_chains: [{ filters: [hcmFilter({ statPrefix: HttpProxyRouteName, routeConfigName: HttpProxyRouteName, pathNormalization: snapshot.mesh.pathNormalization, dynamicForwardProxy: forwardProxy, allowConnect: true })] }],
    });
    routes.push({ kind: 'http_proxy', name: HttpProxyRouteName, ports: httpPorts, ...(forwardProxy ? { unknownHostsTo: DynamicForwardProxyCluster } : {}) });
    // CONNECT host:port (how Node's fetch and other tunnelling clients use a proxy, even for
    // http:// URLs) is terminated and the tunnelled bytes go to this sidecar's own outbound
    // listener for that port, where every request is routed as usual (route-bridge.ts).
    const loopback = outAddr === '0.0.0.0' ? '127.0.0.1' : outAddr;
    for (const port of httpPorts) clusters.push(staticCluster(httpProxyConnectClusterName(port), loopback, mapped(outPorts, port)));
  }
  const passthrough = scope.outboundTrafficPolicy === 'REGISTRY_ONLY' ? BlackHoleCluster : PassthroughCluster;
  const trustDomain = snapshot.mesh.trustDomain;
  // Without a mesh CA (no trust bundle) nobody has a certificate: every port is plaintext.
  const mtlsMode = (p: InboundPort): MtlsMode => (snapshot.trustBundle.length === 0 ? 'DISABLE' : snapshot.peerAuthentications.modeFor(proxy.namespace, proxy.labels, p.port).mode);
  if (transparent) {
    listeners.push({
      name: 'virtualOutbound',
      address: socketAddress('0.0.0.0', 15001),
      use_original_dst: true,
      traffic_direction: 'OUTBOUND',
      filter_chains: [{ name: 'virtualOutbound-catchall-tcp', filters: [tcpProxyFilter(passthrough, [{ name: passthrough, weight: 100 }])] }],
    });
    const chains: Json[] = inbound.flatMap((p): Json[] => inboundChains(p, mtlsMode(p), trustDomain, { destination_port: p.port }, snapshot.mesh.pathNormalization, proxy.metadataExchange).map((c) => ({ name: inboundChainName(p, c), ...c })));
    chains.push({ name: 'virtualInbound-catchall-tcp', filters: [tcpProxyFilter('InboundPassthroughCluster', [{ name: PassthroughCluster, weight: 100 }])] });
    // Istio's virtualInbound: the original_dst listener filter restores the pre-REDIRECT
    // destination so chains match `destination_port`; no use_original_dst (no hand-off).
    const tls = inbound.some((p) => mtlsMode(p) !== 'DISABLE');
    listeners.push({
      name: 'virtualInbound', address: socketAddress('0.0.0.0', 15006), traffic_direction: 'INBOUND', filter_chains: chains,
      listener_filters: [OriginalDstFilter, ...(tls ? [TlsInspector] : []), ...(inbound.some((p) => p.protocol === 'UNKNOWN') ? [HttpInspector] : [])],
    });
  } else {
    const inAddr = metaString(proxy, 'TRELLIS_INBOUND_ADDRESS', '0.0.0.0');
    const inPorts = metadataMap(proxy, 'TRELLIS_INBOUND_PORTS');
    for (const p of inbound) {
      const mode = mtlsMode(p);
      const filters = [...(mode !== 'DISABLE' ? [TlsInspector] : []), ...(p.protocol === 'UNKNOWN' ? [HttpInspector] : [])];
      listeners.push({
        name: `inbound_${inAddr}_${p.port}`,
        address: socketAddress(inAddr, mapped(inPorts, p.port)),
        traffic_direction: 'INBOUND',
        filter_chains: inboundChains(p, mode, trustDomain, {}, snapshot.mesh.pathNormalization, proxy.metadataExchange),
        ...(filters.length > 0 ? { listener_filters: filters } : {}),
      });
    }
  }
  return { listeners, routes, clusters };
}

/**
 * The filter chains of one inbound port under its PeerAuthentication mode, as Istio builds them:
 * DISABLE plaintext only; STRICT a TLS chain requiring a client certificate of the mesh (plaintext
 * matches no chain and is closed); PERMISSIVE the mTLS chain for TLS that offers Istio's ALPN (what
 * mesh clients send), a TLS passthrough chain to the application for other TLS (so an
 * application's own TLS keeps working), and the plaintext chains, all told apart by the TLS
 * inspector. Unknown-protocol ports are sniffed in plaintext; under mTLS they are proxied as TCP
 * (Istio tells HTTP inside mTLS by its istio-http ALPN, which only Istio's own clients send).
 */
function inboundChains(p: InboundPort, mode: MtlsMode, trustDomain: string, base: Json, paths: PathNormalizationMode, metadataExchange: boolean): Json[] {
  const plain: Json[] = p.protocol === 'UNKNOWN'
    ? sniffedChains(base, inboundFilter({ ...p, protocol: 'HTTP' }, paths), inboundFilter(p, paths))
    : [{ ...(Object.keys(base).length > 0 ? { filter_chain_match: base } : {}), filters: [inboundFilter(p, paths)] }];
  if (mode === 'DISABLE') return plain;
  const http = isHttpProtocol(p.protocol);
  const mtls: Json = {
    filter_chain_match: { ...base, transport_protocol: 'tls' },
    transport_socket: inboundMtlsTransportSocket(trustDomain, http, metadataExchange),
    // Istio's server side of the TCP metadata exchange (HTTP peers exchange it in headers).
    filters: [...(metadataExchange && !http ? [MetadataExchangeFilter] : []), inboundFilter(p, paths)],
  };
  if (mode === 'STRICT') return [mtls];
  const cluster = inboundClusterName(p.port);
  return [
    { ...mtls, filter_chain_match: { ...base, transport_protocol: 'tls', application_protocols: [...IstioMtlsAlpn] } },
    { filter_chain_match: { ...base, transport_protocol: 'tls' }, filters: [tcpProxyFilter(cluster, [{ name: cluster, weight: 100 }])] },
    ...plain.map((c) => ({ ...c, filter_chain_match: { ...((c.filter_chain_match as Json | undefined) ?? {}), transport_protocol: 'raw_buffer' } })),
  ];
}

/** Chain names in virtualInbound (Istio's style: the inbound cluster, with the transport for mTLS chains). */
function inboundChainName(p: InboundPort, chain: Json): string {
  const m = (chain.filter_chain_match ?? {}) as Json;
  const suffix = chain.transport_socket !== undefined ? '-mtls' : m.transport_protocol === 'tls' ? '-tls' : Array.isArray(m.application_protocols) ? '-http' : p.protocol === 'UNKNOWN' ? '-tcp' : '';
  return `${inboundClusterName(p.port)}${suffix}`;
}

/** The inbound network filter: HCM with an inline route to the inbound cluster, or a TCP proxy. */
function inboundFilter(p: InboundPort, pathNormalization: PathNormalizationMode): Json {
  const cluster = inboundClusterName(p.port);
  if (!isHttpProtocol(p.protocol)) return tcpProxyFilter(cluster, [{ name: cluster, weight: 100 }]);
  const c = hcmConfig({ statPrefix: `inbound_${p.port}`, routeConfigName: cluster, reporter: 'DESTINATION', pathNormalization });
  delete c.rds;
  // Inbound routing is fixed (everything to the local app): inline, as Istio does, no RDS round trip.
  c.route_config = {
    name: cluster,
    virtual_hosts: [{ name: `inbound|http|${p.port}`, domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster, timeout: '0s' } }] }],
    validate_clusters: false,
  };
  c.use_remote_address = false;
  return { name: 'envoy.filters.network.http_connection_manager', typed_config: c };
}
