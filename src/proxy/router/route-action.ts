/**
 * Compiles what a matched route *does* (envoy.config.route.v3 RouteAction, RedirectAction,
 * DirectResponseAction) plus the policies the router filter reads (RetryPolicy, HedgePolicy,
 * RequestMirrorPolicy, HashPolicy), into frozen plain objects. Matching lives in route-table.ts;
 * executing lives in the router filter.
 */
import {
  compileRewriteRegex, configError, optArr, optBool, optDurationMs, optObj, optStr, optUint, runtimeFraction, type Json,
} from '../xds-json.ts';
import { compileHeaderMutation, type HeaderMutation } from './header-mutation.ts';
import { compileHeaderMatcher, type HeaderMatch } from '../http/matchers.ts';

/** Parses a typed_per_filter_config entry for the filter named `filterName` (supplied by the filter registry). */
export type PerFilterConfigParser = (filterName: string, raw: Json, path: string) => unknown;

/** Compiled per-filter configs of one level, by filter name. */
export type PerFilterConfigs = ReadonlyMap<string, unknown>;

export const NO_PER_FILTER: PerFilterConfigs = new Map();

/** Compile `typed_per_filter_config` of a level; a FilterConfig wrapper ({config, is_optional, disabled}) is unwrapped. */
export function compilePerFilter(v: unknown, path: string, parse: PerFilterConfigParser | undefined): PerFilterConfigs {
  const o = optObj(v, path);
  if (!o) return NO_PER_FILTER;
  const out = new Map<string, unknown>();
  for (const [name, raw] of Object.entries(o)) {
    const p = `${path}["${name}"]`;
    let cfg = optObj(raw, p) ?? configError(p, 'expected an Any');
    if (cfg['@type'] === 'type.googleapis.com/envoy.config.route.v3.FilterConfig') {
      if (optBool(cfg.disabled, `${p}.disabled`)) {
        out.set(name, DISABLED_FILTER);
        continue;
      }
      cfg = optObj(cfg.config, `${p}.config`) ?? {};
    }
    out.set(name, parse ? parse(name, cfg, p) : cfg);
  }
  return out;
}

/** Marker stored as a per-filter config when a route disables a filter. */
export const DISABLED_FILTER: unique symbol = Symbol('filter disabled for route');

export interface WeightedCluster {
  readonly name: string;
  readonly clusterHeader: string | undefined;
  readonly weight: number;
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
  readonly hostRewriteLiteral: string | undefined;
  readonly perFilter: PerFilterConfigs;
}

export interface RetryPolicy {
  readonly retryOn: ReadonlySet<string>;
  readonly numRetries: number;
  readonly perTryTimeoutMs: number;
  readonly baseIntervalMs: number;
  readonly maxIntervalMs: number;
  readonly retriableStatusCodes: ReadonlySet<number>;
  readonly retriableHeaders: readonly HeaderMatch[];
  /** retry_host_predicate envoy.retry_host_predicates.previous_hosts present. */
  readonly avoidPreviousHosts: boolean;
  /** host_selection_retry_max_attempts: re-picks while the predicate rejects a host (Envoy default 1). */
  readonly hostSelectionRetryMaxAttempts: number;
}

export interface HedgePolicy {
  readonly hedgeOnPerTryTimeout: boolean;
}

export interface MirrorPolicy {
  readonly cluster: string;
  /** Fraction of requests mirrored (runtime_fraction default_value; 1 when absent). */
  readonly fraction: number;
}

export type HashPolicy =
  | { readonly kind: 'header'; readonly name: string; readonly terminal: boolean }
  | { readonly kind: 'cookie'; readonly name: string; readonly terminal: boolean }
  | { readonly kind: 'source_ip'; readonly terminal: boolean }
  | { readonly kind: 'query_parameter'; readonly name: string; readonly terminal: boolean };

export interface RegexRewrite {
  readonly pattern: RegExp;
  readonly substitution: string;
}

