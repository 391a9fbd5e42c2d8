/**
 * An HttpConnectionManager config (proto3 JSON) read once into frozen, typed options: limits and
 * timeouts with Envoy's defaults, the edge rules, upgrades, HTTP/1.0 acceptance, host port
 * stripping, path normalization, HTTP/2 settings. Every error names its field path (the xDS
 * client NACKs with it). The connection manager reads only these options, never the JSON.
 */
import { configError, optArr, optBool, optDurationMs, optObj, optStr, optUint, type Json } from './config-json.ts';
import { internalAddresses, localNodeAddress, type EdgeRules } from './downstream.ts';
import { parsePathNormalization, type PathNormalization } from './path-normalization.ts';

/** The options of one connection manager. */
export interface HcmOptions {
  readonly statPrefix: string;
  readonly idleTimeoutMs: number;
  readonly maxHeadersCount: number;
  readonly maxRequestsPerConnection: number;
  readonly maxHeaderBytes: number;
  readonly requestTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly serverName: string;
  readonly serverHeader: 'OVERWRITE' | 'APPEND_IF_ABSENT' | 'PASS_THROUGH';
  readonly edge: EdgeRules;
  /** Lower-case upgrade types routes may use (upgrade_configs). */
  readonly allowedUpgrades: ReadonlySet<string>;
  readonly maxConcurrentStreams: number;
  readonly initialWindowSize: number | undefined;
  readonly connectionWindowSize: number | undefined;
  readonly streamIdleTimeoutMs: number;
  readonly maxStreamDurationMs: number;
  readonly stripAnyHostPort: boolean;
  readonly stripMatchingHostPort: boolean;
  /** http_protocol_options.accept_http_10: serve HTTP/1.0 instead of answering 426. */
  readonly acceptHttp10: boolean;
  /** http_protocol_options.default_host_for_http_10: the Host of an HTTP/1.0 request without one. */
  readonly defaultHostForHttp10: string | undefined;
  readonly paths: PathNormalization;
}

const SERVER_HEADER = new Set(['OVERWRITE', 'APPEND_IF_ABSENT', 'PASS_THROUGH']);

