/**
 * Writes a proxy's resolved Telemetry (telemetry.ts) into its listeners, in Envoy's own fields so a
 * stock Envoy reads the same config: per HTTP connection manager the stats filter's metric
 * overrides, `tracing` (OpenTelemetry or Zipkin tracer, sampling, Istio's span tags) and
 * `access_log` (file logger, Istio's default format, CEL filter); per TCP proxy `access_log`.
 * The side is the listener's: INBOUND is SERVER, everything else (outbound, gateways) CLIENT.
 * Also the collector clusters the tracers name, when the proxy's CDS lacks them.
 */
import type { MeshSnapshot } from '../snapshot/snapshot.ts';
import type { ProxyNode } from '../proxy-node.ts';
import { outboundClusterName } from './names.ts';
import { allHttpMetricsDropped, type MetricOverrideJson, type ResolvedAccessLog, type ResolvedTracing, type TrafficSide, type TracingProvider } from './telemetry.ts';
import { DefaultConnectTimeout } from './cluster-policy.ts';

type Json = Record<string, unknown>;

/** What one side of a proxy gets. */
export interface SideTelemetry {
  readonly metrics: readonly MetricOverrideJson[];
  readonly tracing: ResolvedTracing | undefined;
  readonly accessLogs: readonly ResolvedAccessLog[];
}

export const OtelTracerType = 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig';
export const ZipkinTracerType = 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig';
const FileAccessLogType = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
const CelFilterType = 'type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter';

/**
 * Istio's default access log line (EnvoyTextLogFormat), plus the trace id and both peers' SPIFFE
 * principals, which Trellis adds to the default (docs/telemetry.md).
 */
export const DefaultTextFormat = '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% '
  + '%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
  + '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" '
  + '%UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME% '
  + '%TRACE_ID% "%DOWNSTREAM_PEER_URI_SAN%" "%UPSTREAM_PEER_URI_SAN%"\n';

/** Istio's default JSON access log fields (EnvoyJSONLogFormatIstio), plus trace id and principals. */
export const DefaultJsonFormat: Readonly<Record<string, string>> = Object.freeze({
  start_time: '%START_TIME%',
  route_name: '%ROUTE_NAME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%',
  response_code: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  response_code_details: '%RESPONSE_CODE_DETAILS%',
  connection_termination_details: '%CONNECTION_TERMINATION_DETAILS%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%',
  upstream_service_time: '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%',
  x_forwarded_for: '%REQ(X-FORWARDED-FOR)%',
  user_agent: '%REQ(USER-AGENT)%',
  request_id: '%REQ(X-REQUEST-ID)%',
  authority: '%REQ(:AUTHORITY)%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_cluster: '%UPSTREAM_CLUSTER_RAW%',
  upstream_local_address: '%UPSTREAM_LOCAL_ADDRESS%',
  downstream_local_address: '%DOWNSTREAM_LOCAL_ADDRESS%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
  requested_server_name: '%REQUESTED_SERVER_NAME%',
  upstream_transport_failure_reason: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
  trace_id: '%TRACE_ID%',
  downstream_peer_principal: '%DOWNSTREAM_PEER_URI_SAN%',
  upstream_peer_principal: '%UPSTREAM_PEER_URI_SAN%',
});

/** The cluster a tracing provider's spans go to (Istio's outbound cluster of the collector service). */
export function collectorClusterName(p: TracingProvider): string {
  return outboundClusterName(p.port, '', p.service);
}

function canonicalService(proxy: ProxyNode): string {
  return proxy.labels['service.istio.io/canonical-name'] ?? proxy.labels.app ?? proxy.labels['app.kubernetes.io/name'] ?? proxy.workloadName;
}