export interface ForwardAction {
  readonly kind: 'route';
  readonly cluster: string | undefined;
  readonly clusterHeader: string | undefined;
  readonly weightedClusters: readonly WeightedCluster[] | undefined;
  readonly totalWeight: number;
  readonly clusterNotFoundStatus: number;
  readonly prefixRewrite: string | undefined;
  readonly regexRewrite: RegexRewrite | undefined;
  readonly hostRewriteLiteral: string | undefined;
  readonly hostRewriteHeader: string | undefined;
  readonly autoHostRewrite: boolean;
  /** append_x_forwarded_host: on a host rewrite, the old host is appended to x-forwarded-host (off by default, as Envoy). */
  readonly appendXForwardedHost: boolean;
  /** Route timeout in ms; 0 disables it (Envoy default 15s). */
  readonly timeoutMs: number;
  readonly idleTimeoutMs: number | undefined;
  readonly maxStreamDurationMs: number | undefined;
  /** max_stream_duration.grpc_timeout_header_max: when set, a request's grpc-timeout becomes the route timeout, capped by it (0 = no cap). */
  readonly grpcTimeoutHeaderMaxMs: number | undefined;
  readonly retryPolicy: RetryPolicy | undefined;
  readonly hedgePolicy: HedgePolicy | undefined;
  readonly mirrors: readonly MirrorPolicy[];
  readonly hashPolicies: readonly HashPolicy[];
}

export interface RedirectAction {
  readonly kind: 'redirect';
  readonly scheme: string | undefined;
  readonly host: string | undefined;
  readonly port: number | undefined;
  readonly path: string | undefined;
  readonly prefixRewrite: string | undefined;
  readonly regexRewrite: RegexRewrite | undefined;
  readonly status: number;
  readonly stripQuery: boolean;
}

export interface DirectResponseAction {
  readonly kind: 'direct_response';
  readonly status: number;
  readonly body: string | undefined;
}

export interface NonForwardingAction {
  readonly kind: 'non_forwarding';
}

export type RouteActionKind = ForwardAction | RedirectAction | DirectResponseAction | NonForwardingAction;

/** Envoy's route timeout default when `timeout` is absent. */
export const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;

const REDIRECT_CODES: Record<string, number> = {
  MOVED_PERMANENTLY: 301, FOUND: 302, SEE_OTHER: 303, TEMPORARY_REDIRECT: 307, PERMANENT_REDIRECT: 308,
};

const RETRY_ON = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'envoy-ratelimited', 'retriable-4xx', 'refused-stream',
  'retriable-status-codes', 'retriable-headers', 'http3-post-connect-failure',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
]);

/** Compile RetryPolicy; `inherited` is the virtual host's when the route has none. */
export function compileRetryPolicy(v: unknown, path: string): RetryPolicy | undefined {
  const o = optObj(v, path);
  if (!o) return undefined;
  const retryOn = new Set<string>();
  for (const cond of (optStr(o.retry_on, `${path}.retry_on`) ?? '').split(',')) {
    const c = cond.trim();
    if (c === '') continue;
    if (!RETRY_ON.has(c)) configError(`${path}.retry_on`, `unknown retry condition '${c}'`);
    retryOn.add(c);
  }
  const backoff = optObj(o.retry_back_off, `${path}.retry_back_off`);
  const base = backoff ? optDurationMs(backoff.base_interval, `${path}.retry_back_off.base_interval`) : undefined;
  if (backoff && base === undefined) configError(`${path}.retry_back_off.base_interval`, 'is required');
  const baseIntervalMs = base ?? 25;
  if (baseIntervalMs <= 0) configError(`${path}.retry_back_off.base_interval`, 'must be greater than zero');
  const maxIntervalMs = (backoff ? optDurationMs(backoff.max_interval, `${path}.retry_back_off.max_interval`) : undefined) ?? baseIntervalMs * 10;
  if (maxIntervalMs < baseIntervalMs) configError(`${path}.retry_back_off.max_interval`, 'must be at least base_interval');
  const codes = optArr(o.retriable_status_codes, `${path}.retriable_status_codes`).map((c, i) => {
    const n = optUint(c, `${path}.retriable_status_codes[${i}]`) ?? 0;
    if (n < 100 || n > 599) configError(`${path}.retriable_status_codes[${i}]`, `invalid status ${n}`);
    return n;
  });
  const predicates = optArr(o.retry_host_predicate, `${path}.retry_host_predicate`).map((p, i) => optStr(optObj(p, `${path}.retry_host_predicate[${i}]`)?.name, `${path}.retry_host_predicate[${i}].name`));
  return Object.freeze({
    retryOn,
    numRetries: optUint(o.num_retries, `${path}.num_retries`) ?? 1,
    perTryTimeoutMs: optDurationMs(o.per_try_timeout, `${path}.per_try_timeout`) ?? 0,
    baseIntervalMs,
    maxIntervalMs,
    retriableStatusCodes: new Set(codes),
    retriableHeaders: Object.freeze(optArr(o.retriable_headers, `${path}.retriable_headers`).map((h, i) => compileHeaderMatcher(h, `${path}.retriable_headers[${i}]`))),
    avoidPreviousHosts: predicates.includes('envoy.retry_host_predicates.previous_hosts'),
    hostSelectionRetryMaxAttempts: optUint(o.host_selection_retry_max_attempts, `${path}.host_selection_retry_max_attempts`) ?? 1,
  });
}

