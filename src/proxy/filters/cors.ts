/**
 * The CORS filter (`envoy.filters.http.cors`, envoy.extensions.filters.http.cors.v3.Cors). The
 * filter config is empty; the policy (envoy.extensions.filters.http.cors.v3.CorsPolicy) comes from
 * typed_per_filter_config of the route / virtual host / route configuration (most specific wins).
 * Preflights (OPTIONS + Origin + Access-Control-Request-Method) from an allowed origin are answered
 * locally with 200 and the allow-* headers; other preflights are forwarded
 * (forward_not_matching_preflights, default true). Actual requests from an allowed origin get
 * Access-Control-Allow-Origin / -Credentials / -Expose-Headers on the response.
 */
import { optArr, optBool, optStr, runtimeFraction, type Json } from '../xds-json.ts';
import type { FilterRegistration, FilterStatus, HttpFilter, HttpStream, ResponseHead } from '../http/stream.ts';
import { compileStringMatcher, type StringMatch } from '../http/matchers.ts';

/** A compiled CorsPolicy. */
export interface CorsPolicy {
  readonly allowOrigin: readonly StringMatch[];
  readonly allowMethods: string | undefined;
  readonly allowHeaders: string | undefined;
  readonly exposeHeaders: string | undefined;
  readonly maxAge: string | undefined;
  readonly allowCredentials: boolean;
  readonly enabledFraction: number;
  readonly forwardNotMatchingPreflights: boolean;
  readonly allowPrivateNetworkAccess: boolean;
}

/** Compile a CorsPolicy. */
export function compileCorsPolicy(o: Json, path: string): CorsPolicy {
  return Object.freeze({
    allowOrigin: Object.freeze(optArr(o.allow_origin_string_match, `${path}.allow_origin_string_match`).map((m, i) => compileStringMatcher(m, `${path}.allow_origin_string_match[${i}]`))),
    allowMethods: optStr(o.allow_methods, `${path}.allow_methods`),
    allowHeaders: optStr(o.allow_headers, `${path}.allow_headers`),
    exposeHeaders: optStr(o.expose_headers, `${path}.expose_headers`),
    maxAge: optStr(o.max_age, `${path}.max_age`),
    allowCredentials: optBool(o.allow_credentials, `${path}.allow_credentials`) ?? false,
    enabledFraction: runtimeFraction(o.filter_enabled, `${path}.filter_enabled`) ?? 1,
    forwardNotMatchingPreflights: optBool(o.forward_not_matching_preflights, `${path}.forward_not_matching_preflights`) ?? true,
    allowPrivateNetworkAccess: optBool(o.allow_private_network_access, `${path}.allow_private_network_access`) ?? false,
  });
}

function headerText(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

/** Registration of the CORS filter. */
export const corsFilter: FilterRegistration = {
  name: 'envoy.filters.http.cors',
  typeUrls: ['type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors'],
  parsePerRoute: (raw, path) => compileCorsPolicy(raw, path),
  createFactory(_typedConfig, ctx, _path, configuredName) {
    const random = ctx.random;
    return {
      name: configuredName,
      terminal: false,
      // A route without a CORS policy (most) gets one shared filter that does nothing; only a
      // stream with a policy gets its own, to remember what it allowed for the response.
      createFilter: (s) => {
        const policy = s.perFilterConfig(configuredName) as CorsPolicy | undefined;
        return policy === undefined ? NO_POLICY : new CorsFilter(random, policy);
      },
    };
  },
};

/** The CORS filter of a stream whose route has no CORS policy: nothing to check or add. */
const NO_POLICY: HttpFilter = Object.freeze({});

/**
 * One stream's CORS filter: the route's policy (read when the filter is created, right before its
 * request hook runs) and the origin it allowed, for the response.
 */
class CorsFilter implements HttpFilter {
  readonly #random: () => number;
  readonly #policy: CorsPolicy;
  #allowedOrigin: string | undefined;

  constructor(random: () => number, policy: CorsPolicy) {
    this.#random = random;
    this.#policy = policy;
  }

  onRequestHeaders(s: HttpStream): FilterStatus {
    const policy = this.#policy;
    if (!(this.#random() < policy.enabledFraction)) return 'continue';
    const o = s.headers.origin;
    const origin = Array.isArray(o) ? o[0] : o;
    if (!origin) return 'continue';
    const allowed = policy.allowOrigin.some((m) => m(origin));
    const preflight = s.method === 'OPTIONS' && s.headers['access-control-request-method'] !== undefined;
    if (!allowed) {
      if (!preflight || policy.forwardNotMatchingPreflights) return 'continue';
      // forward_not_matching_preflights: false -> answer it here, granting nothing.
      s.info.responseCodeDetails = 'cors_response';
      s.writeHeaders(200, { 'content-length': '0' });
      s.endResponse();
      return 'stop';
    }
    this.#allowedOrigin = origin;
    if (!preflight) return 'continue';
    const h: Record<string, string> = { 'access-control-allow-origin': origin };
    if (policy.allowCredentials) h['access-control-allow-credentials'] = 'true';
    // A `*` grants whatever was asked for; echoing it works with credentials too, where
    // browsers take `*` literally (Gateway API CORS semantics).
    const reqMethod = headerText(s.headers['access-control-request-method']);
    const reqHeaders = headerText(s.headers['access-control-request-headers']);
    if (policy.allowMethods) h['access-control-allow-methods'] = policy.allowMethods.trim() === '*' && reqMethod ? reqMethod : policy.allowMethods;
    if (policy.allowHeaders) h['access-control-allow-headers'] = policy.allowHeaders.trim() === '*' && reqHeaders ? reqHeaders : policy.allowHeaders;
    // Not in Envoy's preflight answer; harmless for browsers and expected by Gateway API conformance.
    if (policy.exposeHeaders) h['access-control-expose-headers'] = policy.exposeHeaders;
    if (policy.maxAge) h['access-control-max-age'] = policy.maxAge;
    if (policy.allowPrivateNetworkAccess && s.headers['access-control-request-private-network'] === 'true') h['access-control-allow-private-network'] = 'true';
    s.info.responseCodeDetails = 'cors_response';
    s.writeHeaders(200, { ...h, 'content-length': '0' });
    s.endResponse();
    return 'stop';
  }

  onResponseHeaders(s: HttpStream, head: ResponseHead): void {
    // Preflight replies were built complete; decorate only actual requests.
    const policy = this.#policy;
    const allowedOrigin = this.#allowedOrigin;
    if (allowedOrigin === undefined || s.info.responseCodeDetails === 'cors_response') return;
    head.headers['access-control-allow-origin'] = allowedOrigin;
    if (policy.allowCredentials) head.headers['access-control-allow-credentials'] = 'true';
    if (policy.exposeHeaders) head.headers['access-control-expose-headers'] = policy.exposeHeaders;
  }
}