/** HttpConnectionManager.tracing for a resolved tracing setting (Istio's tags, Envoy's tracers). */
export function hcmTracing(t: ResolvedTracing, proxy: ProxyNode, meshId: string): Json {
  const service = canonicalService(proxy);
  const tags: Json[] = [
    { tag: 'istio.canonical_revision', literal: { value: proxy.labels['service.istio.io/canonical-revision'] ?? proxy.labels.version ?? 'latest' } },
    { tag: 'istio.canonical_service', literal: { value: service } },
    { tag: 'istio.cluster_id', literal: { value: proxy.clusterId } },
    { tag: 'istio.mesh_id', literal: { value: meshId } },
    { tag: 'istio.namespace', literal: { value: proxy.namespace } },
  ];
  for (const [tag, c] of Object.entries(t.customTags).sort(([a], [b]) => a.localeCompare(b))) {
    if (c.literal !== undefined) tags.push({ tag, literal: { value: c.literal.value } });
    else if (c.environment !== undefined) tags.push({ tag, environment: { name: c.environment.name, ...(c.environment.defaultValue !== undefined ? { default_value: c.environment.defaultValue } : {}) } });
    else if (c.header !== undefined) tags.push({ tag, request_header: { name: c.header.name, ...(c.header.defaultValue !== undefined ? { default_value: c.header.defaultValue } : {}) } });
  }
  const p = t.provider;
  const cluster = collectorClusterName(p);
  const out: Json = {
    client_sampling: { value: 100 },
    random_sampling: { value: t.samplingPercent },
    overall_sampling: { value: 100 },
    custom_tags: tags,
  };
  if (p.maxTagLength !== undefined) out.max_path_tag_length = p.maxTagLength;
  if (!t.reportSpans) return out;
  if (p.kind === 'opentelemetry') {
    const cfg: Json = { '@type': OtelTracerType, service_name: `${service}.${proxy.namespace}` };
    if (p.http !== undefined) {
      cfg.http_service = {
        http_uri: { uri: `http://${p.service}:${p.port}${p.http.path}`, cluster, timeout: `${p.http.timeoutMs / 1000}s` },
        ...(p.http.headers.length > 0 ? { request_headers_to_add: p.http.headers.map((h) => ({ header: { key: h.name, value: h.value } })) } : {}),
      };
    } else {
      cfg.grpc_service = { envoy_grpc: { cluster_name: cluster, authority: p.service } };
    }
    out.provider = { name: 'envoy.tracers.opentelemetry', typed_config: cfg };
  } else {
    out.provider = {
      name: 'envoy.tracers.zipkin',
      typed_config: {
        '@type': ZipkinTracerType, collector_cluster: cluster, collector_endpoint: '/api/v2/spans', collector_endpoint_version: 'HTTP_JSON',
        collector_hostname: `${p.service}:${p.port}`, trace_id_128bit: true, shared_span_context: false,
      },
    };
  }
  return out;
}

/** One `access_log` entry (Envoy's file access logger) for a resolved access log. */
export function accessLogEntry(a: ResolvedAccessLog): Json {
  const p = a.provider;
  let logFormat: Json;
  if (p.labels !== undefined) logFormat = { json_format: { ...p.labels } };
  else if (p.text !== undefined) logFormat = { text_format_source: { inline_string: p.text.endsWith('\n') ? p.text : `${p.text}\n` } };
  else if (a.encoding === 'JSON') logFormat = { json_format: { ...DefaultJsonFormat } };
  else {
    const text = a.format ?? DefaultTextFormat;
    logFormat = { text_format_source: { inline_string: text.endsWith('\n') ? text : `${text}\n` } };
  }
  const entry: Json = { name: 'envoy.access_loggers.file', typed_config: { '@type': FileAccessLogType, path: p.path, log_format: logFormat } };
  if (a.filter !== undefined && a.filter.trim() !== '') {
    entry.filter = { extension_filter: { name: 'envoy.access_loggers.extension_filters.cel', typed_config: { '@type': CelFilterType, expression: a.filter } } };
  }
  return entry;
}

/**
 * Applies both sides' telemetry to a proxy's listeners. Returns new listener objects where
 * something changed; the others are returned as they are.
 */