export function compileHedgePolicy(v: unknown, path: string): HedgePolicy | undefined {
  const o = optObj(v, path);
  if (!o) return undefined;
  const initial = optUint(o.initial_requests, `${path}.initial_requests`) ?? 1;
  if (initial !== 1) configError(`${path}.initial_requests`, 'only 1 is supported (hedging starts on per-try timeout)');
  if (o.additional_request_chance !== undefined) configError(`${path}.additional_request_chance`, 'not supported');
  return Object.freeze({ hedgeOnPerTryTimeout: optBool(o.hedge_on_per_try_timeout, `${path}.hedge_on_per_try_timeout`) ?? false });
}

function compileRegexRewrite(v: unknown, path: string): RegexRewrite | undefined {
  const o = optObj(v, path);
  if (!o) return undefined;
  const pattern = compileRewriteRegex(o.pattern, `${path}.pattern`);
  // RE2 substitutions use \1; JS uses $1.
  const substitution = (optStr(o.substitution, `${path}.substitution`) ?? '').replace(/\$/g, '$$$$').replace(/\\(\d)/g, '$$$1');
  return Object.freeze({ pattern, substitution });
}

function compileHashPolicies(v: unknown, path: string): HashPolicy[] {
  return optArr(v, path).map((raw, i): HashPolicy => {
    const p = `${path}[${i}]`;
    const o = optObj(raw, p) ?? configError(p, 'expected a HashPolicy');
    const terminal = optBool(o.terminal, `${p}.terminal`) ?? false;
    if (o.header) return { kind: 'header', name: (optStr(optObj(o.header, `${p}.header`)?.header_name, `${p}.header.header_name`) ?? '').toLowerCase(), terminal };
    if (o.cookie) return { kind: 'cookie', name: optStr(optObj(o.cookie, `${p}.cookie`)?.name, `${p}.cookie.name`) ?? '', terminal };
    if (o.connection_properties) return { kind: 'source_ip', terminal };
    if (o.query_parameter) return { kind: 'query_parameter', name: optStr(optObj(o.query_parameter, `${p}.query_parameter`)?.name, `${p}.query_parameter.name`) ?? '', terminal };
    return configError(p, 'unsupported hash policy (header, cookie, connection_properties, query_parameter are)');
  });
}

