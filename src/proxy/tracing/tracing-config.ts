/**
 * The HttpConnectionManager's `tracing` field (Envoy's HttpConnectionManager.Tracing), parsed once
 * per connection manager: sampling percentages (random, client, overall), custom tags (literal,
 * environment, request header), the span name limit, and the provider: Envoy's OpenTelemetry
 * tracer (`envoy.tracers.opentelemetry`, OTLP over `http_service`) or Zipkin tracer
 * (`envoy.tracers.zipkin`, v2 JSON to `collector_cluster`). The same JSON a stock Envoy takes.
 */
import { configError, optArr, optObj, optStr, optUint, type Json } from '../xds-json.ts';

export const OtelTracerType = 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig';
export const ZipkinTracerType = 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig';

/** A custom span tag (Envoy's tracing.v3.CustomTag). */
export type CustomTag =
  | { readonly tag: string; readonly kind: 'literal'; readonly value: string }
  | { readonly tag: string; readonly kind: 'header'; readonly name: string; readonly defaultValue: string | undefined };

/** Where spans go. */
export interface TracingProvider {
  readonly protocol: 'otlp-http' | 'zipkin';
  /** The collector's cluster (its endpoints are where batches are sent). */
  readonly cluster: string;
  /** Used when the cluster has no endpoint: `host:port` of the configured URI / hostname. */
  readonly fallbackAuthority: string | undefined;
  /** Path of the export request (`/v1/traces`, `/api/v2/spans`). */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  /** `service.name` of the spans (OpenTelemetryConfig.service_name), undefined for the node's cluster. */
  readonly serviceName: string | undefined;
}

export interface TracingConfig {
  /** Percentages 0..100. */
  readonly randomSampling: number;
  readonly overallSampling: number;
  readonly customTags: readonly CustomTag[];
  readonly maxPathTagLength: number;
  /** undefined: context is propagated and sampled, but spans are not reported (disableSpanReporting). */
  readonly provider: TracingProvider | undefined;
}

function percent(raw: unknown, path: string, dflt: number): number {
  const o = optObj(raw, path);
  if (o === undefined) return dflt;
  const v = o.value ?? 0;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 100) configError(`${path}.value`, 'must be a number in [0, 100]');
  return v;
}

function durationMs(raw: unknown, path: string, dflt: number): number {
  if (raw === undefined) return dflt;
  const m = typeof raw === 'string' ? /^(\d+(?:\.\d+)?)s$/.exec(raw) : null;
  if (m === null) configError(path, `expected a duration like "5s", got ${JSON.stringify(raw)}`);
  return Math.round(Number(m[1]) * 1000);
}

function authorityOf(uri: string, path: string): { authority: string; path: string } {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return configError(path, `not a URL: '${uri}'`);
  }
  if (u.protocol !== 'http:') configError(path, `only http:// collectors are supported, got '${u.protocol}'`);
  return { authority: u.host, path: u.pathname === '' ? '/' : u.pathname };
}

