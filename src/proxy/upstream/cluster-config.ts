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
import {
  child, invalid, isObject, optArray, optDurationMs, optEnum, optNumber, optObject, optPercent, optString, optUint, type FieldPath,
} from './xds-read.ts';

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

/** A validated, frozen cluster. */
export interface ClusterConfig {
  readonly name: string;
  readonly type: DiscoveryType;
  /** EDS: the ClusterLoadAssignment name to use (eds_cluster_config.service_name, else the cluster name). */
  readonly edsServiceName: string;
  readonly lbPolicy: LbPolicy;
  readonly connectTimeoutMs: number;
  readonly protocol: UpstreamProtocol;
  readonly idleTimeoutMs: number;
  /** 0 = unlimited. */
  readonly maxRequestsPerConnection: number;
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
  const top: FieldPath = { resource: 'cluster', path: '' };
  if (!isObject(json)) throw invalid(top, 'expected an object');
  const name = optString(json, 'name', top);
  if (name === undefined || name === '') throw invalid({ resource: 'cluster', path: 'name' }, 'required');
  const at: FieldPath = { resource: `cluster '${name}'`, path: '' };
  const custom = optObject(json, 'cluster_type', at);
  const dynamicForwardProxy = custom !== undefined;
  if (custom !== undefined && custom.name !== DynamicForwardProxyClusterType) {
    throw invalid(child(child(at, 'cluster_type'), 'name'), `cluster type ${JSON.stringify(custom.name)} is not supported (only ${DynamicForwardProxyClusterType})`);
  }
  // The dynamic forward proxy finds its host per request, as ORIGINAL_DST does per connection.
  const type = dynamicForwardProxy ? 'ORIGINAL_DST' : optEnum(json, 'type', at, discoveryTypes) ?? 'STATIC';
  const policy = optEnum(json, 'lb_policy', at, lbPolicies) ?? 'ROUND_ROBIN';
  if (policy === '-' || policy === 'CLUSTER_PROVIDED' || policy === 'LOAD_BALANCING_POLICY_CONFIG') {
    // ORIGINAL_DST clusters use CLUSTER_PROVIDED in Envoy; the endpoint is the original destination, so no LB runs.
    if (!(type === 'ORIGINAL_DST' && policy === 'CLUSTER_PROVIDED')) throw invalid(child(at, 'lb_policy'), `lb_policy ${policy} is not supported`);
  }
  const eds = optObject(json, 'eds_cluster_config', at);
  if (eds !== undefined) optString(eds, 'service_name', child(at, 'eds_cluster_config'));
  const edsName = edsServiceName(json);

  const la = optObject(json, 'load_assignment', at);
  // Envoy accepts STATIC and STRICT_DNS clusters without hosts: Istio's BlackHoleCluster is one.
  const loadAssignment =
    la !== undefined ? parseLoadAssignment(la, { resource: at.resource, path: 'load_assignment' })
    : type === 'STATIC' || type === 'STRICT_DNS' ? parseLoadAssignment({ cluster_name: name }, { resource: at.resource, path: 'load_assignment' })
    : undefined;
  if (type === 'LOGICAL_DNS' && loadAssignment === undefined) {
    throw invalid(child(at, 'load_assignment'), `required for a ${type} cluster`);
  }
  if (type === 'STATIC' && loadAssignment !== undefined) {
    loadAssignment.priorities.forEach((p) => p.localities.forEach((l) => l.endpoints.forEach((e) => {
      if (isIP(e.address) === 0) throw invalid(child(at, 'load_assignment'), `STATIC cluster endpoint '${e.address}' must be an IP address (use STRICT_DNS for names)`);
    })));
  }
  if (type === 'LOGICAL_DNS' && loadAssignment !== undefined) {
    const n = loadAssignment.priorities.reduce((s, p) => s + p.localities.reduce((t, l) => t + l.endpoints.length, 0), 0);
    if (n !== 1) throw invalid(child(at, 'load_assignment'), `LOGICAL_DNS clusters need exactly one endpoint (found ${n})`);
  }