export function applyTelemetry(listeners: readonly Json[], sides: Readonly<Record<TrafficSide, SideTelemetry>>, proxy: ProxyNode, meshId: string): Json[] {
  const quiet = (s: SideTelemetry) => s.metrics.length === 0 && s.tracing === undefined && s.accessLogs.length === 0;
  if (quiet(sides.CLIENT) && quiet(sides.SERVER)) return [...listeners];
  const tracing = { CLIENT: sides.CLIENT.tracing && hcmTracing(sides.CLIENT.tracing, proxy, meshId), SERVER: sides.SERVER.tracing && hcmTracing(sides.SERVER.tracing, proxy, meshId) };
  const logs = { CLIENT: sides.CLIENT.accessLogs.map(accessLogEntry), SERVER: sides.SERVER.accessLogs.map(accessLogEntry) };
  const hcm = (typed: Json, side: TrafficSide): Json => {
    const next: Json = { ...typed };
    if (Array.isArray(typed.http_filters)) {
      const filters: Json[] = [];
      for (const f of typed.http_filters as Json[]) {
        const tc = f.typed_config as Json | undefined;
        if (f.name !== 'trellis.filters.http.stats' || tc === undefined) {
          filters.push(f);
          continue;
        }
        const value = (tc.value ?? {}) as Json;
        const list = sides[value.reporter === 'DESTINATION' ? 'SERVER' : 'CLIENT'].metrics;
        if (allHttpMetricsDropped(list)) continue;
        filters.push(list.length === 0 ? f : { ...f, typed_config: { ...tc, value: { ...value, metrics: list } } });
      }
      next.http_filters = filters;
    }
    if (tracing[side] !== undefined) next.tracing = tracing[side];
    if (logs[side].length > 0) next.access_log = logs[side];
    return next;
  };
  const chain = (c: Json, side: TrafficSide): Json => ({
    ...c,
    filters: ((c.filters ?? []) as Json[]).map((f) => {
      const tc = f.typed_config as Json | undefined;
      if (tc === undefined) return f;
      if (Array.isArray(tc.http_filters)) return { ...f, typed_config: hcm(tc, side) };
      if (f.name === 'envoy.filters.network.tcp_proxy' && logs[side].length > 0) return { ...f, typed_config: { ...tc, access_log: logs[side] } };
      return f;
    }),
  });
  return listeners.map((l) => {
    const side: TrafficSide = l.traffic_direction === 'INBOUND' ? 'SERVER' : 'CLIENT';
    return {
      ...l,
      ...(Array.isArray(l.filter_chains) ? { filter_chains: (l.filter_chains as Json[]).map((c) => chain(c, side)) } : {}),
      ...(l.default_filter_chain !== undefined ? { default_filter_chain: chain(l.default_filter_chain as Json, side) } : {}),
    };
  });
}

/**
 * Clusters the tracers need that the proxy's CDS lacks: the collector's endpoints from the
 * registry when it is a mesh service (STATIC), else the provider's host resolved by DNS
 * (STRICT_DNS), or its address when it is an IP literal (STATIC).
 */
export function collectorClusters(snapshot: MeshSnapshot, tracings: readonly (ResolvedTracing | undefined)[], have: ReadonlySet<string>): Json[] {
  const out = new Map<string, Json>();
  for (const t of tracings) {
    if (t === undefined || !t.reportSpans) continue;
    const name = collectorClusterName(t.provider);
    if (have.has(name) || out.has(name)) continue;
    const { service, port } = t.provider;
    const registered = snapshot.registry.endpoints(service, port);
    const ip = /^[\d.]+$/.test(service) || service.includes(':');
    const endpoints = registered.length > 0 ? registered.map((e) => ({ address: e.address, port: e.port })) : [{ address: service, port }];
    out.set(name, {
      name,
      type: registered.length > 0 || ip ? 'STATIC' : 'STRICT_DNS',
      connect_timeout: DefaultConnectTimeout,
      load_assignment: {
        cluster_name: name,
        endpoints: [{ lb_endpoints: endpoints.map((e) => ({ endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } } })) }],
      },
      ...(t.provider.kind === 'opentelemetry' && t.provider.http === undefined ? { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } } : {}),
    });
  }
  return [...out.values()];
}
