/**
 * The router filter (`envoy.filters.http.router`), terminal in every chain. For the matched route
 * it answers direct responses and redirects, or forwards: picks the cluster (plain, weighted with
 * the injected random source, or from cluster_header: the logical -> concrete step), applies route
 * header mutations, path and host rewrites and hash policies, honours Envoy's x-envoy-* request
 * controls (upstream timeout, per-try timeout, max retries, retry-on) when they survived the
 * connection manager's edge sanitising, fires request mirrors, then hands the attempts to
 * attempts.ts. Endpoint choice and connections are the cluster's business (ClusterHandle).
 */
import type { HeaderMap } from '../upstream/types.ts';
import type { Json } from '../xds-json.ts';
import { optBool } from '../xds-json.ts';
import type { FilterRegistration, FilterStatus, HttpFilter, HttpStream, FilterFactoryContext } from '../http/stream.ts';
import type { DirectResponseAction, ForwardAction, HashPolicy } from './route-action.ts';
import { applyRouteHeaders, hasPathRewrite, pickWeightedCluster, redirectLocation, redirectRewrittenPath, rewritePath, routeHeadersNeedFormat } from './route-rewrite.ts';
import { parseQuery } from '../http/matchers.ts';
import { runAttempts, type AttemptPlan, type RequestTemplate } from './attempts.ts';
import { DEFAULT_BODY_BUFFER_LIMIT, NO_BODY, ReplayableBody } from './request-body.ts';
import { fireMirrors } from './mirror.ts';

/** Registration of the router filter. */
export const routerFilter: FilterRegistration = {
  name: 'envoy.filters.http.router',
  typeUrls: ['type.googleapis.com/envoy.extensions.filters.http.router.v3.Router'],
  createFactory(typedConfig, ctx, path, configuredName) {
    const suppressHeaders = optBool(typedConfig.suppress_envoy_headers, `${path}.suppress_envoy_headers`) ?? false;
    // The router keeps no state of its own per stream: one filter object serves every stream.
    const filter: HttpFilter = { onRequestHeaders: (s) => route(s, ctx, suppressHeaders) };
    return {
      name: configuredName,
      terminal: true,
      createFilter: (): HttpFilter => filter,
    };
  },
};

const KNOWN_RETRY_ON = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'envoy-ratelimited', 'retriable-4xx', 'refused-stream',
  'retriable-status-codes', 'retriable-headers', 'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
]);

const CONTROL_HEADERS = [
  'x-envoy-upstream-rq-timeout-ms', 'x-envoy-upstream-rq-per-try-timeout-ms', 'x-envoy-max-retries', 'x-envoy-retry-on',
  'x-envoy-retry-grpc-on', 'x-envoy-expected-rq-timeout-ms', 'x-envoy-attempt-count',
];

function route(s: HttpStream, ctx: FilterFactoryContext, suppressHeaders: boolean): FilterStatus | Promise<FilterStatus> {
  const m = s.route;
  if (!m) {
    s.sendLocalReply(404, '', { flag: 'NR', details: 'route_not_found' });
    return 'stop';
  }
  const a = m.action;
  switch (a.kind) {
    case 'direct_response':
      return directResponse(s, a);
    case 'redirect': {
      s.info.responseCodeDetails = 'redirect';
      const rewritten = redirectRewrittenPath(m.route, a, s.path);
      if (rewritten !== undefined) s.forwarded = { headers: s.headers, path: rewritten, authority: s.authority };
      s.writeHeaders(a.status, { location: redirectLocation(m.route, a, s), 'content-length': '0' });
      s.endResponse();
      return 'stop';
    }
    case 'non_forwarding':
      s.sendLocalReply(404, '', { flag: 'NR', details: 'non_forwarding_route' });
      return 'stop';
    case 'route':
      // The attempt driver carries the exchange to its end: nothing waits on it.
      forward(s, a, ctx, suppressHeaders);
      return 'stop';
  }
}

async function directResponse(s: HttpStream, a: DirectResponseAction): Promise<'stop'> {
  const headers: HeaderMap = {};
  const body = a.body === undefined ? undefined : Buffer.from(a.body);
  if (body) headers['content-type'] = 'text/plain';
  headers['content-length'] = String(body?.length ?? 0);
  // Envoy adds a Location (the request's own URL) to a 201 or 3xx direct response.
  if (a.status === 201 || (a.status >= 300 && a.status < 400)) headers.location = `${s.scheme}://${s.authority}${s.path.startsWith('/') ? '' : '/'}${s.path}`;
  s.info.responseCodeDetails = 'direct_response';
  s.writeHeaders(a.status, headers);
  if (body && s.method !== 'HEAD') await s.writeBody(body);
  s.endResponse();
  return 'stop';
}

