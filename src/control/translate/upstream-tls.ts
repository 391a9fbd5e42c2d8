import type { ClientTlsSettings } from '../../config/views.ts';
/**
 * DestinationRule client TLS settings -> Envoy UpstreamTlsContext transport socket, as Istio:
 * SIMPLE / MUTUAL with file paths (certificate files read by the proxy) or `credentialName`
 * (SDS secrets `kubernetes://<name>` and `kubernetes://<name>-cacert`), ISTIO_MUTUAL with the
 * workload's SDS identity `default`, root `ROOTCA`, SNI `outbound_.<port>_.<subset>_.<host>`
 * and Istio's ALPN, verifying the destination's SPIFFE identities. DISABLE -> no TLS.
 * SIMPLE / MUTUAL without `caCertificates` or `credentialName` verify the server against the OS
 * roots (Istio's VERIFY_CERTIFICATE_AT_CLIENT, default since 1.21) unless `insecureSkipVerify`,
 * and without `sni` the SNI and the expected name come from the request's host (Envoy's
 * `auto_sni` / `auto_san_validation`, Istio's ENABLE_AUTO_SNI): see `autoSniOptions`.
 */

type Json = Record<string, unknown>;

const ads = { ads: {}, resource_api_version: 'V3' };

/** SDS config reference over ADS for a secret name. */
export function sdsSecret(name: string): Json {
  return { name, sds_config: ads };
}

/** The cluster a stock Envoy's bootstrap names for its local identity agent (Istio's `sds-grpc`). */
export const WorkloadSdsCluster = 'sds-grpc';

/**
 * The workload's own certificate `default`, Istio's way: from the local SDS server of the identity
 * agent (`sds-grpc`), never from the control plane, which never sees the private key. The trust
 * bundle `ROOTCA` holds nothing secret and comes over ADS from the control plane (`sdsSecret`).
 */
export function workloadSdsSecret(name = 'default'): Json {
  return {
    name,
    sds_config: {
      api_config_source: { api_type: 'GRPC', grpc_services: [{ envoy_grpc: { cluster_name: WorkloadSdsCluster } }], set_node_on_first_message_only: true, transport_api_version: 'V3' },
      initial_fetch_timeout: '0s',
      resource_api_version: 'V3',
    },
  };
}

/** Istio's ISTIO_MUTUAL client context: workload certificate, ROOTCA, the peers' SPIFFE ids, Istio's ALPN. */
export function istioMutualContext(identities: readonly string[], sni: string, metadataExchange = true): Json {
  return {
    common_tls_context: {
      tls_certificate_sds_secret_configs: [workloadSdsSecret()],
      combined_validation_context: {
        default_validation_context: identities.length > 0 ? { match_typed_subject_alt_names: sanMatchers(identities) } : {},
        validation_context_sds_secret_config: sdsSecret('ROOTCA'),
      },
      // Istio's ALPNInMeshWithMxc; without the exchange filter only `istio` (see meshTcpAlpn).
      alpn_protocols: metadataExchange ? ['istio-peer-exchange', 'istio'] : ['istio'],
    },
    sni,
  };
}