  const proto = parseProtocol(json, at);
  const common = optObject(json, 'common_lb_config', at) ?? {};
  const cat = child(at, 'common_lb_config');
  const rh = optObject(json, 'ring_hash_lb_config', at) ?? {};
  const rhAt = child(at, 'ring_hash_lb_config');
  const minRingSize = optUint(rh, 'minimum_ring_size', rhAt, 8_388_608) ?? 1024;
  const maxRingSize = optUint(rh, 'maximum_ring_size', rhAt, 8_388_608) ?? 8_388_608;
  if (minRingSize > maxRingSize) throw invalid(child(rhAt, 'minimum_ring_size'), `must not exceed maximum_ring_size (${maxRingSize})`);
  const hf = optString(rh, 'hash_function', rhAt);
  if (hf !== undefined && hf !== 'XX_HASH') throw invalid(child(rhAt, 'hash_function'), `hash function ${hf} is not supported (only XX_HASH)`);
  const mg = optObject(json, 'maglev_lb_config', at) ?? {};
  const maglevTableSize = optUint(mg, 'table_size', child(at, 'maglev_lb_config')) ?? 65537;
  if (!isPrime(maglevTableSize) || maglevTableSize > 5_000_011) throw invalid(child(child(at, 'maglev_lb_config'), 'table_size'), 'must be a prime number no larger than 5000011');
  const lr = optObject(json, 'least_request_lb_config', at) ?? {};
  const lrAt = child(at, 'least_request_lb_config');
  const choiceCount = optUint(lr, 'choice_count', lrAt) ?? 2;
  if (choiceCount < 2) throw invalid(child(lrAt, 'choice_count'), 'must be at least 2');
  const bias = optObject(lr, 'active_request_bias', lrAt);
  const activeRequestBias = bias === undefined ? 1 : optNumber(bias, 'default_value', child(lrAt, 'active_request_bias'), 0) ?? 1;

  const ts = optObject(json, 'transport_socket', at);
  const tls = ts === undefined ? undefined : parseTransportSocket(ts, child(at, 'transport_socket'));
  const transportSocketMatches = optArray(json, 'transport_socket_matches', at).map((raw, i): TransportSocketMatch => {
    const p = child(child(at, 'transport_socket_matches'), i);
    if (!isObject(raw)) throw invalid(p, 'expected an object');
    const sock = optObject(raw, 'transport_socket', p);
    return Object.freeze({
      name: optString(raw, 'name', p) ?? `#${i}`,
      match: Object.freeze({ ...(optObject(raw, 'match', p) ?? {}) }),
      tls: sock === undefined ? undefined : parseTransportSocket(sock, child(p, 'transport_socket')),
    });
  });

  let peerExchange: string | undefined;
  optArray(json, 'filters', at).forEach((raw, i) => {
    const p = child(child(at, 'filters'), i);
    if (!isObject(raw)) throw invalid(p, 'expected an object');
    const protocol = metadataExchangeProtocol(raw, p);
    // Envoy rejects an upstream network filter it does not have; so do we.
    if (protocol === undefined) throw invalid(p, `unsupported upstream network filter '${optString(raw, 'name', p) ?? ''}'`);
    peerExchange = protocol;
  });

  return Object.freeze({
    name,
    type,
    edsServiceName: edsName,
    lbPolicy: type === 'ORIGINAL_DST' ? 'RANDOM' : (policy as LbPolicy),
    connectTimeoutMs: optDurationMs(json, 'connect_timeout', at) ?? 5000,
    protocol: proto.protocol,
    idleTimeoutMs: proto.idleTimeoutMs,
    maxRequestsPerConnection: proto.maxRequestsPerConnection,
    breakers: parseBreakers(json, at),
    healthCheck: parseHealthChecks(json, at),
    outlier: parseOutlierConfig(optObject(json, 'outlier_detection', at), child(at, 'outlier_detection')),
    panicThreshold: optPercent(common, 'healthy_panic_threshold', cat) ?? 0.5,
    localityWeighted: optObject(common, 'locality_weighted_lb_config', cat) !== undefined,
    ringHash: Object.freeze({ minRingSize, maxRingSize }),
    maglevTableSize,
    leastRequest: Object.freeze({ choiceCount, activeRequestBias }),
    dnsRefreshRateMs: optDurationMs(json, 'dns_refresh_rate', at) ?? 5000,
    dnsLookupFamily: optEnum(json, 'dns_lookup_family', at, lookupFamilies) ?? 'AUTO',
    tls,
    transportSocketMatches: Object.freeze(transportSocketMatches),
    dynamicForwardProxy,
    peerExchange,
    loadAssignment,
    source: json,
  });
}

