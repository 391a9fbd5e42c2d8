/**
 * AuthorizationPolicy CUSTOM -> an external authorizer, as istiod builds it: the CUSTOM rules go
 * into an RBAC filter as *shadow* rules named `istio-ext-authz-ns[<ns>]-policy[<name>]-rule[<i>]`
 * (stat prefix `istio_ext_authz_`), and the ext_authz filter that follows runs only when that
 * shadow evaluation matched (`filter_enabled_metadata` on
 * `envoy.filters.http.rbac/istio_ext_authz_shadow_effective_policy_id`). The authorizer is the
 * MeshConfig extension provider the policies name (envoyExtAuthzHttp or envoyExtAuthzGrpc), reached
 * through its outbound cluster. On TCP chains only a gRPC provider applies (network ext_authz).
 * A policy naming an unknown or broken provider, or policies naming different providers, deny
 * everything (`default-deny-all-due-to-bad-CUSTOM-action`), as Istio does: never fail open.
 */
import type { ExtAuthzGrpcProvider, ExtAuthzHttpProvider, ExtensionProvider } from '../../../config/extension-providers.ts';
import { outboundClusterName } from '../names.ts';
import type { AppliedPolicy } from './authz-policies.ts';
import { HttpRbacType, NetworkRbacType, ruleSets } from './authz-filters.ts';

type Json = Record<string, unknown>;

const Prefix = 'istio-ext-authz';
const ShadowStatPrefix = 'istio_ext_authz_';

const denyAll = { action: 'DENY', policies: { 'default-deny-all-due-to-bad-CUSTOM-action': { permissions: [{ any: true }], principals: [{ any: true }] } } };

function enabledBy(filter: string): Json {
  return { filter, path: [{ key: `${ShadowStatPrefix}shadow_effective_policy_id` }], value: { string_match: { prefix: Prefix } } };
}

function host(service: string): string {
  return service.includes('/') ? service.slice(service.indexOf('/') + 1) : service;
}

function headerList(list: readonly string[] | undefined): Json | undefined {
  if (list === undefined || list.length === 0) return undefined;
  return {
    patterns: list.map((h) => (h.startsWith('*') ? { suffix: h.slice(1), ignore_case: true } : h.endsWith('*') ? { prefix: h.slice(0, -1), ignore_case: true } : { exact: h, ignore_case: true })),
  };
}

function duration(t: string | undefined): string {
  if (t === undefined) return '600s';
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(t)!;
  const secs = Number(m[1]) * ({ ms: 0.001, s: 1, m: 60, h: 3600 } as const)[m[2] as 'ms' | 's' | 'm' | 'h'];
  return `${Number(secs.toFixed(9))}s`;
}

function common(p: ExtensionProvider): Json {
  const c: Json = { transport_api_version: 'V3' };
  if (p.failOpen === true) c.failure_mode_allow = true;
  if (p.statusOnError !== undefined) c.status_on_error = { code: Number(p.statusOnError) };
  const body = p.includeRequestBodyInCheck;
  if (body !== undefined) c.with_request_body = { max_request_bytes: body.maxRequestBytes ?? 0, allow_partial_message: body.allowPartialMessage ?? false, pack_as_bytes: body.packAsBytes ?? false };
  return c;
}

function httpExtAuthz(p: ExtAuthzHttpProvider, cluster: string): Json {
  const service: Json = { server_uri: { uri: `http://${host(p.service)}`, cluster, timeout: duration(p.timeout) } };
  if (p.pathPrefix !== undefined) service.path_prefix = p.pathPrefix;
  const allowed = headerList(p.includeRequestHeadersInCheck);
  const add = Object.keys(p.includeAdditionalHeadersInCheck ?? {}).sort().map((k) => ({ key: k, value: p.includeAdditionalHeadersInCheck![k] }));
  if (allowed !== undefined || add.length > 0) service.authorization_request = { ...(allowed ? { allowed_headers: allowed } : {}), ...(add.length > 0 ? { headers_to_add: add } : {}) };
  const up = headerList(p.headersToUpstreamOnAllow);
  const deny = headerList(p.headersToDownstreamOnDeny);
  const ok = headerList(p.headersToDownstreamOnAllow);
  if (up || deny || ok) {
    service.authorization_response = { ...(up ? { allowed_upstream_headers: up } : {}), ...(deny ? { allowed_client_headers: deny } : {}), ...(ok ? { allowed_client_headers_on_success: ok } : {}) };
  }
  return { '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz', ...common(p), http_service: service, filter_enabled_metadata: enabledBy('envoy.filters.http.rbac') };
}