function headerString(h: HeaderMap, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Forward to the route's cluster (or answer locally when it cannot be). */
function forward(s: HttpStream, a: ForwardAction, ctx: FilterFactoryContext, suppressHeaders: boolean): void {
  const m = s.route!;
  let clusterName = a.cluster;
  if (a.weightedClusters) {
    const wc = pickWeightedCluster(a.weightedClusters, a.totalWeight, ctx.random());
    s.weightedCluster = wc;
    clusterName = wc.clusterHeader ? headerString(s.headers, wc.clusterHeader) : wc.name;
  } else if (a.clusterHeader) {
    clusterName = headerString(s.headers, a.clusterHeader);
  }
  const cluster = clusterName ? ctx.clusterManager.get(clusterName) : undefined;
  s.info.clusterName = clusterName;
  if (!cluster) {
    s.sendLocalReply(a.clusterNotFoundStatus, '', { flag: 'NC', details: 'cluster_not_found' });
    return;
  }

  const h = s.headers;
  // An expectation other than 100-continue (which the connection manager answered) is the
  // backend's to meet, and the upstream client cannot send one (undici refuses Expect): Envoy
  // forwards it and typical backends (node, Go) answer 417; here the router answers 417 itself
  // (RFC 9110 section 10.1.1), after routing, so route-level replies still win as in Envoy.
  if (h.expect !== undefined) {
    s.sendLocalReply(417, 'Expectation Failed', { details: 'unsupported_expectation' });
    return;
  }
  // Envoy's request controls: read them, then never forward them.
  let timeoutMs = ctl(h, 'x-envoy-upstream-rq-timeout-ms') ?? a.timeoutMs;
  if (a.grpcTimeoutHeaderMaxMs !== undefined) {
    // gRPC deadline propagation: grpc-timeout replaces the route timeout, capped by grpc_timeout_header_max (0 = no cap).
    const g = grpcTimeoutMs(headerString(h, 'grpc-timeout'));
    if (g !== undefined) timeoutMs = a.grpcTimeoutHeaderMaxMs > 0 ? Math.min(g, a.grpcTimeoutHeaderMaxMs) : g;
  }
  const retryOnHttp = headerString(h, 'x-envoy-retry-on');
  const retryOnGrpc = s.grpc ? headerString(h, 'x-envoy-retry-grpc-on') : undefined;
  const retryOnHeader = retryOnHttp === undefined ? retryOnGrpc : retryOnGrpc === undefined ? retryOnHttp : `${retryOnHttp},${retryOnGrpc}`;
  // One clone of the map (V8 copies its shape and fields at once, where adding the fields one by
  // one grew the property store several times), then the controls, when any came, deleted.
  const headers: HeaderMap = { ...h };
  for (let i = 0; i < CONTROL_HEADERS.length; i++) if (headers[CONTROL_HEADERS[i]] !== undefined) delete headers[CONTROL_HEADERS[i]];
  let retry = a.retryPolicy;
  if (retryOnHeader !== undefined) {
    const on = new Set(retry?.retryOn ?? []);
    // Unknown conditions in the header are ignored, as Envoy does.
    for (const c of retryOnHeader.split(',')) if (KNOWN_RETRY_ON.has(c.trim())) on.add(c.trim());
    retry = { ...(retry ?? { numRetries: 1, perTryTimeoutMs: 0, baseIntervalMs: 25, maxIntervalMs: 250, retriableStatusCodes: new Set(), retriableHeaders: [], avoidPreviousHosts: false, hostSelectionRetryMaxAttempts: 1 }), retryOn: on };
  }
  const numRetries = ctl(h, 'x-envoy-max-retries') ?? retry?.numRetries ?? 0;
  const perTryTimeoutMs = ctl(h, 'x-envoy-upstream-rq-per-try-timeout-ms') ?? retry?.perTryTimeoutMs ?? 0;

  const table = s.routeTable!;
  applyRouteHeaders(headers, table, m, s.weightedCluster, 'request', routeHeadersNeedFormat(table, m, s.weightedCluster, 'request')
    ? { info: s.info, method: s.method, path: s.path, authority: s.authority, scheme: s.scheme, requestHeaders: headers }
    : undefined);
  let path = rewritePath(m.route, a.prefixRewrite, a.regexRewrite, s.path);
  // Envoy sets it whenever a rewrite is configured (even one that changed nothing), unless suppressed.
  if (hasPathRewrite(a.prefixRewrite, a.regexRewrite) && !suppressHeaders) headers['x-envoy-original-path'] = s.path;
  if (path === '') path = '/';
  // Envoy 1.40: a weighted cluster's host_rewrite_literal just sets the host; then the route's
  // own host rewrite (which wins) moves the host it replaces to x-envoy-original-host (unless
  // suppressed), and to x-forwarded-host only with append_x_forwarded_host (not repeating its last value).
  let authority = s.weightedCluster?.hostRewriteLiteral || s.authority;
  const newHost = a.hostRewriteLiteral || (a.hostRewriteHeader ? headerString(h, a.hostRewriteHeader) : undefined);
  if (newHost) {
    if (!suppressHeaders) headers['x-envoy-original-host'] = authority;
    if (a.appendXForwardedHost && authority !== '') {
      const xfh = headerString(headers, 'x-forwarded-host');
      if (xfh === undefined || xfh === '') headers['x-forwarded-host'] = authority;
      else if (xfh.split(',').at(-1)?.trim() !== authority) headers['x-forwarded-host'] = `${xfh},${authority}`;
    }
    authority = newHost;
  }
  if (!suppressHeaders && timeoutMs > 0) headers['x-envoy-expected-rq-timeout-ms'] = String(perTryTimeoutMs > 0 && perTryTimeoutMs < timeoutMs ? perTryTimeoutMs : timeoutMs);

  const wantReplay = !!retry || !!a.hedgePolicy || a.mirrors.length > 0;
  const limit = m.route.bufferLimitBytes ?? m.virtualHost.bufferLimitBytes ?? DEFAULT_BODY_BUFFER_LIMIT;
  const body = s.body === null ? NO_BODY : new ReplayableBody(s.body, wantReplay ? limit : 0);
  const plan: AttemptPlan = {
    method: s.method, path, authority, scheme: s.scheme, headers, hashKey: hashKey(a.hashPolicies, s), grpc: s.grpc,
    downstreamProtocol: s.info.protocol === 'HTTP/2' ? 'http2' : 'http1',
    // (A conditional spread here cost an empty object and a clone per request.)
    originalDestination: s.originalDestination ? { address: s.originalDestination.address, port: s.originalDestination.port } : undefined,
    stream: s, cluster, body, timeoutMs, perTryTimeoutMs, retry, numRetries, hedge: a.hedgePolicy,
    attemptCountHeader: m.virtualHost.includeAttemptCountInRequest,
    attemptCountInResponse: m.virtualHost.includeAttemptCountInResponse,
    suppressEnvoyHeaders: suppressHeaders,
    random: ctx.random,
  };
  // The plan's headers, path and authority are the request as forwarded (no object of its own).
  s.forwarded = plan;
  if (a.mirrors.length > 0) fireMirrors(ctx, a.mirrors, requestTemplate(plan), body, timeoutMs);
  runAttempts(plan);
}

/** The request fields of a plan alone (a mirror copies its template: not the plan's stream, cluster or policies). */
function requestTemplate(p: AttemptPlan): RequestTemplate {
  return {
    method: p.method, path: p.path, authority: p.authority, scheme: p.scheme, headers: p.headers, hashKey: p.hashKey, grpc: p.grpc,
    downstreamProtocol: p.downstreamProtocol, originalDestination: p.originalDestination,
  };
}

/** A numeric Envoy request control header, undefined when absent or not a number. */
function ctl(h: HeaderMap, name: string): number | undefined {
  const v = headerString(h, name);
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
}

const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const GRPC_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** Parse a grpc-timeout header ("100m", "5S") into ms; undefined when absent or malformed. */
export function grpcTimeoutMs(v: string | undefined): number | undefined {
  const m = v === undefined ? null : GRPC_TIMEOUT.exec(v);
  return m ? Math.max(1, Math.ceil(Number(m[1]) * GRPC_UNITS[m[2]])) : undefined;
}

/** The LB hash from the route's hash policies (the first terminal match stops, as Envoy). */
function hashKey(policies: readonly HashPolicy[], s: HttpStream): string | undefined {
  if (policies.length === 0) return undefined;
  let key: string | undefined;
  for (const p of policies) {
    let v: string | undefined;
    if (p.kind === 'header') v = headerString(s.headers, p.name);
    else if (p.kind === 'source_ip') v = s.info.downstreamRemoteAddress;
    else if (p.kind === 'query_parameter') v = parseQuery(s.path).get(p.name);
    else {
      const cookie = headerString(s.headers, 'cookie') ?? '';
      for (const part of cookie.split(';')) {
        const eq = part.indexOf('=');
        if (eq > 0 && part.slice(0, eq).trim() === p.name) v = part.slice(eq + 1).trim();
      }
    }
    if (v !== undefined) {
      key = key === undefined ? v : `${key}|${v}`;
      if (p.terminal) break;
    }
  }
  return key;
}

export type { Json };
