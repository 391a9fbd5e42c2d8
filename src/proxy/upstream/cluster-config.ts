/**
 * Parsing one Envoy `Cluster` (proto3 JSON) into a frozen `ClusterConfig`: discovery type, LB
 * policy and its options, connect timeout, upstream protocol, circuit breaker thresholds, outlier
 * detection, TLS transport socket (and Istio's `transport_socket_matches`). Every default is
 * Envoy's documented default. Invalid input throws TrellisError('XDS_INVALID') naming the cluster
 * and field, so a whole update can be NACKed before anything is applied.
 */
import { metadataExchangeProtocol } from '../tcp/metadata-exchange-config.ts';
import { isIP } from 'node:net';
import type { XdsJson } from '../../xds/types.ts';
import { edsServiceName } from '../../xds/references.ts';
import { parseTransportSocket, type UpstreamTlsConfig } from '../tls/upstream-tls-config.ts';
import { parseHealthChecks, type HealthCheckConfig } from './health-check-config.ts';
import { parseLoadAssignment, type LoadAssignment } from './load-assignment.ts';
import { parseOutlierConfig, type OutlierConfig } from './outlier-config.ts';
import { child, configError, isObj, optArr, optBool, optDurationMs, optEnum, optNumber, optObj, optPercent, optStr, optUint } from '../xds-json.ts';

export type DiscoveryType = 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'EDS' | 'ORIGINAL_DST';
export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RING_HASH' | 'RANDOM' | 'MAGLEV';
export type UpstreamProtocol = 'http1' | 'http2' | 'downstream';

/** Circuit breaker thresholds for one routing priority (Envoy defaults: 1024/1024/1024/3). */
export interface BreakerThresholds {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
  /** retry_budget: fraction of active requests that may be retries, with a floor. */
  readonly retryBudget: { readonly budgetFraction: number; readonly minRetryConcurrency: number } | undefined;
}

/** A transport_socket_matches entry: endpoints whose `envoy.transport_socket_match` metadata matches use `tls`. */
export interface TransportSocketMatch {
  readonly name: string;
  readonly match: Readonly<Record<string, unknown>>;
  readonly tls: UpstreamTlsConfig | undefined;
}

/**
 * Envoy's UpstreamHttpProtocolOptions: per request, the router takes the request's host (after
 * host rewrites; or `overrideAutoSniHeader`'s value) as the upstream SNI (`autoSni`, never for
 * an IP address) and as the one name the server certificate must carry (`autoSanValidation`,
 * replacing the configured SAN matchers). Only HTTP requests and upgrades use it, not tcp_proxy.
 */
export interface UpstreamHttpOptions {
  readonly autoSni: boolean;
  readonly autoSanValidation: boolean;
  /** Lower-case header name, or undefined for the host. */
  readonly overrideAutoSniHeader: string | undefined;
}

/** A validated, frozen cluster. */
export interface ClusterConfig {
  readonly name: string;
  readonly type: DiscoveryType;
  /** EDS: the ClusterLoadAssignment name to use (eds_cluster_config.service_name, else the cluster name). */
  readonly edsServiceName: string;
  readonly lbPolicy: LbPolicy;
  readonly connectTimeoutMs: number;
  readonly protocol: UpstreamProtocol;
  /** Upstream connection idle timeout (common_http_protocol_options.idle_timeout, default 1 h); 0 = none. */
  readonly idleTimeoutMs: number;
  /** 0 = unlimited. */
  readonly maxRequestsPerConnection: number;
  /** upstream_http_protocol_options; undefined = none (SNI only from the TLS context's `sni`). */
  readonly upstreamHttp: UpstreamHttpOptions | undefined;
  readonly breakers: BreakerThresholds;
  readonly outlier: OutlierConfig | undefined;
  readonly healthCheck: HealthCheckConfig | undefined;
  /** Fraction 0..1; below it a priority level is in panic (default 0.5). */
  readonly panicThreshold: number;
  readonly localityWeighted: boolean;
  readonly ringHash: { readonly minRingSize: number; readonly maxRingSize: number };
  readonly maglevTableSize: number;
  readonly leastRequest: { readonly choiceCount: number; readonly activeRequestBias: number };
  readonly dnsRefreshRateMs: number;
  readonly dnsLookupFamily: 'AUTO' | 'V4_ONLY' | 'V6_ONLY' | 'V4_PREFERRED' | 'ALL';
  readonly tls: UpstreamTlsConfig | undefined;
  readonly transportSocketMatches: readonly TransportSocketMatch[];
  /** STATIC / DNS clusters: the inline load_assignment. */
  readonly loadAssignment: LoadAssignment | undefined;
  /**
   * Envoy's dynamic forward proxy cluster (`cluster_type` envoy.clusters.dynamic_forward_proxy):
   * like ORIGINAL_DST, one host per destination, but the destination is the request's authority
   * (host[:port], port 80 by default, the name resolved when connecting).
   */
  readonly dynamicForwardProxy: boolean;
  /**
   * Istio's `istio.metadata_exchange` upstream network filter (in `filters`): its ALPN protocol.
   * TCP-proxied connections that negotiate it exchange peer metadata (tcp/tcp-proxy.ts).
   */
  readonly peerExchange: string | undefined;
  /** The JSON it came from, for change detection and config_dump. */
  readonly source: XdsJson;
}

