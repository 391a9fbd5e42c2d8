/**
 * The xDS resources both proxies are given: one Listener per proxy (its own loopback port; HCM
 * with RDS and the router filter), the same STATIC clusters (one per echo backend, HTTP/1.1 or,
 * for H2_CLUSTERS, HTTP/2 with prior knowledge) and the same
 * generated RouteConfiguration. In our JSON form (src/xds/types.ts), served by our real ADS server.
 */
import { TypeUrl, type XdsJson, type XdsResourceSet, type XdsTypeUrl } from '../../src/xds/types.ts';
import { H2_CLUSTERS } from './generate.ts';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

/** Name of the RouteConfiguration both listeners ask for over RDS. */
export const ROUTE_NAME = 'diff-routes';

function listener(port: number, hcm?: XdsJson): XdsJson {
  return {
    name: 'diff-listener',
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    filter_chains: [{
      filters: [{
        name: 'envoy.filters.network.http_connection_manager',
        typed_config: hcm ?? {
          '@type': HCM,
          stat_prefix: 'diff',
          rds: { route_config_name: ROUTE_NAME, config_source: { ads: {}, resource_api_version: 'V3' } },
          http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
        },
      }],
    }],
  };
}

function staticCluster(name: string, port: number): XdsJson {
  const c: Record<string, unknown> = {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }],
    },
  };
  if (H2_CLUSTERS.has(name)) {
    c.typed_extension_protocol_options = {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    };
  }
  return c;
}

/** The whole set for one proxy listening on `listenPort`; `hcm` replaces the minimal connection manager. */
export function resourceSetFor(listenPort: number, backends: ReadonlyMap<string, number>, routeConfig: XdsJson, hcm?: XdsJson): XdsResourceSet {
  const m = new Map<XdsTypeUrl, Map<string, XdsJson>>();
  m.set(TypeUrl.Listener, new Map([['diff-listener', listener(listenPort, hcm)]]));
  m.set(TypeUrl.Cluster, new Map([...backends].map(([name, port]) => [name, staticCluster(name, port)])));
  m.set(TypeUrl.RouteConfiguration, new Map([[ROUTE_NAME, routeConfig]]));
  return m;
}
