/**
 * Listeners for proxyless gRPC clients (`@grpc/grpc-js-xds`): gRPC's xDS resolver asks LDS for
 * exactly the authority of its target (`xds:///reviews.default.svc.cluster.local:9080` asks for
 * `reviews.default.svc.cluster.local:9080`), and expects an `api_listener` holding an
 * HttpConnectionManager with RDS. SotW cannot answer "whatever was asked", so we emit every name a
 * client may use for an in-scope HTTP-family service port: FQDN, and for Kubernetes services
 * `name.ns.svc`, `name.ns`, and (same namespace) `name`, each with `:port`, plus without the port
 * for a service with a single HTTP-family port. RDS is the sidecar's per-port route config, whose
 * virtual hosts list those same names as domains.
 */
import { isHttpProtocol } from '../../registry/protocol.ts';
import type { ProxyNode } from '../proxy-node.ts';
import { sidecarOutboundRouteName } from './names.ts';
import { hcmConfig } from './filters.ts';
import type { ProxyScope } from './scope.ts';
import type { RouteRequest } from './listeners-sidecar.ts';
import type { ProxyKind } from '../proxy-node.ts';

type Json = Record<string, unknown>;

/** True when the node is a proxyless gRPC client (metadata `TRELLIS_PROXYLESS`, or Istio's `GENERATOR: grpc`). */
export function isProxyless(proxy: { readonly metadata: Readonly<Record<string, unknown>>; readonly kind: ProxyKind }): boolean {
  const v = proxy.metadata.TRELLIS_PROXYLESS;
  return v === true || v === 'true' || v === '1' || proxy.metadata.GENERATOR === 'grpc';
}

function names(hostname: string, namespace: string, proxyNamespace: string, domainSuffix: string, kube: boolean): string[] {
  const out = [hostname];
  const suffix = `.svc.${domainSuffix}`;
  if (kube && hostname.endsWith(suffix)) {
    const short = hostname.slice(0, -suffix.length); // name.ns
    out.push(`${short}.svc`, short);
    if (namespace === proxyNamespace) out.push(short.slice(0, short.indexOf('.')));
  }
  return out;
}

/** api_listeners for every in-scope HTTP-family service port, and the route configs they use. */
export function proxylessListeners(proxy: ProxyNode, scope: ProxyScope, domainSuffix: string): { listeners: Json[]; routes: RouteRequest[] } {
  const listeners = new Map<string, Json>();
  const ports = new Set<number>();
  for (const svc of scope.services) {
    if (svc.hostname.includes('*')) continue;
    const httpPorts = svc.ports.filter((p) => isHttpProtocol(p.protocol));
    const ns = names(svc.hostname, svc.namespace, proxy.namespace, domainSuffix, svc.origin.startsWith('core/Service:'));
    for (const p of httpPorts) {
      ports.add(p.port);
      const rds = sidecarOutboundRouteName(p.port);
      const withPort = ns.map((n) => `${n}:${p.port}`);
      const all = httpPorts.length === 1 ? [...withPort, ...ns] : withPort;
      for (const name of all) {
        if (listeners.has(name)) continue;
        listeners.set(name, {
          name,
          api_listener: { api_listener: hcmConfig({ statPrefix: name, routeConfigName: rds, proxyless: true }) },
        });
      }
    }
  }
  const routes: RouteRequest[] = [...ports].sort((a, b) => a - b).map((port) => ({ kind: 'sidecar', name: sidecarOutboundRouteName(port), port }));
  return { listeners: [...listeners.values()], routes };
}

/**
 * Route configurations as gRPC accepts them: gRPC NACKs a whole RouteConfiguration holding a
 * route with an action it does not implement (direct_response, redirect), so those routes are
 * dropped (a request then matches a later route or fails UNAVAILABLE), and the sidecar catch-all
 * virtual host (`*`: allow_any / block_all) goes away (a proxyless client only dials named services).
 */
export function proxylessRouteConfig(rc: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const vhosts = ((rc.virtual_hosts as Json[] | undefined) ?? [])
    .filter((vh) => !((vh.domains as string[] | undefined) ?? []).includes('*'))
    .map((vh) => ({ ...vh, routes: ((vh.routes as Json[] | undefined) ?? []).filter((r) => r.route !== undefined).map(withStreamDuration) }));
  return { ...rc, virtual_hosts: vhosts };
}

/** gRPC's xDS client takes a route's deadline from max_stream_duration, not `timeout` (as Istio sets it). */
function withStreamDuration(r: Json): Json {
  const action = r.route as Json;
  const timeout = action.timeout as string | undefined;
  if (timeout === undefined || timeout === '0s') return r;
  const msd = (action.max_stream_duration as Json | undefined) ?? {};
  return { ...r, route: { ...action, max_stream_duration: { ...msd, max_stream_duration: timeout } } };
}

/**
 * A cluster as gRPC accepts it: grpc-js implements ROUND_ROBIN and RING_HASH only and NACKs other
 * `lb_policy` values, so LEAST_REQUEST (Istio's default), RANDOM and MAGLEV become ROUND_ROBIN.
 */
export function proxylessCluster(c: Readonly<Record<string, unknown>>): Record<string, unknown> {
  // Auto-mTLS names the local identity agent's SDS server, which a proxyless client has not got
  // (Istio gives those clients certificates through xDS certificate providers instead): plaintext.
  const { transport_socket_matches: _t, ...plain } = c;
  if (plain.lb_policy === 'ROUND_ROBIN' || plain.lb_policy === 'RING_HASH' || plain.lb_policy === undefined) return plain;
  const { maglev_lb_config: _m, ...rest } = plain;
  return { ...rest, lb_policy: 'ROUND_ROBIN' };
}
