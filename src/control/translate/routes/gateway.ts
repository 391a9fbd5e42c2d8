/**
 * Gateway RouteConfigurations: for Istio Gateway servers (VirtualServices bound to the gateway,
 * virtual hosts from the intersection of VS hosts with server hosts honouring the `ns/host`
 * namespace filter, several VSs on one host combined with catch-alls last, `httpsRedirect` as
 * `require_tls`), and for Gateway API listeners (attached HTTPRoutes/GRPCRoutes per intersected
 * hostname, sorted by the spec's precedence). A configuration with no virtual host gets Istio's
 * `blackhole` 404 virtual host so Envoy never sees an empty route table.
 */

import type { ProxyNode } from '../../proxy-node.ts';
import type { XdsJson } from '../../../xds/types.ts';
import { allRoutes, attachParent } from './attachment.ts';
import { type RankedRoute, type ServingListener, gatewayApiRoutes, sortGatewayApiRoutes } from './gateway-api-route.ts';
import { gatewayDomains, hostMatches, intersectHosts, vhostName } from './hosts.ts';
import { type IstioRouteContext, translateIstioHttp } from './istio-route.ts';
import type { GatewayResource, IstioGatewayResource, RouteInputs } from './types.ts';
import { combineVHostRoutes, flattenVirtualService, selectVirtualServices, vsHosts } from './virtual-service.ts';
import type { GatewayServer } from '../../../config/views.ts';

type Json = Record<string, unknown>;

/** One Istio Gateway server served by a route configuration. */
export interface IstioServerRef {
  readonly gateway: IstioGatewayResource;
  readonly server: GatewayServer;
}

function blackhole(port: number): Json {
  return {
    name: `blackhole:${port}`,
    domains: ['*'],
    routes: [{ name: 'default', match: { prefix: '/' }, direct_response: { status: 404 } }],
    include_request_attempt_count: true,
  };
}

function routeConfig(name: string, vhosts: Map<string, Json>, port: number): XdsJson {
  const list = [...vhosts.values()].sort((a, b) => ((a.name as string) < (b.name as string) ? -1 : 1));
  return { name, virtual_hosts: list.length ? list : [blackhole(port)], validate_clusters: false };
}

/** Splits a server host `ns/host` into its namespace filter (`*` any, `.` the gateway's) and host. */
function serverHost(h: string, gatewayNs: string): { ns: string; host: string } {
  const i = h.indexOf('/');
  if (i < 0) return { ns: '*', host: h };
  const ns = h.slice(0, i);
  return { ns: ns === '.' ? gatewayNs : ns, host: h.slice(i + 1) };
}

/**
 * The RouteConfiguration `routeName` for Istio Gateway `servers` sharing one port (`http.<port>`,
 * or `https.<port>.<portName>.<gateway>.<ns>` for a terminated HTTPS server).
 */
export function buildIstioGatewayRoute(inputs: RouteInputs, proxy: ProxyNode, routeName: string, servers: readonly IstioServerRef[]): XdsJson {
  const port = servers[0]?.server.port?.number ?? 80;
  const servicesByHost = new Map(inputs.services.map((s) => [s.hostname, s]));
  // host -> routes per VS (in VS age order) and whether any server asks for an HTTPS redirect.
  const perHost = new Map<string, { lists: Json[][]; seen: Set<string>; requireTls: boolean }>();
  for (const { gateway, server } of servers) {
    const gwName = `${gateway.metadata.namespace}/${gateway.metadata.name}`;
    const ctx: IstioRouteContext = { gatewayNames: [gwName], port, proxy, domainSuffix: inputs.domainSuffix, servicesByHost };
    const vss = selectVirtualServices(inputs, [gwName], gateway.metadata.namespace);
    for (const vs of vss) {
      let flat: ReturnType<typeof flattenVirtualService> | undefined;
      for (const vh of vsHosts(vs, inputs.domainSuffix)) {
        for (const sh of server.hosts ?? []) {
          const { ns, host } = serverHost(sh, gateway.metadata.namespace);
          if (ns !== '*' && ns !== vs.metadata.namespace) continue;
          const h = intersectHosts(vh, host);
          if (h === undefined) continue;
          let entry = perHost.get(h);
          if (!entry) perHost.set(h, (entry = { lists: [], seen: new Set(), requireTls: false }));
          if (server.tls?.httpsRedirect) entry.requireTls = true;
          const vsKey = `${vs.metadata.namespace}/${vs.metadata.name}@${gwName}`;
          if (entry.seen.has(vsKey)) continue;
          entry.seen.add(vsKey);
          flat ??= flattenVirtualService(vs, inputs);
          entry.lists.push(flat.flatMap((f) => translateIstioHttp(f, ctx)));
        }
      }
    }
    // An HTTPS-redirect server with no VS still answers (with the redirect) for its hosts.
    if (server.tls?.httpsRedirect) {
      for (const sh of server.hosts ?? []) {
        const { host } = serverHost(sh, gateway.metadata.namespace);
        if (!perHost.has(host)) perHost.set(host, { lists: [], seen: new Set(), requireTls: true });
      }
    }
  }
  const vhosts = new Map<string, Json>();
  for (const [host, entry] of perHost) {
    const routes = combineVHostRoutes(...entry.lists);
    if (routes.length === 0 && !entry.requireTls) continue;
    const vh: Json = { name: vhostName(host, port), domains: gatewayDomains(host), routes, include_request_attempt_count: true };
    if (entry.requireTls) vh.require_tls = 'ALL';
    vhosts.set(host, vh);
  }
  return routeConfig(routeName, vhosts, port);
}

