/**
 * DestinationRule policy components -> Envoy Cluster fields, as Istio's cluster builder maps them:
 * load balancer (Istio's default is LEAST_REQUEST; consistentHash -> RING_HASH or MAGLEV, the
 * hash itself goes on routes: see `hashPolicyFor`), connection pool -> circuit breaker thresholds
 * and HTTP protocol options, outlier detection (success-rate ejection off; min health percent ->
 * healthy panic threshold). Knows the mapping only; which cluster gets which policy is clusters.ts.
 */
import type { PortProtocol } from '../../registry/types.ts';
import type { XdsJson } from '../../xds/types.ts';
import { isHttp2Protocol, isHttpProtocol } from '../../registry/protocol.ts';
import type { MeshSnapshot } from '../snapshot/snapshot.ts';
import { effectivePolicy, ruleFor } from './traffic-policy.ts';
import type { EffectivePolicy } from './traffic-policy.ts';
import { protoDuration, durationSeconds } from './duration.ts';
import type { ConnectionPoolSettings, LoadBalancerSettings, OutlierDetection } from '../../config/views.ts';

type Json = Record<string, unknown>;

const MaxU32 = 4294967295;
/** Istio's default connect timeout (MeshConfig.connectTimeout). */
export const DefaultConnectTimeout = '10s';

/** lb_policy and its config for a load balancer setting. */
export function loadBalancerFields(lb: LoadBalancerSettings | undefined): Json {
  const ch = lb?.consistentHash;
  if (ch !== undefined) {
    if (ch.maglev !== undefined) {
      return { lb_policy: 'MAGLEV', ...(ch.maglev.tableSize !== undefined ? { maglev_lb_config: { table_size: ch.maglev.tableSize } } : {}) };
    }
    const min = ch.ringHash?.minimumRingSize ?? ch.minimumRingSize ?? 1024;
    return { lb_policy: 'RING_HASH', ring_hash_lb_config: { minimum_ring_size: min } };
  }
  switch (lb?.simple) {
    case 'ROUND_ROBIN':
      return { lb_policy: 'ROUND_ROBIN' };
    case 'RANDOM':
      return { lb_policy: 'RANDOM' };
    case 'PASSTHROUGH':
      return { lb_policy: 'CLUSTER_PROVIDED' };
    default:
      // UNSPECIFIED, LEAST_CONN (deprecated alias) and LEAST_REQUEST: Istio's default is LEAST_REQUEST.
      return { lb_policy: 'LEAST_REQUEST' };
  }
}

/** Circuit breaker thresholds; Istio raises Envoy's low defaults (1024) to effectively unlimited. */
export function circuitBreakers(pool: ConnectionPoolSettings | undefined): Json {
  const t: Json = {
    max_connections: pool?.tcp?.maxConnections ?? MaxU32,
    max_pending_requests: pool?.http?.http1MaxPendingRequests ?? MaxU32,
    max_requests: pool?.http?.http2MaxRequests ?? MaxU32,
    max_retries: pool?.http?.maxRetries ?? MaxU32,
    track_remaining: true,
  };
  return { thresholds: [t] };
}

