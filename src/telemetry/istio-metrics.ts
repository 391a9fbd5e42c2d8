/**
 * Istio's standard metrics: names, label sets and histogram buckets exactly as Istio's stats
 * filter emits them (https://istio.io/latest/docs/reference/config/metrics/), so Istio's Grafana
 * dashboards, Kiali and people's alert rules read Trellis proxies unchanged. Istio keeps Envoy's
 * default histogram buckets for all three histograms (durations in milliseconds, sizes in bytes).
 * Label values that do not come from a trusted, bounded source are `unknown` (Istio's word).
 */
import { MetricStore, Unknown, type MetricFamily } from './metric-store.ts';

/** Envoy's default histogram buckets, which Istio's request histograms use. */
export const IstioBuckets: readonly number[] = Object.freeze([0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000]);

/** The workload labels shared by every Istio metric, source side then destination side. */
export const PeerLabelNames = Object.freeze([
  'source_workload', 'source_canonical_service', 'source_canonical_revision', 'source_workload_namespace', 'source_principal', 'source_app', 'source_version', 'source_cluster',
  'destination_workload', 'destination_workload_namespace', 'destination_principal', 'destination_app', 'destination_version',
  'destination_service', 'destination_canonical_service', 'destination_canonical_revision', 'destination_service_name', 'destination_service_namespace', 'destination_cluster',
] as const);

/** Labels of the HTTP/gRPC metrics, in exposition order. */
export const HttpLabelNames: readonly string[] = Object.freeze(['reporter', ...PeerLabelNames, 'request_protocol', 'response_code', 'grpc_response_status', 'response_flags', 'connection_security_policy']);
/** Labels of the TCP metrics. */
export const TcpLabelNames: readonly string[] = Object.freeze(['reporter', ...PeerLabelNames, 'request_protocol', 'response_flags', 'connection_security_policy']);

/** Istio's metric names as the Telemetry API calls them (`metrics[].overrides[].match.metric`). */
export type IstioMetricName =
  | 'REQUEST_COUNT' | 'REQUEST_DURATION' | 'REQUEST_SIZE' | 'RESPONSE_SIZE'
  | 'GRPC_REQUEST_MESSAGES' | 'GRPC_RESPONSE_MESSAGES'
  | 'TCP_OPENED_CONNECTIONS' | 'TCP_CLOSED_CONNECTIONS' | 'TCP_SENT_BYTES' | 'TCP_RECEIVED_BYTES';

export const IstioMetricNames: readonly IstioMetricName[] = Object.freeze([
  'REQUEST_COUNT', 'REQUEST_DURATION', 'REQUEST_SIZE', 'RESPONSE_SIZE', 'GRPC_REQUEST_MESSAGES', 'GRPC_RESPONSE_MESSAGES',
  'TCP_OPENED_CONNECTIONS', 'TCP_CLOSED_CONNECTIONS', 'TCP_SENT_BYTES', 'TCP_RECEIVED_BYTES',
]);

/** The Istio metric families of one proxy. */
export interface IstioFamilies {
  readonly store: MetricStore;
  readonly requests: MetricFamily;
  readonly duration: MetricFamily;
  readonly requestBytes: MetricFamily;
  readonly responseBytes: MetricFamily;
  readonly requestMessages: MetricFamily;
  readonly responseMessages: MetricFamily;
  readonly tcpOpened: MetricFamily;
  readonly tcpClosed: MetricFamily;
  readonly tcpSent: MetricFamily;
  readonly tcpReceived: MetricFamily;
}

/** Creates the Istio families in a fresh store. */
export function istioFamilies(): IstioFamilies {
  const store = new MetricStore();
  const http = (name: string, help: string, type: 'counter' | 'histogram') => store.family({ name, help, type, labelNames: HttpLabelNames, ...(type === 'histogram' ? { buckets: IstioBuckets } : {}) });
  const tcp = (name: string, help: string) => store.family({ name, help, type: 'counter', labelNames: TcpLabelNames });
  return {
    store,
    requests: http('istio_requests_total', 'Requests handled by the proxy (Istio REQUEST_COUNT).', 'counter'),
    duration: http('istio_request_duration_milliseconds', 'Request duration in milliseconds (Istio REQUEST_DURATION).', 'histogram'),
    requestBytes: http('istio_request_bytes', 'Request body size in bytes (Istio REQUEST_SIZE).', 'histogram'),
    responseBytes: http('istio_response_bytes', 'Response body size in bytes (Istio RESPONSE_SIZE).', 'histogram'),
    requestMessages: http('istio_request_messages_total', 'gRPC messages sent by the client (Istio GRPC_REQUEST_MESSAGES).', 'counter'),
    responseMessages: http('istio_response_messages_total', 'gRPC messages sent by the server (Istio GRPC_RESPONSE_MESSAGES).', 'counter'),
    tcpOpened: tcp('istio_tcp_connections_opened_total', 'TCP connections opened (Istio TCP_OPENED_CONNECTIONS).'),
    tcpClosed: tcp('istio_tcp_connections_closed_total', 'TCP connections closed (Istio TCP_CLOSED_CONNECTIONS).'),
    tcpSent: tcp('istio_tcp_sent_bytes_total', 'Bytes sent to the downstream of a TCP connection (Istio TCP_SENT_BYTES).'),
    tcpReceived: tcp('istio_tcp_received_bytes_total', 'Bytes received from the downstream of a TCP connection (Istio TCP_RECEIVED_BYTES).'),
  };
}