/** The transport socket wrapping an UpstreamTlsContext. */
export function tlsTransportSocket(ctx: Json): Json {
  return { name: 'envoy.transport_sockets.tls', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', ...ctx } };
}

function sanMatchers(sans: readonly string[]): Json[] {
  return sans.map((s) => ({ san_type: s.startsWith('spiffe://') ? 'URI' : 'DNS', matcher: { exact: s } }));
}

/** Istio's SNI for ISTIO_MUTUAL upstream connections. */
export function istioMutualSni(port: number, subset: string, host: string): string {
  return `outbound_.${port}_.${subset}_.${host}`;
}

export interface UpstreamTlsInput {
  readonly tls: ClientTlsSettings | undefined;
  readonly port: number;
  readonly subset: string;
  readonly host: string;
  /** SPIFFE identities of the destination's workloads, for ISTIO_MUTUAL when `subjectAltNames` is unset. */
  readonly identities: readonly string[];
  /** The OS roots file SIMPLE/MUTUAL verify against when the rule names no CA (MeshSettings.systemCaBundle). */
  readonly systemCaBundle: string;
  /** The proxy runs Istio's TCP metadata exchange (its ALPN is offered only then). */
  readonly metadataExchange: boolean;
}

/** The cluster's `transport_socket`, or undefined for plaintext. */
export function upstreamTransportSocket(input: UpstreamTlsInput): Json | undefined {
  const tls = input.tls;
  if (tls === undefined || tls.mode === undefined || tls.mode === 'DISABLE') return undefined;
  const common: Json = {};
  const ctx: Json = { common_tls_context: common };
  const sans = tls.subjectAltNames ?? [];
  if (tls.mode === 'ISTIO_MUTUAL') {
    return tlsTransportSocket(istioMutualContext(sans.length > 0 ? sans : input.identities, tls.sni ?? istioMutualSni(input.port, input.subset, input.host), input.metadataExchange));
  } else if (tls.mode === 'SIMPLE' || tls.mode === 'MUTUAL') {
    const validation: Json = {};
    if (sans.length > 0) validation.match_typed_subject_alt_names = sanMatchers(sans);
    if (tls.credentialName !== undefined && tls.credentialName !== '') {
      if (tls.mode === 'MUTUAL') common.tls_certificate_sds_secret_configs = [sdsSecret(`kubernetes://${tls.credentialName}`)];
      common.combined_validation_context = {
        default_validation_context: validation,
        validation_context_sds_secret_config: sdsSecret(`kubernetes://${tls.credentialName}-cacert`),
      };
    } else {
      if (tls.mode === 'MUTUAL' && tls.clientCertificate !== undefined && tls.privateKey !== undefined) {
        common.tls_certificates = [{ certificate_chain: { filename: tls.clientCertificate }, private_key: { filename: tls.privateKey } }];
      }
      // No CA named: the OS roots, as Istio's agent serves them for `caCertificates` unset ("system").
      const ca = tls.caCertificates !== undefined && tls.caCertificates !== '' ? tls.caCertificates : input.systemCaBundle;
      validation.trusted_ca = { filename: ca };
      if (tls.insecureSkipVerify !== true) common.validation_context = validation;
    }
    if (tls.sni !== undefined && tls.sni !== '') ctx.sni = tls.sni;
  } else {
    return undefined;
  }
  return tlsTransportSocket(ctx);
}

/**
 * Envoy's UpstreamHttpProtocolOptions for a SIMPLE / MUTUAL rule, as Istio sets them: `auto_sni`
 * when the rule has no `sni` (the SNI is the request's host), and then `auto_san_validation` too
 * when it names no `subjectAltNames` and does not skip verification (the server certificate must
 * carry that host). Undefined for other modes or when neither applies.
 */
export function autoSniOptions(tls: ClientTlsSettings | undefined): { auto_sni: true; auto_san_validation?: true } | undefined {
  if (tls?.mode !== 'SIMPLE' && tls?.mode !== 'MUTUAL') return undefined;
  if (tls.sni !== undefined && tls.sni !== '') return undefined;
  const sanValidation = (tls.subjectAltNames ?? []).length === 0 && tls.insecureSkipVerify !== true;
  return sanValidation ? { auto_sni: true, auto_san_validation: true } : { auto_sni: true };
}

/**
 * Auto-mTLS (Istio's enableAutoMtls): ISTIO_MUTUAL to endpoints labelled tlsMode=istio (they run a
 * sidecar that accepts mTLS), plaintext to the rest, chosen per endpoint by transport_socket_matches.
 */
export function autoMtlsSocketMatches(input: Omit<UpstreamTlsInput, 'tls' | 'systemCaBundle'>): Json[] {
  return [
    { name: 'tlsMode-istio', match: { tlsMode: 'istio' }, transport_socket: tlsTransportSocket(istioMutualContext(input.identities, istioMutualSni(input.port, input.subset, input.host), input.metadataExchange)) },
    { name: 'tlsMode-disabled', match: {}, transport_socket: { name: 'envoy.transport_sockets.raw_buffer', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer' } } },
  ];
}
