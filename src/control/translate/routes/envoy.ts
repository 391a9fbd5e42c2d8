/**
 * Small builders for Envoy route-level proto3 JSON shared by the Istio and Gateway API
 * translators: durations (Go/Gateway API syntax to proto JSON "1.5s"), fractional percents,
 * header mutations, Istio's default retry policy, redirect codes, gRPC status names, and the
 * per-route fault / CORS filter configs. Knows Envoy, not Istio semantics.
 */

import type { XdsJson } from '../../../xds/types.ts';

type Json = Record<string, unknown>;

// Durations have one implementation for all of translation (../duration.ts); the route code
// knows them by these names.
export { durationSeconds as parseDurationSeconds, secondsJson as durationJson, protoDuration as toDuration } from '../duration.ts';

/** A percentage (0-100, fractional allowed) as Envoy FractionalPercent, with Istio's MILLION precision. */
export function fractionalPercent(percent: number): Json {
  const clamped = Math.max(0, Math.min(100, percent));
  return { numerator: Math.round(clamped * 10000), denominator: 'MILLION' };
}

/** A header mutation for `request_headers_to_add` / `response_headers_to_add`. */
export function headerValueOption(key: string, value: string, append: boolean): Json {
  return { header: { key, value }, append_action: append ? 'APPEND_IF_EXISTS_OR_ADD' : 'OVERWRITE_IF_EXISTS_OR_ADD' };
}

/** Envoy's RedirectResponseCode enum by HTTP status; 301 when unknown (Envoy's default). */
export function redirectResponseCode(status: number | undefined): string {
  switch (status) {
    case 302:
      return 'FOUND';
    case 303:
      return 'SEE_OTHER';
    case 307:
      return 'TEMPORARY_REDIRECT';
    case 308:
      return 'PERMANENT_REDIRECT';
    default:
      return 'MOVED_PERMANENTLY';
  }
}

const GRPC_CODES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE',
  'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
];

/** gRPC status by name (`UNAVAILABLE`) or number string; undefined when unknown. */
export function grpcStatusCode(name: string): number | undefined {
  if (/^\d+$/.test(name)) return Number(name);
  const i = GRPC_CODES.indexOf(name.toUpperCase());
  return i < 0 ? undefined : i;
}

/** Istio's default `retry_on` when a route sets no retry policy. */
export const DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';

/** The retry host predicate Istio always sets: do not retry on the host that just failed. */
function previousHostsPredicate(): Json[] {
  return [
    {
      name: 'envoy.retry_host_predicates.previous_hosts',
      typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate' },
    },
  ];
}

/** Options for a retry policy; undefined fields take Istio's defaults. */
export interface RetryOptions {
  readonly attempts?: number;
  readonly retryOn?: string;
  readonly perTryTimeout?: string;
  readonly retriableStatusCodes?: readonly number[];
  readonly backoffBase?: string;
  readonly retryRemoteLocalities?: boolean;
}

/**
 * An Envoy RetryPolicy following Istio: 2 attempts, DEFAULT_RETRY_ON, 503 retriable, previous-host
 * avoidance. `retryOn` entries that are numbers become `retriable_status_codes`. attempts 0 means no policy.
 */
export function retryPolicy(opts: RetryOptions = {}): Json | undefined {
  const attempts = opts.attempts ?? 2;
  if (attempts <= 0) return undefined;
  const on: string[] = [];
  const codes = new Set<number>(opts.retriableStatusCodes ?? []);
  const retryOnText = opts.retryOn ?? DEFAULT_RETRY_ON;
  for (const raw of retryOnText.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    if (/^\d{3}$/.test(item)) codes.add(Number(item));
    else if (!on.includes(item)) on.push(item);
  }
  if (opts.retryOn === undefined && opts.retriableStatusCodes === undefined) codes.add(503);
  if (codes.size > 0 && !on.includes('retriable-status-codes')) on.push('retriable-status-codes');
  const out: Json = {
    retry_on: on.join(','),
    num_retries: attempts,
    retry_host_predicate: previousHostsPredicate(),
    host_selection_retry_max_attempts: '5',
  };
  if (opts.perTryTimeout !== undefined) out.per_try_timeout = opts.perTryTimeout;
  if (codes.size > 0) out.retriable_status_codes = [...codes].sort((a, b) => a - b);
  if (opts.backoffBase !== undefined) out.retry_back_off = { base_interval: opts.backoffBase };
  if (opts.retryRemoteLocalities) {
    out.retry_priority = {
      name: 'envoy.retry_priorities.previous_priorities',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig',
        update_frequency: 2,
      },
    };
  }
  return out;
}

/** Fault filter per-route config. */
export interface FaultOptions {
  readonly delay?: { readonly fixedDelay: string; readonly percent: number };
  readonly abort?: { readonly httpStatus?: number; readonly grpcStatus?: number; readonly percent: number };
}

export const FAULT_FILTER = 'envoy.filters.http.fault';
export const CORS_FILTER = 'envoy.filters.http.cors';

/** `envoy.extensions.filters.http.fault.v3.HTTPFault` for typed_per_filter_config. */
export function faultConfig(f: FaultOptions): XdsJson {
  const out: Json = { '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault' };
  if (f.delay) out.delay = { fixed_delay: f.delay.fixedDelay, percentage: fractionalPercent(f.delay.percent) };
  if (f.abort) {
    const abort: Json = { percentage: fractionalPercent(f.abort.percent) };
    if (f.abort.grpcStatus !== undefined) abort.grpc_status = f.abort.grpcStatus;
    else abort.http_status = f.abort.httpStatus ?? 500;
    out.abort = abort;
  }
  return out;
}

/** CORS policy options, already in Envoy terms. */
export interface CorsOptions {
  readonly origins: readonly Json[];
  readonly methods?: readonly string[];
  readonly headers?: readonly string[];
  readonly exposeHeaders?: readonly string[];
  readonly maxAgeSeconds?: number;
  readonly allowCredentials?: boolean;
  /** Answer preflights from origins that are not allowed instead of passing them on (Envoy default: pass on). */
  forwardNotMatchingPreflights?: boolean;
}

/** `envoy.extensions.filters.http.cors.v3.CorsPolicy` for typed_per_filter_config. */
export function corsConfig(c: CorsOptions): XdsJson {
  const out: Json = {
    '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy',
    allow_origin_string_match: c.origins,
  };
  if (c.methods?.length) out.allow_methods = c.methods.join(',');
  if (c.headers?.length) out.allow_headers = c.headers.join(',');
  if (c.exposeHeaders?.length) out.expose_headers = c.exposeHeaders.join(',');
  if (c.maxAgeSeconds !== undefined) out.max_age = String(Math.floor(c.maxAgeSeconds));
  if (c.allowCredentials !== undefined) out.allow_credentials = c.allowCredentials;
  if (c.forwardNotMatchingPreflights !== undefined) out.forward_not_matching_preflights = c.forwardNotMatchingPreflights;
  out.filter_enabled = { default_value: { numerator: 100, denominator: 'HUNDRED' } };
  return out;
}

/** A RE2 string matcher (Envoy `safe_regex`). */
export function regexMatcher(regex: string): Json {
  return { safe_regex: { regex } };
}

/**
 * The .proto files of the typed extensions these routes reference inside `Any` (retry host
 * predicate, retry priority). The xDS codec must have them loaded (`loadProtoFiles`) to encode.
 */
export const ROUTE_EXTENSION_PROTOS: readonly string[] = [
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto',
];
