/**
 * The external authorization HTTP filter (`envoy.filters.http.ext_authz`,
 * envoy.extensions.filters.http.ext_authz.v3.ExtAuthz): when `filter_enabled_metadata` (if set)
 * matches the request's dynamic metadata (Istio: the CUSTOM shadow RBAC matched), the request is
 * checked with the authorizer over the HTTP or gRPC service, through the proxy's cluster. Allowed:
 * the authorizer's chosen headers go upstream (and to the client on success). Denied: the
 * authorizer's status, body and chosen headers go to the client (response flag UAEX). Authorizer
 * unreachable or slow: `status_on_error` (default 403), or through with `failure_mode_allow`.
 * The request body is not sent to the authorizer (`with_request_body` is refused as a config
 * error rather than ignored).
 */
import { configError, optArr, optBool, optDurationMs, optObj, optStr, optUint, type Json } from '../../http/config-json.ts';
import type { FilterRegistration, HttpStream } from '../../http/filter-chain.ts';
import { compileStringMatcher, type StringMatch } from '../../http/matchers.ts';
import type { HeaderMap } from '../../upstream/types.ts';
import { compileMetadataMatcher, type RbacMatch } from '../rbac/rbac-matchers.ts';
import { httpRbacInput } from '../rbac/rbac-http.ts';
import { peerPrincipal } from '../rbac/peer-identity.ts';
import { protoRoot } from '../../../xds/proto-root.ts';
import { grpcCheck, httpAttributes, httpCheck, type CheckResult, type CheckSubject } from './check-client.ts';

const TYPE = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';
const PER_ROUTE_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute';

/** Headers Envoy always sends to an HTTP authorizer. */
const ALWAYS = new Set(['authorization', 'host', 'content-length']);
/** Headers never copied from an authorizer's response. */
const HOP = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date', 'server']);

function listMatcher(v: unknown, path: string): ((name: string) => boolean) | undefined {
  const o = optObj(v, path);
  if (o === undefined) return undefined;
  const ms: StringMatch[] = optArr(o.patterns, `${path}.patterns`).map((p, i) => compileStringMatcher(p, `${path}.patterns[${i}]`));
  return (name) => ms.some((m) => m(name));
}

type Service =
  | { kind: 'http'; cluster: string; timeoutMs: number; pathPrefix: string; allowed: ((n: string) => boolean) | undefined; add: HeaderMap; upstream: ((n: string) => boolean) | undefined; client: ((n: string) => boolean) | undefined; clientOnSuccess: ((n: string) => boolean) | undefined }
  | { kind: 'grpc'; cluster: string; authority: string; timeoutMs: number };

function compileService(o: Json, path: string): Service {
  if (o.http_service !== undefined) {
    const p = `${path}.http_service`;
    const h = optObj(o.http_service, p) ?? {};
    const uri = optObj(h.server_uri, `${p}.server_uri`) ?? configError(`${p}.server_uri`, 'is required');
    const req = optObj(h.authorization_request, `${p}.authorization_request`) ?? {};
    const res = optObj(h.authorization_response, `${p}.authorization_response`) ?? {};
    const add: HeaderMap = {};
    optArr(req.headers_to_add, `${p}.authorization_request.headers_to_add`).forEach((x, i) => {
      const hv = optObj(x, `${p}.authorization_request.headers_to_add[${i}]`) ?? {};
      add[(optStr(hv.key, `${p}.authorization_request.headers_to_add[${i}].key`) ?? '').toLowerCase()] = optStr(hv.value, `${p}.authorization_request.headers_to_add[${i}].value`) ?? '';
    });
    return {
      kind: 'http',
      cluster: optStr(uri.cluster, `${p}.server_uri.cluster`) ?? configError(`${p}.server_uri.cluster`, 'is required'),
      timeoutMs: optDurationMs(uri.timeout, `${p}.server_uri.timeout`) ?? configError(`${p}.server_uri.timeout`, 'is required'),
      pathPrefix: optStr(h.path_prefix, `${p}.path_prefix`) ?? '',
      allowed: listMatcher(req.allowed_headers, `${p}.authorization_request.allowed_headers`),
      add,
      upstream: listMatcher(res.allowed_upstream_headers, `${p}.authorization_response.allowed_upstream_headers`),
      client: listMatcher(res.allowed_client_headers, `${p}.authorization_response.allowed_client_headers`),
      clientOnSuccess: listMatcher(res.allowed_client_headers_on_success, `${p}.authorization_response.allowed_client_headers_on_success`),
    };
  }
  if (o.grpc_service !== undefined) {
    const p = `${path}.grpc_service`;
    const g = optObj(o.grpc_service, p) ?? {};
    const e = optObj(g.envoy_grpc, `${p}.envoy_grpc`) ?? configError(`${p}.envoy_grpc`, 'is required (google_grpc is not supported)');
    const cluster = optStr(e.cluster_name, `${p}.envoy_grpc.cluster_name`) ?? configError(`${p}.envoy_grpc.cluster_name`, 'is required');
    return { kind: 'grpc', cluster, authority: optStr(e.authority, `${p}.envoy_grpc.authority`) || cluster, timeoutMs: optDurationMs(g.timeout, `${p}.timeout`) ?? 200 };
  }
  return configError(path, 'one of http_service or grpc_service is required');
}

/** A compiled ExtAuthz config. */
export interface ExtAuthzConfig {
  readonly service: Service;
  readonly failureModeAllow: boolean;
  readonly statusOnError: number;
  readonly enabled: RbacMatch | undefined;
}

