/**
 * The sidecar outbound HTTP RouteConfiguration for one port (named after the port, as Istio):
 * one virtual host per visible service with an HTTP-capable port of that number, whose routes
 * come from GAMMA routes (HTTPRoute/GRPCRoute with a Service parent) if any apply, else from the
 * single VirtualService bound to `mesh` for that host, else Istio's `default` route; virtual
 * hosts for VirtualService hosts that name no service on the port (e.g. `api.example.com`); plus the
 * `allow_any` (or `block_all`) virtual host for unknown hosts. Also used for proxyless gRPC
 * (Istio's API-listener routes are the same configuration).
 */

import type { ProxyNode } from '../../proxy-node.ts';
import type { ServiceInfo } from '../../../registry/types.ts';
import type { XdsJson } from '../../../xds/types.ts';
import { isProxyless } from '../listeners-grpc.ts';
import { PassthroughCluster, outboundClusterName, sidecarOutboundRouteName } from '../names.ts';
import { type AnyRoute, allRoutes, attachParent } from './attachment.ts';
import { retryPolicy } from './envoy.ts';
import { type RankedRoute, gatewayApiRoutes, sortGatewayApiRoutes } from './gateway-api-route.ts';
import { exportedTo, hostMatches, sidecarDomains, vhostName } from './hosts.ts';
import { type IstioRouteContext, translateIstioHttp } from './istio-route.ts';
import type { RouteInputs } from './types.ts';
import { flattenVirtualService, selectVirtualServices, VirtualServiceHostIndex, vsHosts } from './virtual-service.ts';

type Json = Record<string, unknown>;

const HTTP_PROTOCOLS = new Set(['HTTP', 'HTTP2', 'GRPC', 'UNKNOWN']);

/** Services visible from `namespace` (exportTo) with an HTTP-capable port `port`, by hostname. */
export function httpServicesOnPort(inputs: RouteInputs, namespace: string, port: number): ServiceInfo[] {
  return inputs.services
    .filter((s) => exportedTo(s.exportTo, s.namespace, namespace) && s.ports.some((p) => p.port === port && HTTP_PROTOCOLS.has(p.protocol)))
    .sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));
}

/** Istio's `default` route: everything to the service's port, no timeout, default retries. */
export function defaultRoute(host: string, port: number): Json {
  return {
    name: 'default',
    match: { prefix: '/' },
    route: {
      cluster: outboundClusterName(port, '', host),
      timeout: '0s',
      retry_policy: retryPolicy(),
    },
    decorator: { operation: `${host}:${port}/*` },
  };
}

/**
 * GAMMA routes for a service port as seen from a proxy's namespace. Producer routes (in the
 * service's namespace) apply everywhere; consumer routes (elsewhere) only in their own namespace
 * and, when present, replace the producer routes (Gateway API GEP-1294).
 */
export function gammaRoutesFor(inputs: RouteInputs, svc: ServiceInfo, port: number, proxyNamespace: string, routes: readonly AnyRoute[] = allRoutes(inputs)): AnyRoute[] {
  const producer: AnyRoute[] = [];
  const consumer: AnyRoute[] = [];
  for (const r of routes) {
    const ns = r.resource.metadata.namespace;
    const applies = (r.resource.spec.parentRefs ?? []).some((p) => {
      const a = attachParent(inputs, r, p);
      return a.accepted === 'Accepted' && a.service?.hostname === svc.hostname && (p.port === undefined || p.port === port);
    });
    if (!applies) continue;
    if (ns === svc.namespace) producer.push(r);
    else if (ns === proxyNamespace) consumer.push(r);
  }
  return consumer.length ? consumer : producer;
}

function unknownHostVhost(inputs: RouteInputs): Json {
  if (inputs.outboundTrafficPolicy === 'REGISTRY_ONLY') {
    return {
      name: 'block_all',
      domains: ['*'],
      routes: [{ name: 'block_all', match: { prefix: '/' }, direct_response: { status: 502 } }],
      include_request_attempt_count: true,
    };
  }
  return {
    name: 'allow_any',
    domains: ['*'],
    routes: [
      {
        name: 'allow_any',
        match: { prefix: '/' },
        route: { cluster: PassthroughCluster, timeout: '0s' },
      },
    ],
    include_request_attempt_count: true,
  };
}