/** Reads the options; throws TrellisError(HTTP_CONFIG_INVALID) naming the field on bad config. */
export function parseHcmOptions(c: Json, path: string): HcmOptions {
  const common = optObj(c.common_http_protocol_options, `${path}.common_http_protocol_options`) ?? {};
  const maxHeaderBytes = (optUint(c.max_request_headers_kb, `${path}.max_request_headers_kb`) ?? 60) * 1024;
  if (maxHeaderBytes === 0 || maxHeaderBytes > 8192 * 1024) configError(`${path}.max_request_headers_kb`, 'must be in [1, 8192]');
  const serverHeader = optStr(c.server_header_transformation, `${path}.server_header_transformation`) ?? 'OVERWRITE';
  if (!SERVER_HEADER.has(serverHeader)) configError(`${path}.server_header_transformation`, `unknown value '${serverHeader}'`);
  const iac = optObj(c.internal_address_config, `${path}.internal_address_config`);
  const cidrs = iac?.cidr_ranges === undefined ? undefined : optArr(iac.cidr_ranges, `${path}.internal_address_config.cidr_ranges`).map((r, i) => {
    const at = `${path}.internal_address_config.cidr_ranges[${i}]`;
    const o = optObj(r, at) ?? {};
    return { address: optStr(o.address_prefix, `${at}.address_prefix`) ?? '', prefixLen: optUint(o.prefix_len, `${at}.prefix_len`) ?? 0 };
  });
  const allowedUpgrades = new Set<string>();
  optArr(c.upgrade_configs, `${path}.upgrade_configs`).forEach((u, i) => {
    const o = optObj(u, `${path}.upgrade_configs[${i}]`) ?? {};
    if (optBool(o.enabled, `${path}.upgrade_configs[${i}].enabled`) === false) return;
    allowedUpgrades.add((optStr(o.upgrade_type, `${path}.upgrade_configs[${i}].upgrade_type`) ?? '').toLowerCase());
  });
  const h2o = optObj(c.http2_protocol_options, `${path}.http2_protocol_options`) ?? {};
  const initialWindowSize = optUint(h2o.initial_stream_window_size, `${path}.http2_protocol_options.initial_stream_window_size`);
  const connectionWindowSize = optUint(h2o.initial_connection_window_size, `${path}.http2_protocol_options.initial_connection_window_size`);
  // Envoy's bounds for both windows: [65535, 2147483647].
  for (const [v, f] of [[initialWindowSize, 'initial_stream_window_size'], [connectionWindowSize, 'initial_connection_window_size']] as const) {
    if (v !== undefined && (v < 65535 || v > 2147483647)) configError(`${path}.http2_protocol_options.${f}`, 'must be in [65535, 2147483647]');
  }
  const stripAnyHostPort = optBool(c.strip_any_host_port, `${path}.strip_any_host_port`) ?? false;
  const stripMatchingHostPort = optBool(c.strip_matching_host_port, `${path}.strip_matching_host_port`) ?? false;
  if (stripAnyHostPort && stripMatchingHostPort) configError(path, 'strip_any_host_port and strip_matching_host_port are mutually exclusive');
  const h1o = optObj(c.http_protocol_options, `${path}.http_protocol_options`) ?? {};
  const requestTimeoutMs = optDurationMs(c.request_timeout, `${path}.request_timeout`) ?? 0;
  return Object.freeze({
    statPrefix: optStr(c.stat_prefix, `${path}.stat_prefix`) ?? '',
    idleTimeoutMs: optDurationMs(common.idle_timeout, `${path}.common_http_protocol_options.idle_timeout`) ?? 3_600_000,
    maxHeadersCount: optUint(common.max_headers_count, `${path}.common_http_protocol_options.max_headers_count`) ?? 100,
    maxRequestsPerConnection: optUint(common.max_requests_per_connection, `${path}.common_http_protocol_options.max_requests_per_connection`) ?? 0,
    maxHeaderBytes,
    requestTimeoutMs,
    // Envoy disables request_headers_timeout by default; we keep node's 60s guard against slowloris unless configured.
    headersTimeoutMs: optDurationMs(c.request_headers_timeout, `${path}.request_headers_timeout`) || 60_000,
    serverName: optStr(c.server_name, `${path}.server_name`) ?? 'envoy',
    serverHeader: serverHeader as HcmOptions['serverHeader'],
    edge: Object.freeze({
      useRemoteAddress: optBool(c.use_remote_address, `${path}.use_remote_address`) ?? false,
      xffNumTrustedHops: optUint(c.xff_num_trusted_hops, `${path}.xff_num_trusted_hops`) ?? 0,
      generateRequestId: optBool(c.generate_request_id, `${path}.generate_request_id`) ?? true,
      preserveExternalRequestId: optBool(c.preserve_external_request_id, `${path}.preserve_external_request_id`) ?? false,
      internal: internalAddresses(cidrs),
      localAddress: localNodeAddress(),
    }),
    allowedUpgrades,
    maxConcurrentStreams: optUint(h2o.max_concurrent_streams, `${path}.http2_protocol_options.max_concurrent_streams`) ?? 1024,
    initialWindowSize,
    connectionWindowSize,
    streamIdleTimeoutMs: optDurationMs(c.stream_idle_timeout, `${path}.stream_idle_timeout`) ?? 300_000,
    maxStreamDurationMs: optDurationMs(common.max_stream_duration, `${path}.common_http_protocol_options.max_stream_duration`) ?? 0,
    stripAnyHostPort,
    stripMatchingHostPort,
    acceptHttp10: optBool(h1o.accept_http_10, `${path}.http_protocol_options.accept_http_10`) ?? false,
    defaultHostForHttp10: optStr(h1o.default_host_for_http_10, `${path}.http_protocol_options.default_host_for_http_10`) || undefined,
    paths: parsePathNormalization(c, path),
  });
}