/** Envoy's HttpProtocolOptions for an HTTP-family port, or undefined for TCP ports. */
export function httpProtocolOptions(protocol: PortProtocol, pool: ConnectionPoolSettings | undefined): Json | undefined {
  if (!isHttpProtocol(protocol)) return undefined;
  const http = pool?.http;
  const h2 = isHttp2Protocol(protocol) || http?.h2UpgradePolicy === 'UPGRADE';
  const common: Json = {};
  const idle = protoDuration(http?.idleTimeout);
  if (idle !== undefined) common.idle_timeout = idle;
  if (http?.maxRequestsPerConnection !== undefined && http.maxRequestsPerConnection > 0) common.max_requests_per_connection = http.maxRequestsPerConnection;
  const maxDuration = protoDuration(pool?.tcp?.maxConnectionDuration);
  if (maxDuration !== undefined) common.max_connection_duration = maxDuration;
  const h2opts: Json = http?.maxConcurrentStreams !== undefined ? { max_concurrent_streams: http.maxConcurrentStreams } : {};
  if (!h2 && Object.keys(common).length === 0 && http?.useClientProtocol !== true) return undefined;
  const out: Json = { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions' };
  if (Object.keys(common).length > 0) out.common_http_protocol_options = common;
  if (http?.useClientProtocol === true) out.use_downstream_protocol_config = { http_protocol_options: {}, http2_protocol_options: h2opts };
  else out.explicit_http_config = h2 ? { http2_protocol_options: h2opts } : { http_protocol_options: {} };
  return out;
}

/** TCP keepalive socket options (`upstream_connection_options`), or undefined. */
export function upstreamConnectionOptions(pool: ConnectionPoolSettings | undefined): Json | undefined {
  const ka = pool?.tcp?.tcpKeepalive;
  if (ka === undefined) return undefined;
  const k: Json = {};
  if (ka.probes !== undefined) k.keepalive_probes = ka.probes;
  const time = durationSeconds(ka.time);
  if (time !== undefined) k.keepalive_time = Math.max(1, Math.round(time));
  const interval = durationSeconds(ka.interval);
  if (interval !== undefined) k.keepalive_interval = Math.max(1, Math.round(interval));
  return { tcp_keepalive: k };
}

/** Envoy outlier_detection as Istio fills it. */
export function outlierDetection(od: OutlierDetection): Json {
  const out: Json = { enforcing_success_rate: 0 };
  const five = od.consecutive5xxErrors ?? od.consecutiveErrors;
  if (five !== undefined) {
    out.consecutive_5xx = five;
    out.enforcing_consecutive_5xx = five > 0 ? 100 : 0;
  }
  if (od.consecutiveGatewayErrors !== undefined) {
    out.consecutive_gateway_failure = od.consecutiveGatewayErrors;
    out.enforcing_consecutive_gateway_failure = od.consecutiveGatewayErrors > 0 ? 100 : 0;
  }
  const interval = protoDuration(od.interval);
  if (interval !== undefined) out.interval = interval;
  const base = protoDuration(od.baseEjectionTime);
  if (base !== undefined) out.base_ejection_time = base;
  if (od.maxEjectionPercent !== undefined && od.maxEjectionPercent > 0) out.max_ejection_percent = od.maxEjectionPercent;
  if (od.splitExternalLocalOriginErrors === true) {
    out.split_external_local_origin_errors = true;
    if (od.consecutiveLocalOriginFailures !== undefined) {
      out.consecutive_local_origin_failure = od.consecutiveLocalOriginFailures;
      out.enforcing_consecutive_local_origin_failure = od.consecutiveLocalOriginFailures > 0 ? 100 : 0;
    }
  }
  return out;
}

/**
 * The policy fields of a cluster (everything but type, endpoints and TLS): lb, thresholds,
 * outlier detection, protocol options, connect timeout.
 */
export function policyFields(policy: EffectivePolicy, protocol: PortProtocol): Json {
  const out: Json = {
    connect_timeout: protoDuration(policy.connectionPool?.tcp?.connectTimeout) ?? DefaultConnectTimeout,
    ...loadBalancerFields(policy.loadBalancer),
    circuit_breakers: circuitBreakers(policy.connectionPool),
  };
  const common: Json = {};
  if (policy.outlierDetection !== undefined) {
    out.outlier_detection = outlierDetection(policy.outlierDetection);
    // Istio: with outlier detection on, panic mode starts below minHealthPercent (default 0 = never).
    common.healthy_panic_threshold = { value: policy.outlierDetection.minHealthPercent ?? 0 };
  }
  const ll = policy.loadBalancer?.localityLbSetting;
  if (ll !== undefined && ll.enabled !== false && (ll.distribute?.length ?? 0) > 0) common.locality_weighted_lb_config = {};
  if (Object.keys(common).length > 0) out.common_lb_config = common;
  const proto = httpProtocolOptions(protocol, policy.connectionPool);
  if (proto !== undefined) out.typed_extension_protocol_options = { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': proto };
  const conn = upstreamConnectionOptions(policy.connectionPool);
  if (conn !== undefined) out.upstream_connection_options = conn;
  return out;
}

/** An Envoy RouteAction hash_policy entry list for a consistentHash setting, or undefined. */
export function hashPolicyOf(lb: LoadBalancerSettings | undefined): Json[] | undefined {
  const ch = lb?.consistentHash;
  if (ch === undefined) return undefined;
  if (ch.httpHeaderName !== undefined) return [{ header: { header_name: ch.httpHeaderName } }];
  if (ch.httpCookie !== undefined) {
    const cookie: Json = { name: ch.httpCookie.name ?? '' };
    if (ch.httpCookie.path !== undefined) cookie.path = ch.httpCookie.path;
    const ttl = protoDuration(ch.httpCookie.ttl);
    if (ttl !== undefined) cookie.ttl = ttl;
    return [{ cookie }];
  }
  if (ch.useSourceIp === true) return [{ connection_properties: { source_ip: true } }];
  if (ch.httpQueryParameterName !== undefined) return [{ query_parameter: { name: ch.httpQueryParameterName } }];
  return undefined;
}

/**
 * The route-level `hash_policy` a route to (host, subset, port) needs so that a consistent-hash
 * DestinationRule works (Envoy hashes on the route, balances on the cluster). For the route
 * translator: put the result on RouteAction.hash_policy; undefined means none.
 */
export function hashPolicyFor(snapshot: MeshSnapshot, host: string, subset: string, port: number, proxyNamespace: string, proxyLabels?: Readonly<Record<string, string>>): Json[] | undefined {
  return hashPolicyOf(effectivePolicy(ruleFor(snapshot, host, proxyNamespace, proxyLabels), port, subset).loadBalancer);
}

/**
 * Adds the consistent-hash `hash_policy` to every route action of `rc` whose destination
 * clusters (one, or several that agree) have a consistent-hash DestinationRule, as Istio's route
 * translation does; returns `rc` itself when nothing changes. An explicit hash_policy is kept.
 */
export function addHashPolicies(rc: XdsJson, hashFor: (cluster: string) => Json[] | undefined): XdsJson {
  let changed = false;
  const vhosts = ((rc.virtual_hosts as Json[] | undefined) ?? []).map((vh) => {
    const routes = ((vh.routes as Json[] | undefined) ?? []).map((r) => {
      const a = r.route as Json | undefined;
      if (a === undefined || a.hash_policy !== undefined) return r;
      const names = typeof a.cluster === 'string' ? [a.cluster] : (((a.weighted_clusters as Json | undefined)?.clusters as Json[] | undefined) ?? []).map((c) => String(c.name));
      if (names.length === 0) return r;
      const policies = names.map(hashFor);
      const first = policies[0];
      if (first === undefined || policies.some((p) => JSON.stringify(p) !== JSON.stringify(first))) return r;
      changed = true;
      return { ...r, route: { ...a, hash_policy: first } };
    });
    return { ...vh, routes };
  });
  return changed ? { ...rc, virtual_hosts: vhosts } : rc;
}
