/**
 * Network filters and TLS contexts the listeners are made of: the HTTP connection manager (RDS
 * over ADS, http_filters stats -> fault -> cors -> router, request ids, `use_remote_address` on the edge),
 * the TCP proxy (one cluster or weighted clusters), the TLS inspector, and the downstream TLS
 * context of gateway servers (files, SDS `kubernetes://<credentialName>`, or the workload
 * identity for ISTIO_MUTUAL).
 */
import { sdsSecret, workloadSdsSecret } from './upstream-tls.ts';
import { AdsConfigSource } from './clusters.ts';
import { HcmType, TcpProxyType } from '../../xds/references.ts';
import type { ServerTlsSettings } from '../../config/views.ts';
import type { PathNormalizationMode } from '../../config/mesh-config.ts';

type Json = Record<string, unknown>;

export const HcmFilterName = 'envoy.filters.network.http_connection_manager';
export const TcpProxyFilterName = 'envoy.filters.network.tcp_proxy';

const fault = { name: 'envoy.filters.http.fault', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault' } };
const cors = { name: 'envoy.filters.http.cors', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors' } };
/** Istio's stats (trellis.filters.http.stats, src/xds/proto/trellis/filters/http/stats/v1/stats.proto). */
export const StatsFilterType = 'type.googleapis.com/trellis.filters.http.stats.v1.Stats';

/**
 * A Trellis filter's config for a proxy of any kind: wrapped in a TypedStruct (Envoy looks the
 * filter up by the inner type URL, so a stock Envoy, which has no such filter, skips it as
 * optional instead of failing to parse a message type it does not know), and `is_optional`.
 */
export function trellisHttpFilter(name: string, typeUrl: string, value: Json): Json {
  return { name, is_optional: true, typed_config: { '@type': 'type.googleapis.com/xds.type.v3.TypedStruct', type_url: typeUrl, value } };
}

function statsFilter(reporter: 'SOURCE' | 'DESTINATION'): Json {
  return trellisHttpFilter('trellis.filters.http.stats', StatsFilterType, { reporter });
}
const router = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };

export interface HcmOptions {
  readonly statPrefix: string;
  readonly routeConfigName: string;
  /** Edge proxies trust the peer address (Istio sets it on gateways). */
  readonly useRemoteAddress?: boolean;
  /** Proxyless gRPC understands fault and router only. */
  readonly proxyless?: boolean;
  /** Who reports Istio's metrics on this HCM: DESTINATION on inbound listeners, SOURCE (default) elsewhere. */
  readonly reporter?: 'SOURCE' | 'DESTINATION';
  /** Adds Envoy's dynamic_forward_proxy filter (the HTTP proxy listener of an explicit-capture sidecar under ALLOW_ANY). */
  readonly dynamicForwardProxy?: boolean;
  /** MeshConfig.pathNormalization (Istio's default BASE). */
  readonly pathNormalization?: PathNormalizationMode;
  /** Also accept CONNECT (the explicit-mode HTTP proxy listener: Node's fetch tunnels every request). */
  readonly allowConnect?: boolean;
}

/**
 * The HCM path fields for each MeshConfig.pathNormalization mode, as istiod sets them: BASE is
 * RFC 3986 normalization (with backslashes as slashes), MERGE_SLASHES adds slash merging,
 * DECODE_AND_MERGE_SLASHES also unescapes %2F and %5C before both; NONE leaves the path alone.
 */
function pathFields(mode: PathNormalizationMode): Json {
  switch (mode) {
    case 'NONE':
      return { normalize_path: false, merge_slashes: false, path_with_escaped_slashes_action: 'KEEP_UNCHANGED' };
    case 'BASE':
      return { normalize_path: true, merge_slashes: false, path_with_escaped_slashes_action: 'KEEP_UNCHANGED' };
    case 'MERGE_SLASHES':
      return { normalize_path: true, merge_slashes: true, path_with_escaped_slashes_action: 'KEEP_UNCHANGED' };
    case 'DECODE_AND_MERGE_SLASHES':
      return { normalize_path: true, merge_slashes: true, path_with_escaped_slashes_action: 'UNESCAPE_AND_FORWARD' };
  }
}

/** The DNS cache the dynamic forward proxy filter and cluster share (Envoy requires the same config on both). */
export const ForwardProxyDnsCache = Object.freeze({ name: 'dynamic_forward_proxy_cache_config', dns_lookup_family: 'V4_PREFERRED' });

const dynamicForwardProxy = {
  name: 'envoy.filters.http.dynamic_forward_proxy',
  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig', dns_cache_config: ForwardProxyDnsCache },
};

/** The HttpConnectionManager typed config (for api_listener and for filter chains). */
export function hcmConfig(o: HcmOptions): Json {
  const c: Json = {
    '@type': HcmType,
    stat_prefix: o.statPrefix,
    rds: { route_config_name: o.routeConfigName, config_source: AdsConfigSource },
    // Stats first: it must see every request, including those a later filter answers.
    http_filters: o.proxyless === true ? [fault, router] : [statsFilter(o.reporter ?? 'SOURCE'), fault, cors, ...(o.dynamicForwardProxy === true ? [dynamicForwardProxy] : []), router],
  };
  if (o.proxyless !== true) {
    c.generate_request_id = true;
    c.use_remote_address = o.useRemoteAddress === true;
    Object.assign(c, pathFields(o.pathNormalization ?? 'BASE'));
    // As Istio: every HCM allows WebSocket upgrades (routes need no opt-in).
    c.upgrade_configs = o.allowConnect === true ? [{ upgrade_type: 'websocket' }, { upgrade_type: 'CONNECT' }] : [{ upgrade_type: 'websocket' }];
  }
  return c;
}

/** The HCM as a network filter. */
export function hcmFilter(o: HcmOptions): Json {
  return { name: HcmFilterName, typed_config: hcmConfig(o) };
}

/** A tcp_proxy to one cluster, or weighted clusters when `clusters` has more than one entry. */
export function tcpProxyFilter(statPrefix: string, clusters: readonly { name: string; weight: number }[], idleTimeout?: string): Json {
  const c: Json = { '@type': TcpProxyType, stat_prefix: statPrefix };
  if (clusters.length === 1) c.cluster = clusters[0].name;
  else c.weighted_clusters = { clusters: clusters.map((x) => ({ name: x.name, weight: x.weight })) };
  if (idleTimeout !== undefined) c.idle_timeout = idleTimeout;
  return { name: TcpProxyFilterName, typed_config: c };
}

/** The TLS inspector listener filter (SNI and ALPN for filter chain match). */
export const TlsInspector = Object.freeze({
  name: 'envoy.filters.listener.tls_inspector',
  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' },
});

/** Istio's TLS version names (`TLSV1_2`) to Envoy's enum (`TLSv1_2`); undefined for unset/unknown. */
function tlsVersion(v: string | undefined): string | undefined {
  const m = /^TLSV(1_[0-3])$/.exec(v ?? '');
  return m !== null ? `TLSv${m[1]}` : v === 'TLS_AUTO' ? 'TLS_AUTO' : undefined;
}

/** The HTTP inspector listener filter (sets application protocol http/1.0, http/1.1 or h2c on plaintext). */
export const HttpInspector = Object.freeze({
  name: 'envoy.filters.listener.http_inspector',
  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector' },
});

/** What the HTTP inspector reports for plaintext HTTP (Istio's protocol-sniffing chain match). */
export const SniffedHttpProtocols: readonly string[] = Object.freeze(['http/1.0', 'http/1.1', 'h2c']);

/**
 * Istio's protocol sniffing for ports of unknown protocol: an HTTP chain matched on the
 * inspector's application protocols, then a TCP chain for everything else.
 */
export function sniffedChains(match: Record<string, unknown>, http: Record<string, unknown>, tcp: Record<string, unknown>): Record<string, unknown>[] {
  return [
    { filter_chain_match: { ...match, transport_protocol: 'raw_buffer', application_protocols: [...SniffedHttpProtocols] }, filters: [http] },
    { ...(Object.keys(match).length > 0 ? { filter_chain_match: match } : {}), filters: [tcp] },
  ];
}

/** A DownstreamTlsContext transport socket for a gateway server's TLS settings; undefined for PASSTHROUGH/none. */
export function downstreamTransportSocket(tls: ServerTlsSettings | undefined, http: boolean): Json | undefined {
  const mode = tls?.mode ?? 'PASSTHROUGH';
  if (tls === undefined || (mode !== 'SIMPLE' && mode !== 'MUTUAL' && mode !== 'ISTIO_MUTUAL' && mode !== 'OPTIONAL_MUTUAL')) return undefined;
  const common: Json = {};
  if (http) common.alpn_protocols = ['h2', 'http/1.1'];
  const sans = tls.subjectAltNames ?? [];
  const sanMatch = sans.map((s) => ({ san_type: s.startsWith('spiffe://') ? 'URI' : 'DNS', matcher: { exact: s } }));
  if (mode === 'ISTIO_MUTUAL') {
    common.tls_certificate_sds_secret_configs = [workloadSdsSecret()];
    common.combined_validation_context = { default_validation_context: sanMatch.length > 0 ? { match_typed_subject_alt_names: sanMatch } : {}, validation_context_sds_secret_config: sdsSecret('ROOTCA') };
  } else if (tls.credentialName !== undefined && tls.credentialName !== '') {
    common.tls_certificate_sds_secret_configs = [sdsSecret(`kubernetes://${tls.credentialName}`)];
    if (mode !== 'SIMPLE') {
      common.combined_validation_context = {
        default_validation_context: sanMatch.length > 0 ? { match_typed_subject_alt_names: sanMatch } : {},
        validation_context_sds_secret_config: sdsSecret(`kubernetes://${tls.credentialName}-cacert`),
      };
    }
  } else {
    if (tls.serverCertificate !== undefined && tls.privateKey !== undefined) {
      common.tls_certificates = [{ certificate_chain: { filename: tls.serverCertificate }, private_key: { filename: tls.privateKey } }];
    }
    if (mode !== 'SIMPLE' && tls.caCertificates !== undefined) {
      common.validation_context = { trusted_ca: { filename: tls.caCertificates }, ...(sanMatch.length > 0 ? { match_typed_subject_alt_names: sanMatch } : {}) };
    }
  }
  const params: Json = {};
  const min = tlsVersion(tls.minProtocolVersion);
  const max = tlsVersion(tls.maxProtocolVersion);
  if (min !== undefined) params.tls_minimum_protocol_version = min;
  if (max !== undefined) params.tls_maximum_protocol_version = max;
  if (tls.cipherSuites !== undefined && tls.cipherSuites.length > 0) params.cipher_suites = [...tls.cipherSuites];
  if (Object.keys(params).length > 0) common.tls_params = params;
  const ctx: Json = { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext', common_tls_context: common };
  if (mode === 'MUTUAL' || mode === 'ISTIO_MUTUAL') ctx.require_client_certificate = true;
  return { name: 'envoy.transport_sockets.tls', typed_config: ctx };
}

/** `{ socket_address: { address, port_value } }`. */
export function socketAddress(address: string, port: number): Json {
  return { socket_address: { address, port_value: port } };
}

/** Istio's ALPN values a mesh client offers on mTLS (inbound mTLS chains in PERMISSIVE match them). */
export const IstioMtlsAlpn = Object.freeze(['istio-peer-exchange', 'istio', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2']);

/**
 * Istio's TCP metadata exchange (istio-proxy's `istio.metadata_exchange` network filter, as istiod
 * configures it): on inbound TCP chains over mTLS before the tcp_proxy, and on outbound clusters
 * over ISTIO_MUTUAL as an upstream network filter. Sent only to proxies that have the filter
 * (`ProxyNode.metadataExchange`): a stock Envoy rejects an unknown network filter.
 */
export const MetadataExchangeFilter = Object.freeze({
  name: 'istio.metadata_exchange',
  typed_config: {
    '@type': 'type.googleapis.com/xds.type.v3.TypedStruct',
    type_url: 'type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange',
    value: { protocol: 'istio-peer-exchange', enable_discovery: true },
  },
});

/**
 * The ALPN of a mesh TCP connection over mTLS, both sides: with the exchange, `istio-peer-exchange`
 * first (Istio's ALPNInMeshWithMxc); without it only `istio`, as Istio with its exchange ALPN off,
 * so that neither side of a proxy without the filter ever selects it (it would forward the peer's
 * prefix to the application).
 */
export function meshTcpAlpn(metadataExchange: boolean): string[] {
  return metadataExchange ? ['istio-peer-exchange', 'istio'] : ['istio'];
}

/**
 * The inbound mTLS server context (PeerAuthentication STRICT / PERMISSIVE): the workload
 * certificate, a client certificate required and verified against ROOTCA, from this trust domain.
 */
export function inboundMtlsTransportSocket(trustDomain: string, http: boolean, metadataExchange = true): Json {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      require_client_certificate: true,
      common_tls_context: {
        tls_certificate_sds_secret_configs: [workloadSdsSecret()],
        combined_validation_context: {
          default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: `spiffe://${trustDomain}/` } }] },
          validation_context_sds_secret_config: sdsSecret('ROOTCA'),
        },
        alpn_protocols: http ? ['h2', 'http/1.1'] : meshTcpAlpn(metadataExchange),
      },
    },
  };
}