/** Compile an ExtAuthz typed config. */
export function compileExtAuthz(o: Json, path: string): ExtAuthzConfig {
  if (o.with_request_body !== undefined) configError(`${path}.with_request_body`, 'sending the request body to the authorizer is not supported');
  if (o.filter_enabled !== undefined) configError(`${path}.filter_enabled`, 'runtime fractions are not supported');
  const soe = optObj(o.status_on_error, `${path}.status_on_error`);
  return Object.freeze({
    service: compileService(o, path),
    failureModeAllow: optBool(o.failure_mode_allow, `${path}.failure_mode_allow`) ?? false,
    statusOnError: soe === undefined ? 403 : typeof soe.code === 'string' ? (protoRoot().lookupEnum('envoy.type.v3.StatusCode').values[soe.code] ?? configError(`${path}.status_on_error.code`, `unknown status '${soe.code}'`)) : (optUint(soe.code, `${path}.status_on_error.code`) ?? 403),
    enabled: o.filter_enabled_metadata !== undefined ? compileMetadataMatcher(o.filter_enabled_metadata, `${path}.filter_enabled_metadata`) : undefined,
  });
}

function subject(s: HttpStream): CheckSubject {
  const i = s.info;
  const dst = s.originalDestination;
  return {
    method: s.method, path: s.path, authority: s.authority, scheme: s.scheme, protocol: i.protocol, headers: s.headers, requestId: i.requestId,
    source: { address: i.downstreamDirectRemoteAddress, port: i.downstreamDirectRemotePort, principal: peerPrincipal(i.connectionSecurity) ?? '' },
    destination: { address: dst?.address ?? i.downstreamLocalAddress, port: dst?.port ?? i.downstreamLocalPort },
    signal: s.downstreamSignal,
  };
}

function pick(headers: HeaderMap, allow: ((n: string) => boolean) | undefined, all: boolean): HeaderMap {
  const out: HeaderMap = {};
  for (const [k, v] of Object.entries(headers)) if (!HOP.has(k) && (allow ? allow(k) : all)) out[k] = v;
  return out;
}

async function check(cfg: ExtAuthzConfig, s: HttpStream, ctx: { clusterManager: import('../../upstream/types.ts').ClusterManager }): Promise<CheckResult> {
  const svc = cfg.service;
  const subj = subject(s);
  if (svc.kind === 'grpc') return grpcCheck(ctx.clusterManager, svc.cluster, svc.authority, httpAttributes(subj), svc.timeoutMs, s.downstreamSignal);
  const headers: HeaderMap = { ...svc.add };
  for (const [k, v] of Object.entries(s.headers)) if (ALWAYS.has(k) || svc.allowed?.(k)) headers[k] = v;
  const r = await httpCheck(ctx.clusterManager, svc.cluster, subj, { pathPrefix: svc.pathPrefix, headers, timeoutMs: svc.timeoutMs });
  if ('error' in r) return { kind: 'error', reason: r.error };
  if (r.status === 200) return { kind: 'allow', upstreamHeaders: pick(r.headers, svc.upstream, false), removeHeaders: [], clientHeaders: pick(r.headers, svc.clientOnSuccess, false) };
  // Envoy: without allowed_client_headers every authorizer header goes to the client.
  return { kind: 'deny', status: r.status, headers: pick(r.headers, svc.client, true), body: r.body };
}

/** Registration of the ext_authz HTTP filter. */
export const extAuthzFilter: FilterRegistration = {
  name: 'envoy.filters.http.ext_authz',
  typeUrls: [TYPE],
  parsePerRoute(raw, path) {
    if (raw['@type'] !== undefined && raw['@type'] !== PER_ROUTE_TYPE) configError(`${path}.@type`, `expected ${PER_ROUTE_TYPE}`);
    return { disabled: optBool(raw.disabled, `${path}.disabled`) ?? false };
  },
  createFactory(typedConfig, ctx, path, configuredName) {
    const cfg = compileExtAuthz(typedConfig, path);
    return {
      name: configuredName,
      terminal: false,
      createFilter: () => {
        let clientHeaders: HeaderMap | undefined;
        return {
          async onRequestHeaders(s) {
            if ((s.perFilterConfig(configuredName) as { disabled: boolean } | undefined)?.disabled) return 'continue';
            if (cfg.enabled !== undefined && !cfg.enabled(httpRbacInput(s))) return 'continue';
            const r = await check(cfg, s, ctx);
            if (s.downstreamSignal.aborted) return 'stop';
            if (r.kind === 'allow') {
              for (const h of r.removeHeaders) delete s.headers[h];
              Object.assign(s.headers, r.upstreamHeaders);
              if (Object.keys(r.clientHeaders).length > 0) clientHeaders = r.clientHeaders;
              return 'continue';
            }
            if (r.kind === 'error' && cfg.failureModeAllow) {
              s.headers['x-envoy-auth-failure-mode-allowed'] = 'true';
              return 'continue';
            }
            s.info.responseFlags.add('UAEX');
            if (r.kind === 'error') s.sendLocalReply(cfg.statusOnError, '', { details: 'ext_authz_error' });
            else s.sendLocalReply(r.status, r.body, { details: 'ext_authz_denied', headers: r.headers });
            return 'stop';
          },
          onResponseHeaders(_s, head) {
            if (clientHeaders !== undefined) Object.assign(head.headers, clientHeaders);
          },
        };
      },
    };
  },
};