function grpcService(p: ExtAuthzGrpcProvider, cluster: string): Json {
  // `|` is not valid in an :authority: Istio's replacement.
  return { envoy_grpc: { cluster_name: cluster, authority: cluster.replace(/\|/g, '_.') }, timeout: duration(p.timeout) };
}

/** The provider the CUSTOM policies use, and its cluster; or why they cannot be enforced. */
function resolve(policies: readonly AppliedPolicy[], providers: readonly ExtensionProvider[], clusterNames: ReadonlySet<string>): { provider: ExtensionProvider; cluster: string } | string {
  const names = [...new Set(policies.map((p) => p.spec.provider?.name ?? ''))];
  if (names.length !== 1) return `only 1 provider can be used per workload, found multiple providers: ${names.join(', ')}`;
  const provider = providers.find((p) => p.name === names[0]);
  if (provider === undefined) return `available providers are [${providers.map((p) => p.name).join(', ')}] but found "${names[0]}"`;
  const cluster = outboundClusterName(provider.port, '', host(provider.service));
  if (!clusterNames.has(cluster)) return `no service ${provider.service} with port ${provider.port} for provider ${provider.name}`;
  return { provider, cluster };
}

/** The CUSTOM filters: [RBAC shadow, ext_authz] for HTTP chains and for TCP chains. */
export function customFilters(policies: readonly AppliedPolicy[], providers: readonly ExtensionProvider[], clusterNames: ReadonlySet<string>, port: (p: number) => number): { http: Json[]; tcp: Json[] } {
  if (policies.length === 0) return { http: [], tcp: [] };
  const r = resolve(policies, providers, clusterNames);
  if (typeof r === 'string') {
    return {
      http: [{ name: 'envoy.filters.http.rbac', typed_config: { '@type': HttpRbacType, rules: denyAll } }],
      tcp: [{ name: 'envoy.filters.network.rbac', typed_config: { '@type': NetworkRbacType, stat_prefix: 'tcp.', rules: denyAll } }],
    };
  }
  const enforced = (forTcp: boolean) => ruleSets(policies.map((p) => ({ ...p, dryRun: false })), 'DENY', forTcp, port, `${Prefix}-`).rules ?? { action: 'DENY', policies: {} };
  const http: Json[] = [
    { name: 'envoy.filters.http.rbac', typed_config: { '@type': HttpRbacType, shadow_rules: enforced(false), shadow_rules_stat_prefix: ShadowStatPrefix } },
    {
      name: 'envoy.filters.http.ext_authz',
      typed_config: r.provider.kind === 'http' ? httpExtAuthz(r.provider, r.cluster) : {
        '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz', ...common(r.provider),
        grpc_service: grpcService(r.provider, r.cluster), filter_enabled_metadata: enabledBy('envoy.filters.http.rbac'),
      },
    },
  ];
  const tcp: Json[] = r.provider.kind !== 'grpc' ? [] : [
    { name: 'envoy.filters.network.rbac', typed_config: { '@type': NetworkRbacType, stat_prefix: 'tcp.', shadow_rules: enforced(true), shadow_rules_stat_prefix: ShadowStatPrefix } },
    {
      name: 'envoy.filters.network.ext_authz',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.network.ext_authz.v3.ExtAuthz', stat_prefix: 'tcp.', transport_api_version: 'V3',
        ...(r.provider.failOpen === true ? { failure_mode_allow: true } : {}),
        grpc_service: grpcService(r.provider, r.cluster), filter_enabled_metadata: enabledBy('envoy.filters.network.rbac'),
      },
    },
  ];
  return { http, tcp };
}
