/**
 * Hand-built xDS resource sets for the server's tests (a stock Envoy, proxyless gRPC, our own
 * ADS test client), until translation generates real ones. Small on purpose: one listener, one
 * route, one cluster, one endpoint.
 */
import { TypeUrl, type XdsJson, type XdsResourceSet, type XdsTypeUrl } from '../../../xds/types.ts';
import { HcmType } from '../../../xds/references.ts';
import type { ProxyNode } from '../../proxy-node.ts';
import { SnapshotCache, type CacheChange } from '../cache.ts';

/**
 * A cache for server tests whose resources come from `generate`, asked afresh (per proxy) after
 * every `push`: each push is a new snapshot, as a config change is for the control plane.
 */
export function generatorCache(generate: (proxy: ProxyNode) => XdsResourceSet): { cache: SnapshotCache<object>; push(change?: Partial<CacheChange>): void } {
  const cache = new SnapshotCache<object>({ translate: (_snapshot, proxy) => generate(proxy) });
  cache.setSnapshot({});
  return { cache, push: (change = {}) => cache.setSnapshot({}, { reason: 'test push', ...change }) };
}

/** Builds an XdsResourceSet from lists of resources (keyed by `name` / `cluster_name`). */
export function resourceSet(parts: Partial<Record<XdsTypeUrl, XdsJson[]>>): XdsResourceSet {
  const out = new Map<XdsTypeUrl, Map<string, XdsJson>>();
  for (const [typeUrl, list] of Object.entries(parts) as [XdsTypeUrl, XdsJson[]][]) {
    const m = new Map<string, XdsJson>();
    for (const r of list) m.set(String(r.name ?? r.cluster_name), Object.freeze(r));
    out.set(typeUrl, m);
  }
  return out;
}

const HCM = HcmType;
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const ads = { ads: {}, resource_api_version: 'V3' };

/** EDS cluster + its endpoints at 127.0.0.1:port. */
export function edsCluster(name: string, port: number, http2 = false): XdsJson[] {
  const cluster: Record<string, unknown> = {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: ads },
    connect_timeout: '1s',
  };
  if (http2) {
    cluster.typed_extension_protocol_options = {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    };
  }
  return [cluster];
}

export function endpoints(cluster: string, port: number): XdsJson {
  return {
    cluster_name: cluster,
    // gRPC NACKs a LocalityLbEndpoints without a locality ("endpoints[0].locality unset") and
    // ignores localities without a load_balancing_weight ("priority policy has empty priority list").
    endpoints: [{ locality: { region: 'local' }, load_balancing_weight: 1, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }],
  };
}

export function routeConfig(name: string, cluster: string, domains: string[] = ['*']): XdsJson {
  return {
    name,
    virtual_hosts: [{ name: `${name}-vh`, domains, routes: [{ match: { prefix: '/' }, route: { cluster } }] }],
  };
}

/** Envoy: a listener on 127.0.0.1:listenPort with HCM -> RDS `routeName`. */
export function envoyListener(name: string, listenPort: number, routeName: string): XdsJson {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: listenPort } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM,
              stat_prefix: name,
              rds: { route_config_name: routeName, config_source: ads },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
            },
          },
        ],
      },
    ],
  };
}

/** Proxyless gRPC: an API listener named after the `xds:///` target, HCM -> RDS `routeName`. */
export function apiListener(target: string, routeName: string): XdsJson {
  return {
    name: target,
    api_listener: {
      api_listener: {
        '@type': HCM,
        rds: { route_config_name: routeName, config_source: ads },
        http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
      },
    },
  };
}

/** A whole minimal Envoy set: listener -> route -> cluster -> endpoint. */
export function envoySet(opts: { listenPort: number; backendPort: number; cluster?: string }): XdsResourceSet {
  const cluster = opts.cluster ?? 'backend';
  return resourceSet({
    [TypeUrl.Listener]: [envoyListener('http', opts.listenPort, 'http-routes')],
    [TypeUrl.RouteConfiguration]: [routeConfig('http-routes', cluster)],
    [TypeUrl.Cluster]: edsCluster(cluster, opts.backendPort),
    [TypeUrl.ClusterLoadAssignment]: [endpoints(cluster, opts.backendPort)],
  });
}

/** A whole minimal proxyless gRPC set for `xds:///target`. */
export function grpcSet(opts: { target: string; backendPort: number }): XdsResourceSet {
  const cluster = `${opts.target}-cluster`;
  return resourceSet({
    [TypeUrl.Listener]: [apiListener(opts.target, `${opts.target}-routes`)],
    [TypeUrl.RouteConfiguration]: [routeConfig(`${opts.target}-routes`, cluster, [opts.target])],
    [TypeUrl.Cluster]: edsCluster(cluster, opts.backendPort),
    [TypeUrl.ClusterLoadAssignment]: [endpoints(cluster, opts.backendPort)],
  });
}