const discoveryTypes = ['STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'EDS', 'ORIGINAL_DST'] as const;
// Proto numbering has a gap at 4 (deprecated ORIGINAL_DST_LB); CLUSTER_PROVIDED/LOAD_BALANCING_POLICY_CONFIG unsupported.
const lbPolicies = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RING_HASH', 'RANDOM', '-', 'MAGLEV', 'CLUSTER_PROVIDED', 'LOAD_BALANCING_POLICY_CONFIG'] as const;
const lookupFamilies = ['AUTO', 'V4_ONLY', 'V6_ONLY', 'V4_PREFERRED', 'ALL'] as const;

/** Envoy's dynamic forward proxy cluster extension. */
export const DynamicForwardProxyClusterType = 'envoy.clusters.dynamic_forward_proxy';

/** The typed_extension_protocol_options key Istio and Envoy use for upstream HTTP options. */
export const HttpProtocolOptionsKey = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** Envoy's default thresholds (cluster circuit breakers, priority DEFAULT). */
export const defaultBreakers: BreakerThresholds = Object.freeze({ maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3, retryBudget: undefined });

/** Parses and validates one Cluster resource. */
export function parseCluster(json: unknown): ClusterConfig {
  if (!isObj(json)) configError('cluster', 'expected an object');
  const name = optStr(json.name, 'cluster.name');
  if (name === undefined || name === '') configError('cluster.name', 'required');
  const at = `cluster '${name}'`;
  const custom = optObj(json.cluster_type, child(at, 'cluster_type'));
  const dynamicForwardProxy = custom !== undefined;
  if (custom !== undefined && custom.name !== DynamicForwardProxyClusterType) {
    configError(child(child(at, 'cluster_type'), 'name'), `cluster type ${JSON.stringify(custom.name)} is not supported (only ${DynamicForwardProxyClusterType})`);
  }
  // The dynamic forward proxy finds its host per request, as ORIGINAL_DST does per connection.
  const type = dynamicForwardProxy ? 'ORIGINAL_DST' : optEnum(json.type, child(at, 'type'), discoveryTypes) ?? 'STATIC';
  const policy = optEnum(json.lb_policy, child(at, 'lb_policy'), lbPolicies) ?? 'ROUND_ROBIN';
  if (policy === '-' || policy === 'CLUSTER_PROVIDED' || policy === 'LOAD_BALANCING_POLICY_CONFIG') {
    // ORIGINAL_DST clusters use CLUSTER_PROVIDED in Envoy; the endpoint is the original destination, so no LB runs.
    if (!(type === 'ORIGINAL_DST' && policy === 'CLUSTER_PROVIDED')) configError(child(at, 'lb_policy'), `lb_policy ${policy} is not supported`);
  }
  const eds = optObj(json.eds_cluster_config, child(at, 'eds_cluster_config'));
  if (eds !== undefined) optStr(eds.service_name, child(child(at, 'eds_cluster_config'), 'service_name'));
  const edsName = edsServiceName(json);

  const la = optObj(json.load_assignment, child(at, 'load_assignment'));
  // Envoy accepts STATIC and STRICT_DNS clusters without hosts: Istio's BlackHoleCluster is one.
  const loadAssignment =
    la !== undefined ? parseLoadAssignment(la, child(at, 'load_assignment'))
    : type === 'STATIC' || type === 'STRICT_DNS' ? parseLoadAssignment({ cluster_name: name }, child(at, 'load_assignment'))
    : undefined;
  if (type === 'LOGICAL_DNS' && loadAssignment === undefined) {
    configError(child(at, 'load_assignment'), `required for a ${type} cluster`);
  }
  if (type === 'STATIC' && loadAssignment !== undefined) {
    loadAssignment.priorities.forEach((p) => p.localities.forEach((l) => l.endpoints.forEach((e) => {
      if (isIP(e.address) === 0) configError(child(at, 'load_assignment'), `STATIC cluster endpoint '${e.address}' must be an IP address (use STRICT_DNS for names)`);
    })));
  }
  if (type === 'LOGICAL_DNS' && loadAssignment !== undefined) {
    const n = loadAssignment.priorities.reduce((s, p) => s + p.localities.reduce((t, l) => t + l.endpoints.length, 0), 0);
    if (n !== 1) configError(child(at, 'load_assignment'), `LOGICAL_DNS clusters need exactly one endpoint (found ${n})`);
  }

  const proto = parseProtocol(json, at);
  const common = optObj(json.common_lb_config, child(at, 'common_lb_config')) ?? {};
  const cat = child(at, 'common_lb_config');
  const rh = optObj(json.ring_hash_lb_config, child(at, 'ring_hash_lb_config')) ?? {};
  const rhAt = child(at, 'ring_hash_lb_config');
  const minRingSize = optUint(rh.minimum_ring_size, child(rhAt, 'minimum_ring_size'), 8_388_608) ?? 1024;
  const maxRingSize = optUint(rh.maximum_ring_size, child(rhAt, 'maximum_ring_size'), 8_388_608) ?? 8_388_608;
  if (minRingSize > maxRingSize) configError(child(rhAt, 'minimum_ring_size'), `must not exceed maximum_ring_size (${maxRingSize})`);
  const hf = optStr(rh.hash_function, child(rhAt, 'hash_function'));
  if (hf !== undefined && hf !== 'XX_HASH') configError(child(rhAt, 'hash_function'), `hash function ${hf} is not supported (only XX_HASH)`);
  const mg = optObj(json.maglev_lb_config, child(at, 'maglev_lb_config')) ?? {};
  const maglevTableSize = optUint(mg.table_size, child(child(at, 'maglev_lb_config'), 'table_size')) ?? 65537;
  if (!isPrime(maglevTableSize) || maglevTableSize > 5_000_011) configError(child(child(at, 'maglev_lb_config'), 'table_size'), 'must be a prime number no larger than 5000011');
  const lr = optObj(json.least_request_lb_config, child(at, 'least_request_lb_config')) ?? {};
  const lrAt = child(at, 'least_request_lb_config');
  const choiceCount = optUint(lr.choice_count, child(lrAt, 'choice_count')) ?? 2;
  if (choiceCount < 2) configError(child(lrAt, 'choice_count'), 'must be at least 2');
  const bias = optObj(lr.active_request_bias, child(lrAt, 'active_request_bias'));
  const activeRequestBias = bias === undefined ? 1 : optNumber(bias.default_value, child(child(lrAt, 'active_request_bias'), 'default_value'), 0) ?? 1;

  const ts = optObj(json.transport_socket, child(at, 'transport_socket'));
  const tls = ts === undefined ? undefined : parseTransportSocket(ts, child(at, 'transport_socket'));
  const transportSocketMatches = optArr(json.transport_socket_matches, child(at, 'transport_socket_matches')).map((raw, i): TransportSocketMatch => {
    const p = child(child(at, 'transport_socket_matches'), i);
    if (!isObj(raw)) configError(p, 'expected an object');
    const sock = optObj(raw.transport_socket, child(p, 'transport_socket'));
    return Object.freeze({
      name: optStr(raw.name, child(p, 'name')) ?? `#${i}`,
      match: Object.freeze({ ...(optObj(raw.match, child(p, 'match')) ?? {}) }),
      tls: sock === undefined ? undefined : parseTransportSocket(sock, child(p, 'transport_socket')),
    });
  });

  let peerExchange: string | undefined;
  optArr(json.filters, child(at, 'filters')).forEach((raw, i) => {
    const p = child(child(at, 'filters'), i);
    if (!isObj(raw)) configError(p, 'expected an object');
    const protocol = metadataExchangeProtocol(raw, p);
    // Envoy rejects an upstream network filter it does not have; so do we.
    if (protocol === undefined) configError(p, `unsupported upstream network filter '${optStr(raw.name, child(p, 'name')) ?? ''}'`);
    peerExchange = protocol;
  });

  return Object.freeze({
    name,
    type,
    edsServiceName: edsName,
    lbPolicy: type === 'ORIGINAL_DST' ? 'RANDOM' : (policy as LbPolicy),
    connectTimeoutMs: optDurationMs(json.connect_timeout, child(at, 'connect_timeout')) ?? 5000,
    protocol: proto.protocol,
    idleTimeoutMs: proto.idleTimeoutMs,
    maxRequestsPerConnection: proto.maxRequestsPerConnection,
    // Envoy's dynamic forward proxy cluster turns both on when the cluster sets none.
    upstreamHttp: proto.upstreamHttp ?? (dynamicForwardProxy ? Object.freeze({ autoSni: true, autoSanValidation: true, overrideAutoSniHeader: undefined }) : undefined),
    breakers: parseBreakers(json, at),
    healthCheck: parseHealthChecks(json, at),
    outlier: parseOutlierConfig(optObj(json.outlier_detection, child(at, 'outlier_detection')), child(at, 'outlier_detection')),
    panicThreshold: optPercent(common.healthy_panic_threshold, child(cat, 'healthy_panic_threshold')) ?? 0.5,
    localityWeighted: optObj(common.locality_weighted_lb_config, child(cat, 'locality_weighted_lb_config')) !== undefined,
    ringHash: Object.freeze({ minRingSize, maxRingSize }),
    maglevTableSize,
    leastRequest: Object.freeze({ choiceCount, activeRequestBias }),
    dnsRefreshRateMs: optDurationMs(json.dns_refresh_rate, child(at, 'dns_refresh_rate')) ?? 5000,
    dnsLookupFamily: optEnum(json.dns_lookup_family, child(at, 'dns_lookup_family'), lookupFamilies) ?? 'AUTO',
    tls,
    transportSocketMatches: Object.freeze(transportSocketMatches),
    dynamicForwardProxy,
    peerExchange,
    loadAssignment,
    source: json,
  });
}

function parseBreakers(json: XdsJson, at: string): BreakerThresholds {
  const cb = optObj(json.circuit_breakers, child(at, 'circuit_breakers'));
  if (cb === undefined) return defaultBreakers;
  const cbAt = child(at, 'circuit_breakers');
  let found: BreakerThresholds = defaultBreakers;
  optArr(cb.thresholds, child(cbAt, 'thresholds')).forEach((raw, i) => {
    const p = child(child(cbAt, 'thresholds'), i);
    if (!isObj(raw)) configError(p, 'expected an object');
    const priority = optEnum(raw.priority, child(p, 'priority'), ['DEFAULT', 'HIGH'] as const) ?? 'DEFAULT';
    const rb = optObj(raw.retry_budget, child(p, 'retry_budget'));
    const parsed: BreakerThresholds = Object.freeze({
      maxConnections: optUint(raw.max_connections, child(p, 'max_connections')) ?? 1024,
      maxPendingRequests: optUint(raw.max_pending_requests, child(p, 'max_pending_requests')) ?? 1024,
      maxRequests: optUint(raw.max_requests, child(p, 'max_requests')) ?? 1024,
      maxRetries: optUint(raw.max_retries, child(p, 'max_retries')) ?? 3,
      retryBudget: rb === undefined ? undefined : Object.freeze({
        budgetFraction: optPercent(rb.budget_percent, child(child(p, 'retry_budget'), 'budget_percent')) ?? 0.2,
        minRetryConcurrency: optUint(rb.min_retry_concurrency, child(child(p, 'retry_budget'), 'min_retry_concurrency')) ?? 3,
      }),
    });
    // Routes all use DEFAULT priority today (Istio never sets HIGH); HIGH thresholds are validated, not used.
    if (priority === 'DEFAULT') found = parsed;
  });
  return found;
}

function parseUpstreamHttpOptions(json: XdsJson, at: string): UpstreamHttpOptions {
  const header = optStr(json.override_auto_sni_header, child(at, 'override_auto_sni_header'));
  if (header !== undefined && header !== '' && !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(header)) configError(child(at, 'override_auto_sni_header'), `not a valid header name: ${JSON.stringify(header)}`);
  return Object.freeze({
    autoSni: optBool(json.auto_sni, child(at, 'auto_sni')) ?? false,
    autoSanValidation: optBool(json.auto_san_validation, child(at, 'auto_san_validation')) ?? false,
    overrideAutoSniHeader: header === undefined || header === '' ? undefined : header.toLowerCase(),
  });
}

/** Envoy's HttpProtocolOptions.idle_timeout default for upstream connections. */
export const DefaultUpstreamIdleTimeoutMs = 3_600_000;

function parseProtocol(json: XdsJson, at: string): { protocol: UpstreamProtocol; idleTimeoutMs: number; maxRequestsPerConnection: number; upstreamHttp: UpstreamHttpOptions | undefined } {
  let protocol: UpstreamProtocol = optObj(json.http2_protocol_options, child(at, 'http2_protocol_options')) !== undefined ? 'http2' : 'http1';
  // The deprecated Cluster field, superseded by HttpProtocolOptions' own.
  const legacyUpstream = optObj(json.upstream_http_protocol_options, child(at, 'upstream_http_protocol_options'));
  let upstreamHttp = legacyUpstream === undefined ? undefined : parseUpstreamHttpOptions(legacyUpstream, child(at, 'upstream_http_protocol_options'));
  let commonOpts = optObj(json.common_http_protocol_options, child(at, 'common_http_protocol_options'));
  let commonAt = child(at, 'common_http_protocol_options');
  let maxReq = optUint(json.max_requests_per_connection, child(at, 'max_requests_per_connection'));
  const typed = optObj(json.typed_extension_protocol_options, child(at, 'typed_extension_protocol_options'));
  const hpo = typed === undefined ? undefined : optObj(typed[HttpProtocolOptionsKey], child(child(at, 'typed_extension_protocol_options'), HttpProtocolOptionsKey));
  if (hpo !== undefined) {
    const hat = child(child(at, 'typed_extension_protocol_options'), HttpProtocolOptionsKey);
    const explicit = optObj(hpo.explicit_http_config, child(hat, 'explicit_http_config'));
    if (explicit !== undefined) {
      protocol = optObj(explicit.http2_protocol_options, child(child(hat, 'explicit_http_config'), 'http2_protocol_options')) !== undefined ? 'http2' : 'http1';
    } else if (optObj(hpo.use_downstream_protocol_config, child(hat, 'use_downstream_protocol_config')) !== undefined) {
      protocol = 'downstream';
    } else if (optObj(hpo.auto_config, child(hat, 'auto_config')) !== undefined) {
      // auto_config negotiates by ALPN over TLS; without TLS Envoy uses HTTP/1.1. We pick h2 only when ALPN offers it.
      protocol = 'http1';
    }
    const u = optObj(hpo.upstream_http_protocol_options, child(hat, 'upstream_http_protocol_options'));
    if (u !== undefined) upstreamHttp = parseUpstreamHttpOptions(u, child(hat, 'upstream_http_protocol_options'));
    const c = optObj(hpo.common_http_protocol_options, child(hat, 'common_http_protocol_options'));
    if (c !== undefined) {
      commonOpts = c;
      commonAt = child(hat, 'common_http_protocol_options');
    }
  }
  if (commonOpts !== undefined) maxReq = optUint(commonOpts.max_requests_per_connection, child(commonAt, 'max_requests_per_connection')) ?? maxReq;
  // Envoy's (and Istio's connectionPool.http.idleTimeout) default is 1 h; 0 disables it. A server
  // that closes sooner says so (`Keep-Alive: timeout=N`, as node's server and our sidecars do) and
  // the HTTP/1.1 client stops reusing the connection before then (h1-connection.ts).
  const idle = commonOpts === undefined ? undefined : optDurationMs(commonOpts.idle_timeout, child(commonAt, 'idle_timeout'));
  return { protocol, idleTimeoutMs: idle ?? DefaultUpstreamIdleTimeoutMs, maxRequestsPerConnection: maxReq ?? 0, upstreamHttp };
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let i = 2; i * i <= n; i++) if (n % i === 0) return false;
  return true;
}