/** Compile a RouteAction (`route` field of a Route). */
export function compileForwardAction(o: Json, path: string, vhost: Json, vhostPath: string, parse: PerFilterConfigParser | undefined): ForwardAction {
  const cluster = optStr(o.cluster, `${path}.cluster`);
  const clusterHeader = optStr(o.cluster_header, `${path}.cluster_header`)?.toLowerCase();
  let weightedClusters: WeightedCluster[] | undefined;
  let totalWeight = 0;
  const wc = optObj(o.weighted_clusters, `${path}.weighted_clusters`);
  if (wc) {
    weightedClusters = optArr(wc.clusters, `${path}.weighted_clusters.clusters`).map((raw, i) => {
      const p = `${path}.weighted_clusters.clusters[${i}]`;
      const c = optObj(raw, p) ?? configError(p, 'expected a ClusterWeight');
      const name = optStr(c.name, `${p}.name`) ?? '';
      const ch = optStr(c.cluster_header, `${p}.cluster_header`)?.toLowerCase();
      if (!name && !ch) configError(`${p}.name`, 'name or cluster_header is required');
      return Object.freeze({
        name, clusterHeader: ch, weight: optUint(c.weight, `${p}.weight`) ?? 0,
        requestHeaders: compileHeaderMutation(c, 'request', p), responseHeaders: compileHeaderMutation(c, 'response', p),
        hostRewriteLiteral: optStr(c.host_rewrite_literal, `${p}.host_rewrite_literal`),
        perFilter: compilePerFilter(c.typed_per_filter_config, `${p}.typed_per_filter_config`, parse),
      });
    });
    if (weightedClusters.length === 0) configError(`${path}.weighted_clusters.clusters`, 'at least one cluster is required');
    const sum = weightedClusters.reduce((a, c) => a + c.weight, 0);
    totalWeight = optUint(wc.total_weight, `${path}.weighted_clusters.total_weight`) ?? sum;
    if (totalWeight !== sum) configError(`${path}.weighted_clusters.total_weight`, `is ${totalWeight} but the weights sum to ${sum}`);
    if (sum === 0) configError(`${path}.weighted_clusters`, 'the weights sum to 0');
  }
  const specifiers = [cluster, clusterHeader, weightedClusters].filter((x) => x !== undefined).length;
  if (o.cluster_specifier_plugin !== undefined || o.inline_cluster_specifier_plugin !== undefined) configError(path, 'cluster specifier plugins are not supported');
  if (specifiers !== 1) configError(path, 'exactly one of cluster, cluster_header, weighted_clusters is required');
  const cnf = o.cluster_not_found_response_code ?? 'SERVICE_UNAVAILABLE';
  const clusterNotFoundStatus = cnf === 'SERVICE_UNAVAILABLE' || cnf === 0 ? 503 : cnf === 'NOT_FOUND' || cnf === 1 ? 404 : cnf === 'INTERNAL_SERVER_ERROR' || cnf === 2 ? 500 : configError(`${path}.cluster_not_found_response_code`, `unknown code '${String(cnf)}'`);
  const prefixRewrite = optStr(o.prefix_rewrite, `${path}.prefix_rewrite`);
  const regexRewrite = compileRegexRewrite(o.regex_rewrite, `${path}.regex_rewrite`);
  if (prefixRewrite !== undefined && regexRewrite) configError(path, 'prefix_rewrite and regex_rewrite are mutually exclusive');
  const mirrors = optArr(o.request_mirror_policies, `${path}.request_mirror_policies`).map((raw, i) => {
    const p = `${path}.request_mirror_policies[${i}]`;
    const m = optObj(raw, p) ?? configError(p, 'expected a RequestMirrorPolicy');
    const c = optStr(m.cluster, `${p}.cluster`);
    if (!c) configError(`${p}.cluster`, 'is required (cluster_header is not supported)');
    return Object.freeze({ cluster: c, fraction: runtimeFraction(m.runtime_fraction, `${p}.runtime_fraction`) ?? 1 });
  });
  const msd = optObj(o.max_stream_duration, `${path}.max_stream_duration`);
  return Object.freeze({
    kind: 'route',
    cluster, clusterHeader, weightedClusters: weightedClusters && Object.freeze(weightedClusters), totalWeight, clusterNotFoundStatus,
    prefixRewrite, regexRewrite,
    hostRewriteLiteral: optStr(o.host_rewrite_literal, `${path}.host_rewrite_literal`),
    hostRewriteHeader: optStr(o.host_rewrite_header, `${path}.host_rewrite_header`)?.toLowerCase(),
    autoHostRewrite: optBool(o.auto_host_rewrite, `${path}.auto_host_rewrite`) ?? false,
    appendXForwardedHost: optBool(o.append_x_forwarded_host, `${path}.append_x_forwarded_host`) ?? false,
    timeoutMs: optDurationMs(o.timeout, `${path}.timeout`) ?? DEFAULT_ROUTE_TIMEOUT_MS,
    idleTimeoutMs: optDurationMs(o.idle_timeout, `${path}.idle_timeout`),
    maxStreamDurationMs: msd ? optDurationMs(msd.max_stream_duration, `${path}.max_stream_duration.max_stream_duration`) : undefined,
    grpcTimeoutHeaderMaxMs: msd ? optDurationMs(msd.grpc_timeout_header_max, `${path}.max_stream_duration.grpc_timeout_header_max`) : undefined,
    // A route's retry/hedge policy replaces the virtual host's (they do not merge).
    retryPolicy: compileRetryPolicy(o.retry_policy, `${path}.retry_policy`) ?? compileRetryPolicy(vhost.retry_policy, `${vhostPath}.retry_policy`),
    hedgePolicy: compileHedgePolicy(o.hedge_policy, `${path}.hedge_policy`) ?? compileHedgePolicy(vhost.hedge_policy, `${vhostPath}.hedge_policy`),
    mirrors: Object.freeze(mirrors),
    hashPolicies: Object.freeze(compileHashPolicies(o.hash_policy, `${path}.hash_policy`)),
  });
}