function provider(raw: Json | undefined, path: string): TracingProvider | undefined {
  if (raw === undefined) return undefined;
  const name = optStr(raw.name, `${path}.name`) ?? '';
  const tc = optObj(raw.typed_config, `${path}.typed_config`) ?? {};
  const type = optStr(tc['@type'], `${path}.typed_config.@type`);
  const at = `${path}.typed_config`;
  if (type === OtelTracerType || (type === undefined && name === 'envoy.tracers.opentelemetry')) {
    // OTLP over gRPC is not implemented: the context is still propagated and sampled, spans are not sent.
    if (tc.grpc_service !== undefined && tc.http_service === undefined) return undefined;
    const http = optObj(tc.http_service, `${at}.http_service`) ?? configError(`${at}.http_service`, 'is required');
    const uri = optObj(http.http_uri, `${at}.http_service.http_uri`) ?? configError(`${at}.http_service.http_uri`, 'is required');
    const cluster = optStr(uri.cluster, `${at}.http_service.http_uri.cluster`) ?? configError(`${at}.http_service.http_uri.cluster`, 'is required');
    const target = authorityOf(optStr(uri.uri, `${at}.http_service.http_uri.uri`) ?? configError(`${at}.http_service.http_uri.uri`, 'is required'), `${at}.http_service.http_uri.uri`);
    const headers: Record<string, string> = {};
    optArr(http.request_headers_to_add, `${at}.http_service.request_headers_to_add`).forEach((h, i) => {
      const entry = `${at}.http_service.request_headers_to_add[${i}]`;
      const p = `${entry}.header`;
      const hv = optObj(optObj(h, entry)?.header, p) ?? configError(p, 'is required');
      headers[(optStr(hv.key, `${p}.key`) ?? configError(`${p}.key`, 'is required')).toLowerCase()] = optStr(hv.value, `${p}.value`) ?? '';
    });
    return Object.freeze({
      protocol: 'otlp-http', cluster, fallbackAuthority: target.authority, path: target.path, headers: Object.freeze(headers),
      timeoutMs: durationMs(uri.timeout, `${at}.http_service.http_uri.timeout`, 5000), serviceName: optStr(tc.service_name, `${at}.service_name`),
    });
  }
  if (type === ZipkinTracerType || (type === undefined && name === 'envoy.tracers.zipkin')) {
    const cluster = optStr(tc.collector_cluster, `${at}.collector_cluster`) ?? configError(`${at}.collector_cluster`, 'is required');
    const endpoint = optStr(tc.collector_endpoint, `${at}.collector_endpoint`) ?? configError(`${at}.collector_endpoint`, 'is required');
    const version = optStr(tc.collector_endpoint_version, `${at}.collector_endpoint_version`) ?? 'HTTP_JSON';
    if (version !== 'HTTP_JSON') configError(`${at}.collector_endpoint_version`, `only HTTP_JSON is supported, got '${version}'`);
    return Object.freeze({
      protocol: 'zipkin', cluster, fallbackAuthority: optStr(tc.collector_hostname, `${at}.collector_hostname`), path: endpoint,
      headers: Object.freeze({}), timeoutMs: 5000, serviceName: undefined,
    });
  }
  return configError(`${path}.name`, `unsupported tracer '${name}'${type !== undefined ? ` (${type})` : ''}: envoy.tracers.opentelemetry and envoy.tracers.zipkin are`);
}

/** Parses HttpConnectionManager.tracing. */
export function parseTracingConfig(raw: Json, path: string): TracingConfig {
  const tags = optArr(raw.custom_tags, `${path}.custom_tags`).map((t, i): CustomTag => {
    const p = `${path}.custom_tags[${i}]`;
    const o = optObj(t, p) ?? configError(p, 'expected a CustomTag');
    const tag = optStr(o.tag, `${p}.tag`) ?? configError(`${p}.tag`, 'is required');
    if (o.literal !== undefined) return { tag, kind: 'literal', value: optStr(optObj(o.literal, `${p}.literal`)?.value, `${p}.literal.value`) ?? '' };
    if (o.environment !== undefined) {
      const e = optObj(o.environment, `${p}.environment`)!;
      const name = optStr(e.name, `${p}.environment.name`) ?? configError(`${p}.environment.name`, 'is required');
      // Read once, at config time: the environment of a running proxy does not change.
      return { tag, kind: 'literal', value: process.env[name] ?? optStr(e.default_value, `${p}.environment.default_value`) ?? '' };
    }
    if (o.request_header !== undefined) {
      const h = optObj(o.request_header, `${p}.request_header`)!;
      return { tag, kind: 'header', name: (optStr(h.name, `${p}.request_header.name`) ?? configError(`${p}.request_header.name`, 'is required')).toLowerCase(), defaultValue: optStr(h.default_value, `${p}.request_header.default_value`) };
    }
    return configError(p, 'one of literal, environment or request_header is required');
  });
  return Object.freeze({
    randomSampling: percent(raw.random_sampling, `${path}.random_sampling`, 100),
    overallSampling: percent(raw.overall_sampling, `${path}.overall_sampling`, 100),
    customTags: Object.freeze(tags),
    maxPathTagLength: optUint(raw.max_path_tag_length, `${path}.max_path_tag_length`) ?? 256,
    provider: provider(optObj(raw.provider, `${path}.provider`), `${path}.provider`),
  });
}