/** A workload as metrics label it. All fields are label values (`unknown` when not known). */
export interface WorkloadLabels {
  readonly workload: string;
  readonly namespace: string;
  readonly app: string;
  readonly version: string;
  readonly canonicalService: string;
  readonly canonicalRevision: string;
  readonly cluster: string;
}

export const UnknownWorkload: WorkloadLabels = Object.freeze({
  workload: Unknown, namespace: Unknown, app: Unknown, version: Unknown, canonicalService: Unknown, canonicalRevision: Unknown, cluster: Unknown,
});

/**
 * A label value from an untrusted source (peer headers, Host header): printable, at most 253
 * characters (a DNS name's length), else `unknown`.
 */
export function boundedLabel(v: unknown): string {
  if (typeof v !== 'string' || v === '' || v.length > 253) return Unknown;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return Unknown;
  }
  return v;
}

/**
 * Istio's workload labels from xDS node metadata (WORKLOAD_NAME, NAMESPACE, LABELS, CLUSTER_ID), as
 * its stats filter derives them: app from `app` (or app.kubernetes.io/name), version from `version`,
 * canonical service/revision from Istio's labels, falling back to app / version / `latest`.
 */
export function workloadLabelsOf(meta: Readonly<Record<string, unknown>>): WorkloadLabels {
  const labels = (meta.LABELS !== null && typeof meta.LABELS === 'object' ? meta.LABELS : {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const app = str(labels.app) ?? str(labels['app.kubernetes.io/name']);
  const version = str(labels.version) ?? str(labels['app.kubernetes.io/version']);
  const workload = str(meta.WORKLOAD_NAME) ?? str(meta.NAME);
  return Object.freeze({
    workload: boundedLabel(workload),
    namespace: boundedLabel(str(meta.NAMESPACE)),
    app: boundedLabel(app),
    version: boundedLabel(version),
    canonicalService: boundedLabel(str(labels['service.istio.io/canonical-name']) ?? app ?? workload),
    canonicalRevision: boundedLabel(str(labels['service.istio.io/canonical-revision']) ?? version ?? 'latest'),
    cluster: boundedLabel(str(meta.CLUSTER_ID) ?? 'Kubernetes'),
  });
}

/** The service a request was for (`destination_service*`). */
export interface ServiceLabels {
  /** FQDN, e.g. reviews.default.svc.cluster.local. */
  readonly host: string;
  readonly name: string;
  readonly namespace: string;
}

export const UnknownService: ServiceLabels = Object.freeze({ host: Unknown, name: Unknown, namespace: Unknown });

/** Everything but the per-request outcome: the part of a label set one (route, cluster, peer) fixes. */
export interface PeerPair {
  readonly reporter: 'source' | 'destination';
  readonly source: WorkloadLabels;
  readonly sourcePrincipal: string;
  readonly destination: WorkloadLabels;
  readonly destinationPrincipal: string;
  readonly service: ServiceLabels;
}

/** The 20 label values of reporter + peer labels, in HttpLabelNames / TcpLabelNames order. */
export function peerLabelValues(p: PeerPair): string[] {
  const s = p.source;
  const d = p.destination;
  return [
    p.reporter,
    s.workload, s.canonicalService, s.canonicalRevision, s.namespace, p.sourcePrincipal, s.app, s.version, s.cluster,
    d.workload, d.namespace, p.destinationPrincipal, d.app, d.version,
    p.service.host, d.canonicalService, d.canonicalRevision, p.service.name, p.service.namespace, d.cluster,
  ];
}
