/**
 * Semantic validation ("analyzers", after `istioctl analyze`): checks that need more than one
 * resource — references that point nowhere, routes that can never be reached, policies that
 * contradict each other. Schema validation happens earlier, in src/config/load.ts; this runs on
 * resources that already passed it. Pure and deterministic: the same resources give the same
 * diagnostics in the same order (by file, line, code). Codes are documented in docs/diagnostics.md.
 */
import type { Diagnostic, Resource } from '../resource.ts';
import { buildContext, type AnalyzeOptions } from './context.ts';
import { checkDestinationRules } from './destination-rules.ts';
import { checkDeprecations } from './deprecations.ts';
import { checkDestinations } from './destinations.ts';
import { checkGatewayApi } from './gateway-api.ts';
import { checkGatewayServers } from './gateway-servers.ts';
import { checkKubernetesWorkloads } from './kubernetes-workloads.ts';
import { checkSecurity } from './security.ts';
import { checkMtls } from './mtls.ts';
import { checkSelectors } from './selectors.ts';
import { checkPolicyTargetRefs } from './policy-target-refs.ts';
import { checkServiceEntries } from './service-entries.ts';
import { checkShadowing } from './shadowing.ts';
import { checkHeaderValues } from './header-values.ts';
import { checkVirtualServiceGateways } from './virtual-service-gateways.ts';

export type { AnalyzeOptions } from './context.ts';
export type { ObservedPlaintext } from './mtls.ts';

/** Every code the analyzers can emit (for docs and tests). */
export const SemanticCodes = [
  'VS_HOST_NOT_FOUND', 'SUBSET_NOT_FOUND', 'DESTINATION_PORT_NOT_FOUND', 'DESTINATION_PORT_REQUIRED', 'WEIGHTS_NOT_100',
  'GATEWAY_NOT_FOUND', 'VS_HOST_NOT_IN_GATEWAY', 'VS_HOST_CONFLICT', 'SECRET_NOT_FOUND', 'SECRET_INVALID',
  'GATEWAY_CONFLICT', 'GATEWAY_DUPLICATE_CERTIFICATE', 'GATEWAY_PORT_NOT_EXPOSED', 'ROUTE_SHADOWED', 'ROUTE_MATCH_INEFFECTIVE',
  'DR_HOST_NOT_FOUND', 'SUBSET_DUPLICATE', 'SUBSET_SHADOWED', 'SUBSET_NO_WORKLOADS', 'DR_TLS_NO_CA', 'SE_ADDRESSES_REQUIRED',
  'HEADER_VALUE_INVALID', 'JWT_NO_KEYS', 'AUTHZ_UNKNOWN_CONDITION', 'MTLS_CONFLICT', 'NAMESPACE_NOT_FOUND',
  'SELECTOR_NO_MATCH', 'SELECTOR_CONFLICT', 'NAMESPACE_DEFAULT_CONFLICT', 'SELECTOR_INEFFECTIVE',
  'PORT_PROTOCOL_UNKNOWN', 'WORKLOAD_PORT_CONFLICT', 'WORKLOAD_PROXY_UID', 'DEPRECATED', 'MESH_CONFIG_INVALID',
  'PARENT_NOT_FOUND', 'ROUTE_BACKEND_NOT_FOUND', 'REF_NOT_PERMITTED', 'TARGET_REF_INEFFECTIVE', 'TARGET_REF_NOT_FOUND',
] as const;

/** Codes judged against a running mesh's traffic (AnalyzeOptions.observedPlaintext), never from config files alone. */
export const TrafficCodes = ['MTLS_PLAINTEXT_CLIENTS'] as const;

const checks = [
  checkDestinations, checkHeaderValues, checkDestinationRules, checkVirtualServiceGateways, checkGatewayServers, checkShadowing,
  checkGatewayApi, checkSecurity, checkSelectors, checkPolicyTargetRefs, checkServiceEntries, checkKubernetesWorkloads, checkDeprecations,
];

/** Runs every semantic check over `resources`; returns diagnostics sorted by file, line, code. */
export function analyzeConfig(resources: readonly Resource[], opts: AnalyzeOptions = {}): Diagnostic[] {
  const out: Diagnostic[] = [];
  const ctx = buildContext(resources, opts, out);
  for (const check of checks) check(ctx);
  checkMtls(ctx, opts.observedPlaintext);
  return out.sort(compareDiagnostics);
}

const sevRank = { error: 0, warning: 1, info: 2 } as const;

/** Orders diagnostics by file, line, severity, code, resource, field, message. */
export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  const s = (x: string | undefined, y: string | undefined): number => ((x ?? '') < (y ?? '') ? -1 : (x ?? '') > (y ?? '') ? 1 : 0);
  const ref = (d: Diagnostic): string => (d.resource ? `${d.resource.kind}/${d.resource.namespace}/${d.resource.name}` : '');
  return (
    s(a.file, b.file) ||
    (a.line ?? 0) - (b.line ?? 0) ||
    sevRank[a.severity] - sevRank[b.severity] ||
    s(a.code, b.code) ||
    s(ref(a), ref(b)) ||
    s(a.fieldPath, b.fieldPath) ||
    s(a.message, b.message)
  );
}