function parseBreakers(json: XdsJson, at: FieldPath): BreakerThresholds {
  const cb = optObject(json, 'circuit_breakers', at);
  if (cb === undefined) return defaultBreakers;
  const cbAt = child(at, 'circuit_breakers');
  let found: BreakerThresholds = defaultBreakers;
  optArray(cb, 'thresholds', cbAt).forEach((raw, i) => {
    const p = child(child(cbAt, 'thresholds'), i);
    if (!isObject(raw)) throw invalid(p, 'expected an object');
    const priority = optEnum(raw, 'priority', p, ['DEFAULT', 'HIGH'] as const) ?? 'DEFAULT';
    const rb = optObject(raw, 'retry_budget', p);
    const parsed: BreakerThresholds = Object.freeze({
      maxConnections: optUint(raw, 'max_connections', p) ?? 1024,
      maxPendingRequests: optUint(raw, 'max_pending_requests', p) ?? 1024,
      maxRequests: optUint(raw, 'max_requests', p) ?? 1024,
      maxRetries: optUint(raw, 'max_retries', p) ?? 3,
      retryBudget: rb === undefined ? undefined : Object.freeze({
        budgetFraction: optPercent(rb, 'budget_percent', child(p, 'retry_budget')) ?? 0.2,
        minRetryConcurrency: optUint(rb, 'min_retry_concurrency', child(p, 'retry_budget')) ?? 3,
      }),
    });
    // Routes all use DEFAULT priority today (Istio never sets HIGH); HIGH thresholds are validated, not used.
    if (priority === 'DEFAULT') found = parsed;
  });
  return found;
}

function parseProtocol(json: XdsJson, at: FieldPath): { protocol: UpstreamProtocol; idleTimeoutMs: number; maxRequestsPerConnection: number } {
  let protocol: UpstreamProtocol = optObject(json, 'http2_protocol_options', at) !== undefined ? 'http2' : 'http1';
  let commonOpts = optObject(json, 'common_http_protocol_options', at);
  let commonAt = child(at, 'common_http_protocol_options');
  let maxReq = optUint(json, 'max_requests_per_connection', at);
  const typed = optObject(json, 'typed_extension_protocol_options', at);
  const hpo = typed === undefined ? undefined : optObject(typed, HttpProtocolOptionsKey, child(at, 'typed_extension_protocol_options'));
  if (hpo !== undefined) {
    const hat = child(child(at, 'typed_extension_protocol_options'), HttpProtocolOptionsKey);
    const explicit = optObject(hpo, 'explicit_http_config', hat);
    if (explicit !== undefined) {
      protocol = optObject(explicit, 'http2_protocol_options', child(hat, 'explicit_http_config')) !== undefined ? 'http2' : 'http1';
    } else if (optObject(hpo, 'use_downstream_protocol_config', hat) !== undefined) {
      protocol = 'downstream';
    } else if (optObject(hpo, 'auto_config', hat) !== undefined) {
      // auto_config negotiates by ALPN over TLS; without TLS Envoy uses HTTP/1.1. We pick h2 only when ALPN offers it.
      protocol = 'http1';
    }
    const c = optObject(hpo, 'common_http_protocol_options', hat);
    if (c !== undefined) {
      commonOpts = c;
      commonAt = child(hat, 'common_http_protocol_options');
    }
  }
  if (commonOpts !== undefined) maxReq = optUint(commonOpts, 'max_requests_per_connection', commonAt) ?? maxReq;
  // Envoy's upstream idle_timeout default is 1h; Node servers close idle keep-alive sockets after 5s, so
  // reusing a socket idle for longer races the server's close. We cap at 4s unless configured.
  const idle = commonOpts === undefined ? undefined : optDurationMs(commonOpts, 'idle_timeout', commonAt);
  return { protocol, idleTimeoutMs: idle ?? 4000, maxRequestsPerConnection: maxReq ?? 0 };
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let i = 2; i * i <= n; i++) if (n % i === 0) return false;
  return true;
}
