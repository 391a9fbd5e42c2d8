/**
 * The RBAC HTTP filter (`envoy.filters.http.rbac`, envoy.extensions.filters.http.rbac.v3.RBAC):
 * shadow rules are evaluated first and their result written to dynamic metadata
 * (`<shadow_rules_stat_prefix>shadow_effective_policy_id` / `shadow_engine_result` under
 * `envoy.filters.http.rbac`, which ext_authz's `filter_enabled_metadata` reads for Istio's CUSTOM
 * action); then the enforced rules decide. A denial is Envoy's local reply 403 (gRPC:
 * PERMISSION_DENIED) with details `rbac_access_denied_matched_policy[<policy>|none]`. Trellis adds
 * what Envoy users miss: the body and an `x-trellis-policy` header name the AuthorizationPolicy
 * that decided (`RBAC: access denied by AuthorizationPolicy <ns>/<name>`), unless the listener's
 * `trellis.authz` metadata sets `name_policy_on_deny: false`. RBACPerRoute overrides or (without
 * `rbac`) disables the filter on a route.
 */
import { configError, optBool, optObj, optStr, type Json } from '../../http/config-json.ts';
import type { FilterRegistration, HttpStream } from '../../http/filter-chain.ts';
import { authorizationPoliciesOf, authorizationPolicyOf, compileRbac, decide, type RbacEngine } from './rbac-engine.ts';
import type { RbacInput } from './rbac-matchers.ts';
import { peerPrincipal } from './peer-identity.ts';

const TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
const PER_ROUTE_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute';
/** Dynamic metadata namespace of the RBAC HTTP filter. */
export const RbacMetadataNamespace = 'envoy.filters.http.rbac';
/** The response header naming the policy that denied a request. */
export const PolicyHeader = 'x-trellis-policy';

/** A compiled RBAC filter config. */
export interface RbacFilterConfig {
  readonly rules: RbacEngine | undefined;
  readonly shadow: RbacEngine | undefined;
  readonly shadowPrefix: string;
}

/** Compile an RBAC filter config (or the `rbac` of an RBACPerRoute). */
export function compileRbacFilter(o: Json, path: string): RbacFilterConfig {
  for (const f of ['matcher', 'shadow_matcher']) if (o[f] !== undefined) configError(`${path}.${f}`, 'the matcher API is not supported; use rules');
  return Object.freeze({
    rules: o.rules !== undefined ? compileRbac(o.rules, `${path}.rules`) : undefined,
    shadow: o.shadow_rules !== undefined ? compileRbac(o.shadow_rules, `${path}.shadow_rules`) : undefined,
    shadowPrefix: optStr(o.shadow_rules_stat_prefix, `${path}.shadow_rules_stat_prefix`) ?? '',
  });
}

/** The facts of an HTTP request that RBAC matches on. */
export function httpRbacInput(s: HttpStream): RbacInput {
  const info = s.info;
  const dst = s.originalDestination;
  return {
    http: s,
    directRemoteIp: info.downstreamDirectRemoteAddress,
    remoteIp: info.downstreamRemoteAddress,
    destinationIp: dst?.address ?? info.downstreamLocalAddress,
    destinationPort: dst?.port ?? info.downstreamLocalPort,
    sni: info.downstreamTls?.sni,
    peerPrincipal: peerPrincipal(info.connectionSecurity),
    metadata: (ns) => s.metadata(ns),
  };
}

/** What a denial says: the AuthorizationPolicy (or RBAC policy) that decided. */
export function denialSubject(engine: RbacEngine, matched: string | undefined): { header: string; text: string } {
  if (matched !== undefined) {
    const ap = authorizationPolicyOf(matched);
    return { header: ap, text: ap === matched ? `RBAC policy ${matched}` : `AuthorizationPolicy ${ap}` };
  }
  const all = authorizationPoliciesOf(engine);
  const istio = all.some((n) => n.includes('/'));
  return { header: all.join(', '), text: `${istio ? 'AuthorizationPolicy' : 'RBAC policy'} ${all.join(', ')} (no ALLOW rule matched)` };
}

/** True unless the listener metadata turns naming the denying policy off. */
export function namesPolicyOnDeny(listenerMetadata: Readonly<Record<string, Json>> | undefined): boolean {
  const authz = listenerMetadata?.['trellis.authz'];
  return optBool(authz?.name_policy_on_deny, 'metadata.filter_metadata["trellis.authz"].name_policy_on_deny') ?? true;
}

function evaluateShadow(s: HttpStream, cfg: RbacFilterConfig, input: RbacInput): void {
  if (cfg.shadow === undefined) return;
  const d = decide(cfg.shadow, input);
  if (d.policy !== undefined) s.setMetadata(RbacMetadataNamespace, `${cfg.shadowPrefix}shadow_effective_policy_id`, d.policy);
  s.setMetadata(RbacMetadataNamespace, `${cfg.shadowPrefix}shadow_engine_result`, d.allowed ? 'allowed' : 'denied');
}

/** Registration of the RBAC HTTP filter. */
export const rbacHttpFilter: FilterRegistration = {
  name: 'envoy.filters.http.rbac',
  typeUrls: [TYPE],
  parsePerRoute(raw, path) {
    if (raw['@type'] !== undefined && raw['@type'] !== PER_ROUTE_TYPE) configError(`${path}.@type`, `expected ${PER_ROUTE_TYPE}`);
    const rbac = optObj(raw.rbac, `${path}.rbac`);
    return { perRoute: rbac === undefined ? undefined : compileRbacFilter(rbac, `${path}.rbac`) };
  },
  createFactory(typedConfig, ctx, path, configuredName) {
    const base = compileRbacFilter(typedConfig, path);
    const naming = namesPolicyOnDeny(ctx.listenerMetadata);
    return {
      name: configuredName,
      terminal: false,
      createFilter: () => ({
        onRequestHeaders(s) {
          const route = s.perFilterConfig(configuredName) as { perRoute: RbacFilterConfig | undefined } | undefined;
          if (route !== undefined && route.perRoute === undefined) return 'continue';
          const cfg = route?.perRoute ?? base;
          if (cfg.rules === undefined && cfg.shadow === undefined) return 'continue';
          const input = httpRbacInput(s);
          evaluateShadow(s, cfg, input);
          if (cfg.rules === undefined) return 'continue';
          const d = decide(cfg.rules, input);
          if (cfg.rules.action === 'LOG') {
            s.setMetadata('envoy.common', 'access_log_hint', d.policy !== undefined);
            return 'continue';
          }
          if (d.allowed) return 'continue';
          const details = `rbac_access_denied_matched_policy[${d.policy ?? 'none'}]`;
          if (!naming) {
            s.sendLocalReply(403, 'RBAC: access denied', { details });
            return 'stop';
          }
          const who = denialSubject(cfg.rules, d.policy);
          s.sendLocalReply(403, `RBAC: access denied by ${who.text}`, { details, headers: { [PolicyHeader]: who.header } });
          return 'stop';
        },
      }),
    };
  },
};
