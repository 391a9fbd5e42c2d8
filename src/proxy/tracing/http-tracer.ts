/**
 * Tracing in the HTTP connection manager, as Envoy does it: per request, read the caller's trace
 * context (W3C or B3), decide sampling (the caller's decision when it made one, else
 * `random_sampling`, then `overall_sampling`), start this hop's span (SERVER on inbound listeners,
 * CLIENT on outbound ones, which Istio's gateway listeners are too: one span per proxy hop) and write its context onto
 * the request the proxy forwards. When the request ends, a sampled span gets Envoy's standard tags
 * plus the configured custom tags and goes to the provider's span queue.
 *
 * Cost: an HCM without `tracing` has no tracer and pays nothing. With one, an unsampled request
 * costs two random ids and the header writes (so the next hop sees the decision); only a sampled
 * request allocates a span record, and only at its end.
 */
import type { HeaderMap } from '../upstream/types.ts';
import type { StreamInfo } from '../http/stream-info.ts';
import { formatResponseFlags } from '../http/stream-info.ts';
import { extractTrace, injectTrace, newSpanId, newTraceId } from '../../telemetry/trace-context.ts';
import type { FinishedSpan, SpanSink } from '../../telemetry/span-exporter.ts';
import type { TracingConfig, TracingProvider } from './tracing-config.ts';

/** Gives the span queue of a provider (shared by every connection manager of a proxy). */
export interface SpanSinks {
  sink(provider: TracingProvider, serviceName: string): SpanSink;
}

/** Who the proxy is, for span tags and the default service name. */
export interface TracerIdentity {
  readonly nodeId: string;
  /** `service.name` when the provider names none (Envoy: the node's cluster, Istio's `app.namespace`). */
  readonly serviceName: string;
  readonly zone: string;
}

/** A started span: what the end of the request needs. */
export interface ActiveSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly tracestate: string | undefined;
}

/** The request facts a finished span reads. */
export interface TracedRequest {
  readonly info: StreamInfo;
  readonly headers: HeaderMap;
  readonly operation: string | undefined;
}

function header(h: HeaderMap, name: string): string | undefined {
  const v = h[name];
  return v === undefined ? undefined : Array.isArray(v) ? v[0] : v;
}

/** One connection manager's tracer. */
export class HttpTracer {
  readonly #cfg: TracingConfig;
  readonly #kind: 1 | 2;
  readonly #sink: SpanSink | undefined;
  readonly #id: TracerIdentity;
  readonly #random: () => number;

  constructor(cfg: TracingConfig, direction: 'INBOUND' | 'OUTBOUND' | 'UNSPECIFIED', id: TracerIdentity, sinks: SpanSinks, random: () => number) {
    this.#cfg = cfg;
    // Envoy: egress (CLIENT) on OUTBOUND listeners (Istio marks gateways' so), ingress (SERVER) otherwise.
    this.#kind = direction === 'OUTBOUND' ? 2 : 1;
    this.#id = id;
    this.#sink = cfg.provider === undefined ? undefined : sinks.sink(cfg.provider, cfg.provider.serviceName ?? id.serviceName);
    this.#random = random;
  }

  /**
   * Starts this hop's span for a request and writes its context onto the request headers (which
   * the router forwards). Returns the span when the request is sampled and reported.
   */
  start(headers: HeaderMap): ActiveSpan | undefined {
    const cfg = this.#cfg;
    const incoming = extractTrace(headers);
    let sampled = incoming?.sampled ?? (cfg.randomSampling >= 100 || (cfg.randomSampling > 0 && this.#random() * 100 < cfg.randomSampling));
    if (sampled && cfg.overallSampling < 100) sampled = this.#random() * 100 < cfg.overallSampling;
    const traceId = incoming?.traceId ?? newTraceId();
    const spanId = newSpanId();
    const parent = incoming?.parentSpanId;
    injectTrace(headers, traceId, spanId, parent, sampled, incoming?.tracestate, incoming?.b3Single === true);
    if (!sampled || this.#sink === undefined) return undefined;
    return { traceId, spanId, parentSpanId: parent, tracestate: incoming?.tracestate };
  }

  /** Ends a sampled span: Envoy's standard tags, custom tags, and into the provider's queue. */
  finish(span: ActiveSpan, r: TracedRequest): void {
    const i = r.info;
    const h = r.headers;
    const url = `${i.scheme}://${i.authority}${i.path}`;
    const code = i.responseCode;
    const attrs: Record<string, string> = {
      node_id: this.#id.nodeId,
      zone: this.#id.zone,
      'guid:x-request-id': i.requestId,
      'http.url': url.length > this.#cfg.maxPathTagLength ? url.slice(0, this.#cfg.maxPathTagLength) : url,
      'http.method': i.method,
      downstream_cluster: header(h, 'x-envoy-downstream-service-cluster') ?? '-',
      user_agent: i.userAgent ?? '-',
      'http.protocol': i.protocol,
      'peer.address': i.downstreamRemoteAddress,
      request_size: String(i.bytesReceived),
      response_size: String(i.bytesSent),
      component: 'proxy',
      upstream_cluster: i.clusterName ?? '-',
      'upstream_cluster.name': i.clusterName ?? '-',
      upstream_address: i.upstreamEndpoint ?? '-',
      'http.status_code': String(code),
      response_flags: formatResponseFlags(i),
    };
    if (i.grpc) {
      attrs['grpc.path'] = i.path;
      attrs['grpc.authority'] = i.authority;
      if (i.grpcStatus !== undefined) attrs['grpc.status_code'] = String(i.grpcStatus);
    }
    // Envoy tags a span as an error for a 5xx, or a stream that ended without a response.
    const error = code === 0 || code >= 500 || !i.completed;
    if (error) attrs.error = 'true';
    for (const t of this.#cfg.customTags) {
      if (t.kind === 'literal') attrs[t.tag] = t.value;
      else {
        const v = header(h, t.name) ?? t.defaultValue;
        if (v !== undefined) attrs[t.tag] = v;
      }
    }
    const startMs = performance.timeOrigin + i.startMono;
    const out: FinishedSpan = {
      traceId: span.traceId,
      spanId: span.spanId,
      parentSpanId: span.parentSpanId,
      name: r.operation ?? (this.#kind === 2 ? `egress ${i.authority}` : 'ingress'),
      kind: this.#kind,
      startMs,
      endMs: startMs + (i.durationMs ?? 0),
      attributes: attrs,
      error,
      tracestate: span.tracestate,
    };
    this.#sink!.add(out);
  }
}
