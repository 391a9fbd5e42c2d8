/**
 * Parsing and validating an xDS Listener into a frozen `CompiledListener`: its address, listener
 * filters, filter chains (match criteria, optional TLS termination, and either an HTTP connection
 * manager or a TCP proxy) and default chain. The HTTP connection manager is built by a factory
 * given from outside (the HTTP engine), so this module knows nothing of HTTP.
 */
import type { XdsJson } from '../../xds/types.ts';
import { child, configError, isObj, optArr, optBool, optObj, optStr, optUint } from '../xds-json.ts';
import type { FilterChainMatchJson } from './filter-chain-match.ts';
import { parseDownstreamTransportSocket, type DownstreamTlsConfig } from './downstream-tls.ts';
import { parseTcpProxy, type TcpProxyConfig } from '../tcp/tcp-proxy.ts';
import { HcmType, TcpProxyType } from '../../xds/references.ts';
import { MetadataExchangeFilterName, metadataExchangeProtocol } from '../tcp/metadata-exchange-config.ts';
import { compileNetworkRbac, NetworkRbacType, type NetworkRbac } from '../filters/rbac/rbac-network.ts';
import { compileNetworkExtAuthz, NetworkExtAuthzType, type NetworkExtAuthz } from '../filters/ext-authz/ext-authz-network.ts';
import { describeError } from '../../errors.ts';

/** What the listener layer needs from an HTTP connection manager built for one filter chain. */
export interface HttpConnectionHandler {
  /**
   * Serve HTTP on a connection; `protocol` was negotiated (ALPN) or sniffed. `meta.originalDestination`
   * (transparent capture) is where ORIGINAL_DST clusters (PassthroughCluster) connect.
   */
  handleConnection(socket: import('node:net').Socket, protocol: 'http/1.1' | 'h2', meta?: { readonly originalDestination?: { readonly address: string; readonly port: number } }): void;
  /**
   * Ask open connections to finish within `graceMs`: HTTP/1 `connection: close` after the current
   * response, HTTP/2 GOAWAY, idle keep-alive connections closed in the second half; then destroy the rest.
   */
  shutdown?(graceMs: number): void;
  /** Releases timers and resources; open connections are left to the caller. */
  close?(): void;
}

/**
 * Builds (and validates: throws to NACK) an HTTP connection manager from its typed config;
 * `direction` is its listener's traffic_direction (tracing span kind, stats reporter),
 * `listenerMetadata` the listener's `metadata.filter_metadata` (for filters that read it).
 */
export type HcmFactory = (hcm: XdsJson, at: string, direction: CompiledListener['trafficDirection'], listenerMetadata?: Readonly<Record<string, XdsJson>>) => HttpConnectionHandler;

/** A network filter that admits or refuses a connection before the terminal filter. */
export type NetworkGate = { readonly kind: 'rbac'; readonly rbac: NetworkRbac } | { readonly kind: 'ext_authz'; readonly extAuthz: NetworkExtAuthz };

export type ChainAction =
  | { readonly kind: 'http'; readonly hcm: HttpConnectionHandler; readonly json: XdsJson }
  /** `peerExchange`: the ALPN protocol of an `istio.metadata_exchange` filter before the tcp_proxy. */
  | { readonly kind: 'tcp'; readonly tcp: TcpProxyConfig; readonly peerExchange: string | undefined };

export interface CompiledChain {
  readonly name: string;
  readonly match: FilterChainMatchJson | undefined;
  readonly tls: DownstreamTlsConfig | undefined;
  /** Network RBAC and ext_authz filters before the terminal filter, in order. */
  readonly gates: readonly NetworkGate[];
  readonly action: ChainAction;
}