/** The routes of one service's virtual host: GAMMA routes, else its `mesh` VirtualService, else Istio's default route. */
function serviceRoutes(inputs: RouteInputs, svc: ServiceInfo, port: number, proxy: ProxyNode, ctx: IstioRouteContext, vsIndex: VirtualServiceHostIndex, routes: readonly AnyRoute[]): Json[] {
  const gamma = gammaRoutesFor(inputs, svc, port, proxy.namespace, routes);
  if (gamma.length) {
    // Clients of a mesh Service speak plain HTTP to its port (the sidecar originates any mTLS).
    const ranked: RankedRoute[] = gamma.flatMap((r) => gatewayApiRoutes(inputs, r, { port, scheme: 'http', mesh: true }));
    return sortGatewayApiRoutes(ranked);
  }
  const vs = vsIndex.forHost(svc.hostname);
  const vroutes = vs ? flattenVirtualService(vs, inputs).flatMap((f) => translateIstioHttp(f, ctx)) : [];
  // A VS none of whose matches apply to this proxy (sourceLabels, port) leaves the host with Istio's default route.
  return vroutes.length > 0 ? vroutes : [defaultRoute(svc.hostname, port)];
}

function routeContext(inputs: RouteInputs, proxy: ProxyNode, port: number): IstioRouteContext {
  return {
    gatewayNames: ['mesh'],
    port,
    proxy,
    domainSuffix: inputs.domainSuffix,
    servicesByHost: new Map(inputs.services.map((s) => [s.hostname, s])),
  };
}

/**
 * The RouteConfiguration `<hostname>:<port>` for a transparent-capture sidecar's traffic whose
 * original destination is that service's cluster IP (Gateway API "ClusterIP matching", GEP-1426):
 * one virtual host `*` with that service's routes, whatever the Host header says. Istio's
 * sidecars pick the virtual host by Host header instead; its ambient waypoints route by service.
 */
export function buildSidecarServiceRoute(inputs: RouteInputs, proxy: ProxyNode, port: number, hostname: string, name: string): XdsJson {
  const svc = httpServicesOnPort(inputs, proxy.namespace, port).find((s) => s.hostname === hostname);
  if (svc === undefined) return { name, virtual_hosts: [unknownHostVhost(inputs)], validate_clusters: false };
  const vss = selectVirtualServices(inputs, ['mesh'], proxy.namespace);
  const routes = serviceRoutes(inputs, svc, port, proxy, routeContext(inputs, proxy, port), new VirtualServiceHostIndex(vss, inputs.domainSuffix), allRoutes(inputs));
  return { name, virtual_hosts: [{ name: vhostName(svc.hostname, port), domains: ['*'], routes, include_request_attempt_count: true }], validate_clusters: false };
}

/**
 * The RouteConfiguration named `String(port)` for a sidecar's outbound HTTP traffic on `port`.
 * VirtualServices are selected by `mesh` binding and exportTo; only the oldest VS per host
 * applies (exact host beats wildcard), as Istio does for sidecars.
 */
export function buildSidecarOutboundRoute(inputs: RouteInputs, proxy: ProxyNode, port: number): XdsJson {
  const vss = selectVirtualServices(inputs, ['mesh'], proxy.namespace);
  const routes = allRoutes(inputs);
  const ctx = routeContext(inputs, proxy, port);
  const vhosts: Json[] = [];
  const vsIndex = new VirtualServiceHostIndex(vss, inputs.domainSuffix);
  // gRPC's xDS client has no ignore_port_in_host_matching: it gets `host:port` domains instead.
  const withPorts = isProxyless(proxy);
  for (const svc of httpServicesOnPort(inputs, proxy.namespace, port)) {
    vhosts.push({
      name: vhostName(svc.hostname, port),
      domains: sidecarDomains(svc, port, proxy.namespace, inputs.domainSuffix, withPorts),
      routes: serviceRoutes(inputs, svc, port, proxy, ctx, vsIndex, routes),
      include_request_attempt_count: true,
    });
  }
  // VS hosts that name no service on this port (external names routed into the mesh, wildcards)
  // still get a virtual host on every HTTP port, as Istio builds for "missing" services.
  const covered = new Set(vhosts.map((v) => (v.name as string).toLowerCase()));
  for (const vs of vss) {
    for (const host of vsHosts(vs, inputs.domainSuffix)) {
      const name = vhostName(host, port).toLowerCase();
      if (host === '*' || covered.has(name)) continue;
      if (inputs.services.some((s) => hostMatches(host, s.hostname) && s.ports.some((p) => p.port === port))) continue;
      covered.add(name);
      const vroutes = flattenVirtualService(vs, inputs).flatMap((f) => translateIstioHttp(f, ctx));
      if (vroutes.length === 0) continue;
      vhosts.push({ name: vhostName(host, port), domains: withPorts ? [host, `${host}:${port}`] : [host], routes: vroutes, include_request_attempt_count: true });
    }
  }
  vhosts.push(unknownHostVhost(inputs));
  const rc: Json = { name: sidecarOutboundRouteName(port), virtual_hosts: vhosts, validate_clusters: false };
  if (!withPorts) rc.ignore_port_in_host_matching = true;
  return rc;
}