/** Compile a RedirectAction. */
export function compileRedirect(o: Json, path: string): RedirectAction {
  let scheme = optStr(o.scheme_redirect, `${path}.scheme_redirect`)?.toLowerCase();
  if (optBool(o.https_redirect, `${path}.https_redirect`)) {
    if (scheme !== undefined) configError(path, 'https_redirect and scheme_redirect are mutually exclusive');
    scheme = 'https';
  }
  const pathRedirect = optStr(o.path_redirect, `${path}.path_redirect`);
  const prefixRewrite = optStr(o.prefix_rewrite, `${path}.prefix_rewrite`);
  const regexRewrite = compileRegexRewrite(o.regex_rewrite, `${path}.regex_rewrite`);
  if ([pathRedirect, prefixRewrite, regexRewrite].filter((x) => x !== undefined).length > 1) configError(path, 'path_redirect, prefix_rewrite and regex_rewrite are mutually exclusive');
  const rc = o.response_code ?? 'MOVED_PERMANENTLY';
  const status = typeof rc === 'string' ? REDIRECT_CODES[rc] : [301, 302, 303, 307, 308][rc as number];
  if (status === undefined) configError(`${path}.response_code`, `unknown redirect code '${String(rc)}'`);
  const port = optUint(o.port_redirect, `${path}.port_redirect`);
  if (port !== undefined && (port === 0 || port > 65535)) configError(`${path}.port_redirect`, `invalid port ${port}`);
  return Object.freeze({
    kind: 'redirect', scheme, host: optStr(o.host_redirect, `${path}.host_redirect`), port,
    path: pathRedirect, prefixRewrite, regexRewrite, status, stripQuery: optBool(o.strip_query, `${path}.strip_query`) ?? false,
  });
}

/** Compile a DirectResponseAction. */
export function compileDirectResponse(o: Json, path: string): DirectResponseAction {
  const status = optUint(o.status, `${path}.status`);
  if (status === undefined || status < 200 || status > 599) configError(`${path}.status`, 'must be in [200, 599]');
  const b = optObj(o.body, `${path}.body`);
  let body: string | undefined;
  if (b) {
    if (b.inline_string !== undefined) body = optStr(b.inline_string, `${path}.body.inline_string`);
    else if (b.inline_bytes !== undefined) body = Buffer.from(optStr(b.inline_bytes, `${path}.body.inline_bytes`) ?? '', 'base64').toString();
    else configError(`${path}.body`, 'only inline_string and inline_bytes are supported');
  }
  return Object.freeze({ kind: 'direct_response', status, body });
}