export interface CompiledListener {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** false: not bound itself; receives connections handed over by a `use_original_dst` listener. */
  readonly bindToPort: boolean;
  /** `use_original_dst`: hand each connection to the listener for its original destination. */
  readonly useOriginalDst: boolean;
  /**
   * Filter chains match on the original destination (SO_ORIGINAL_DST), as Envoy's original_dst
   * listener filter restores it: set by that filter and implied by `use_original_dst`. Istio's
   * virtualInbound has the filter but not the hand-off (its chains match `destination_port`).
   */
  readonly restoreOriginalDst: boolean;
  readonly tlsInspector: boolean;
  readonly httpInspector: boolean;
  readonly chains: readonly CompiledChain[];
  readonly defaultChain: CompiledChain | undefined;
  /** `traffic_direction`: INBOUND listeners report Istio metrics as the destination, others as the source. */
  readonly trafficDirection: 'INBOUND' | 'OUTBOUND' | 'UNSPECIFIED';
  /** The JSON it was built from, for /config_dump and change detection. */
  readonly json: XdsJson;
  /** Stable serialization of json, to tell a changed listener from an unchanged one. */
  readonly fingerprint: string;
}

const listenerFilterNames: Record<string, 'tls' | 'http' | 'original_dst' | 'ignore'> = {
  'envoy.filters.listener.tls_inspector': 'tls',
  'envoy.listener.tls_inspector': 'tls',
  'envoy.filters.listener.http_inspector': 'http',
  'envoy.listener.http_inspector': 'http',
  'envoy.filters.listener.original_dst': 'original_dst',
  'envoy.listener.original_dst': 'original_dst',
};
const listenerFilterTypes: Record<string, 'tls' | 'http' | 'original_dst'> = {
  'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector': 'tls',
  'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector': 'http',
  'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst': 'original_dst',
};

function compileChain(raw: unknown, at: string, hcmFactory: HcmFactory, direction: CompiledListener['trafficDirection'], listenerMetadata: Readonly<Record<string, XdsJson>> | undefined): CompiledChain {
  if (!isObj(raw)) configError(at, 'expected an object');
  const match = optObj(raw.filter_chain_match, child(at, 'filter_chain_match')) as FilterChainMatchJson | undefined;
  const tls = parseDownstreamTransportSocket(optObj(raw.transport_socket, child(at, 'transport_socket')), child(at, 'transport_socket'));
  const filters = optArr(raw.filters, child(at, 'filters'));
  let action: ChainAction | undefined;
  let peerExchange: string | undefined;
  const gates: NetworkGate[] = [];
  filters.forEach((f, i) => {
    const fp = child(child(at, 'filters'), i);
    if (!isObj(f)) configError(fp, 'expected an object');
    const typed = optObj(f.typed_config, child(fp, 'typed_config'));
    const type = typed?.['@type'];
    const name = optStr(f.name, child(fp, 'name')) ?? '';
    if (type === HcmType) {
      if (action) configError(fp, 'only one terminal network filter per chain is supported');
      action = { kind: 'http', hcm: hcmFactory(typed!, child(fp, 'typed_config'), direction, listenerMetadata), json: typed! };
    } else if (type === NetworkRbacType || type === NetworkExtAuthzType) {
      if (action) configError(fp, 'network filters must come before the terminal filter');
      try {
        gates.push(type === NetworkRbacType ? { kind: 'rbac', rbac: compileNetworkRbac(typed!, 'typed_config') } : { kind: 'ext_authz', extAuthz: compileNetworkExtAuthz(typed!, 'typed_config') });
      } catch (err) {
        configError(fp, describeError(err));
      }
    } else if (type === TcpProxyType) {
      if (action) configError(fp, 'only one terminal network filter per chain is supported');
      action = { kind: 'tcp', tcp: parseTcpProxy(typed!, child(fp, 'typed_config')), peerExchange };
    } else {
      // Istio's TCP metadata exchange runs in the TCP proxy; on an HTTP chain it has nothing to do
      // (HTTP peers exchange metadata in headers), as in istio-proxy, where the ALPN never selects it there.
      const protocol = metadataExchangeProtocol(f, fp);
      if (protocol === undefined) configError(fp, `unsupported network filter '${name}' (${String(type)})`);
      if (action) configError(fp, `${MetadataExchangeFilterName} must come before the terminal filter`);
      peerExchange = protocol;
    }
  });
  if (action === undefined) configError(child(at, 'filters'), 'a filter chain needs http_connection_manager or tcp_proxy');
  return Object.freeze({ name: optStr(raw.name, child(at, 'name')) ?? '', match, tls, gates: Object.freeze(gates), action });
}