/**
 * The RouteConfiguration `routeName` for Gateway API `gateway`'s HTTP/HTTPS listeners on `port`
 * (optionally only the listeners named in `listenerNames`, e.g. one HTTPS listener).
 */
export function buildGatewayApiRoute(
  inputs: RouteInputs,
  routeName: string,
  gateway: GatewayResource,
  port: number,
  listenerNames?: readonly string[],
): XdsJson {
  const gwKey = `${gateway.metadata.namespace}/${gateway.metadata.name}`;
  const served = (gateway.spec.listeners ?? []).filter((l) => l.port === port && (l.protocol === 'HTTP' || l.protocol === 'HTTPS') && (!listenerNames || listenerNames.includes(l.name)));
  const listeners = new Set(served.map((l) => l.name));
  // One port speaks one protocol (listeners that disagree conflict): its scheme is the first's.
  const serving: ServingListener = { port, scheme: served[0]?.protocol === 'HTTPS' ? 'https' : 'http', mesh: false };
  const perHost = new Map<string, { ranked: RankedRoute[]; routes: Set<string> }>();
  for (const r of allRoutes(inputs)) {
    const rKey = `${r.kind}:${r.resource.metadata.namespace}/${r.resource.metadata.name}`;
    let ranked: RankedRoute[] | undefined;
    for (const p of r.resource.spec.parentRefs ?? []) {
      const a = attachParent(inputs, r, p);
      if (a.accepted !== 'Accepted' || a.parentKind !== 'Gateway' || a.parentKey !== gwKey) continue;
      for (const { listener, hostnames } of a.listeners) {
        if (!listeners.has(listener.name)) continue;
        for (const h of hostnames) {
          let entry = perHost.get(h);
          if (!entry) perHost.set(h, (entry = { ranked: [], routes: new Set() }));
          if (entry.routes.has(rKey)) continue;
          entry.routes.add(rKey);
          ranked ??= gatewayApiRoutes(inputs, r, serving);
          entry.ranked.push(...ranked);
        }
      }
    }
  }
  const vhosts = new Map<string, Json>();
  for (const [host, entry] of perHost) {
    vhosts.set(host, { name: vhostName(host, port), domains: gatewayDomains(host), routes: sortGatewayApiRoutes(entry.ranked), include_request_attempt_count: true });
  }
  addMisdirectedHosts(vhosts, gateway, port, listeners);
  return routeConfig(routeName, vhosts, port);
}

function misdirected(domain: string, port: number): Json {
  return {
    name: `misdirected_${domain}:${port}`,
    domains: gatewayDomains(domain),
    routes: [{ name: 'misdirected', match: { prefix: '/' }, direct_response: { status: 421, body: { inline_string: 'Misdirected Request' } } }],
  };
}

/**
 * HTTPS listeners sharing a port are told apart by SNI, and a connection's requests must stay
 * within the listener its SNI chose: a Host that another listener on the port owns (matches more
 * specifically) gets 421 Misdirected Request (RFC 9110 section 15.5.20; Gateway API
 * GatewayHTTPSListenerDetectMisdirectedRequests), as does, on a listener with a hostname, any
 * Host outside it. Domains the listener's own routes use are never overridden.
 */
function addMisdirectedHosts(vhosts: Map<string, Json>, gateway: GatewayResource, port: number, own: ReadonlySet<string>): void {
  const https = (gateway.spec.listeners ?? []).filter((l) => l.port === port && l.protocol === 'HTTPS');
  const mine = https.filter((l) => own.has(l.name));
  const others = https.filter((l) => !own.has(l.name));
  if (mine.length === 0 || others.length === 0 || mine.length !== own.size) return;
  const used = new Set<string>();
  for (const v of vhosts.values()) for (const d of (v.domains as string[]) ?? []) used.add(d);
  const add = (domain: string) => {
    if (used.has(domain)) return;
    vhosts.set(`~misdirected:${domain}`, misdirected(domain, port));
    for (const d of gatewayDomains(domain)) used.add(d);
  };
  const myHosts = mine.map((l) => l.hostname);
  const catchAll = myHosts.some((h) => h === undefined || h === '*');
  for (const o of others) {
    const h = o.hostname;
    if (h === undefined || h === '*') continue;
    // Another listener owns `h` unless one of ours names it too. Outside our hostnames the `*`
    // entry below answers; inside one of our wildcards (more specific) it needs its own entry.
    if (myHosts.includes(h)) continue;
    if (catchAll || myHosts.some((m) => m !== undefined && hostMatches(m, h))) add(h);
  }
  if (!catchAll) add('*');
}