/** Canonical JSON (sorted keys) so equal listeners compare equal whatever the key order. */
export function fingerprintOf(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(fingerprintOf).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${fingerprintOf((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function trafficDirection(json: XdsJson, at: string): CompiledListener['trafficDirection'] {
  const d = optStr(json.traffic_direction, child(at, 'traffic_direction')) ?? 'UNSPECIFIED';
  if (d !== 'INBOUND' && d !== 'OUTBOUND' && d !== 'UNSPECIFIED') configError(child(at, 'traffic_direction'), `expected INBOUND, OUTBOUND or UNSPECIFIED, got '${d}'`);
  return d;
}

/** Validates and compiles one Listener. Throws TrellisError('XDS_INVALID') naming the field. */
export function compileListener(json: XdsJson, hcmFactory: HcmFactory): CompiledListener {
  const name = typeof json.name === 'string' ? json.name : '';
  const at = `listener '${name}'`;
  if (name === '') configError(at, 'name is required');
  if (isObj(json.api_listener)) configError(child(at, 'api_listener'), 'API listeners are for proxyless gRPC clients, not for trellis proxy');
  const address = optObj(json.address, child(at, 'address'));
  const sock = address ? optObj(address.socket_address, child(child(at, 'address'), 'socket_address')) : undefined;
  if (sock === undefined) configError(child(at, 'address.socket_address'), 'required (only socket addresses are supported)');
  const sp = child(at, 'address.socket_address');
  const host = optStr(sock.address, child(sp, 'address')) ?? '';
  if (host === '') configError(child(sp, 'address'), 'required');
  const port = optUint(sock.port_value, child(sp, 'port_value'), 65535) ?? 0;
  const protocol = optStr(sock.protocol, child(sp, 'protocol'));
  if (protocol !== undefined && protocol !== 'TCP') configError(child(sp, 'protocol'), `unsupported protocol ${protocol}`);
  let tlsInspector = false;
  let httpInspector = false;
  let originalDstFilter = false;
  optArr(json.listener_filters, child(at, 'listener_filters')).forEach((f, i) => {
    const fp = child(child(at, 'listener_filters'), i);
    if (!isObj(f)) configError(fp, 'expected an object');
    const typed = optObj(f.typed_config, child(fp, 'typed_config'));
    const kind = (typed && listenerFilterTypes[String(typed['@type'])]) ?? listenerFilterNames[optStr(f.name, child(fp, 'name')) ?? ''];
    if (kind === undefined) configError(fp, `unsupported listener filter '${optStr(f.name, child(fp, 'name')) ?? typed?.['@type']}'`);
    if (kind === 'tls') tlsInspector = true;
    else if (kind === 'http') httpInspector = true;
    else if (kind === 'original_dst') originalDstFilter = true;
  });
  const direction = trafficDirection(json, at);
  const meta = optObj(json.metadata, child(at, 'metadata'));
  const listenerMetadata = meta ? (optObj(meta.filter_metadata, child(child(at, 'metadata'), 'filter_metadata')) as Readonly<Record<string, XdsJson>> | undefined) : undefined;
  const chains = optArr(json.filter_chains, child(at, 'filter_chains')).map((c, i) => compileChain(c, child(child(at, 'filter_chains'), i), hcmFactory, direction, listenerMetadata));
  const def = optObj(json.default_filter_chain, child(at, 'default_filter_chain'));
  const defaultChain = def ? compileChain(def, child(at, 'default_filter_chain'), hcmFactory, direction, listenerMetadata) : undefined;
  if (chains.length === 0 && defaultChain === undefined) configError(child(at, 'filter_chains'), 'a listener needs at least one filter chain');
  return Object.freeze({
    name,
    host,
    port,
    bindToPort: optBool(json.bind_to_port, child(at, 'bind_to_port')) ?? true,
    useOriginalDst: optBool(json.use_original_dst, child(at, 'use_original_dst')) ?? false,
    restoreOriginalDst: (optBool(json.use_original_dst, child(at, 'use_original_dst')) ?? false) || originalDstFilter,
    tlsInspector,
    httpInspector,
    chains: Object.freeze(chains),
    defaultChain,
    trafficDirection: direction,
    json,
    fingerprint: fingerprintOf(json),
  });
}
