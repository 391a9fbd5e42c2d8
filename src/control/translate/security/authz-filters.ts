/**
 * The authorization filters of one proxy, as Istio builds them: for HTTP filter chains the
 * envoy.filters.http.rbac filters AUDIT (action LOG), DENY and ALLOW, after the CUSTOM pair (an
 * RBAC filter in shadow mode whose result enables ext_authz, see ext-authz.ts); for TCP filter
 * chains the same as envoy.filters.network.rbac with stat_prefix `tcp.`. RBAC policy names are
 * Istio's `ns[<ns>]-policy[<name>]-rule[<i>]`, which is how a Trellis proxy (and a reader of
 * Envoy's response code details) names the AuthorizationPolicy that decided.
 */
import type { AppliedPolicy, PoliciesByAction } from './authz-policies.ts';
import { MatchNever, rbacPolicyOf, type RuleContext } from './rbac-rule.ts';

type Json = Record<string, unknown>;

export const HttpRbacType = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
export const NetworkRbacType = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';

/** Istio's RBAC policy name for rule `i` of a policy (the proxy parses it back to `<ns>/<name>`). */
export function rbacPolicyName(p: { namespace: string; name: string }, i: number, prefix = ''): string {
  return `${prefix}ns[${p.namespace}]-policy[${p.name}]-rule[${i}]`;
}

/** Enforced and dry-run RBAC rule sets for policies of one action. */
export function ruleSets(policies: readonly AppliedPolicy[], action: 'ALLOW' | 'DENY' | 'LOG', forTcp: boolean, port: (p: number) => number, namePrefix = ''): { rules?: Json; shadow?: Json } {
  const enforced: Record<string, Json> = {};
  const shadow: Record<string, Json> = {};
  let hasEnforced = false;
  let hasShadow = false;
  for (const p of policies) {
    const target = p.dryRun ? shadow : enforced;
    if (p.dryRun) hasShadow = true;
    else hasEnforced = true;
    const rules = p.spec.rules ?? [];
    if (rules.length === 0) {
      target[rbacPolicyName(p, 0, namePrefix)] = MatchNever;
      continue;
    }
    const ctx: RuleContext = { forTcp, action, namespace: p.namespace, port };
    rules.forEach((rule, i) => {
      const policy = rbacPolicyOf(rule ?? {}, ctx);
      if (policy !== undefined) target[rbacPolicyName(p, i, namePrefix)] = policy;
    });
  }
  return {
    ...(hasEnforced ? { rules: { action, policies: enforced } } : {}),
    ...(hasShadow ? { shadow: { action, policies: shadow } } : {}),
  };
}

function shadowPrefix(action: 'ALLOW' | 'DENY' | 'LOG'): string | undefined {
  return action === 'ALLOW' ? 'istio_dry_run_allow_' : action === 'DENY' ? 'istio_dry_run_deny_' : undefined;
}

const ORDER: readonly ['AUDIT' | 'DENY' | 'ALLOW', 'ALLOW' | 'DENY' | 'LOG'][] = [['AUDIT', 'LOG'], ['DENY', 'DENY'], ['ALLOW', 'ALLOW']];

function rbacFilters(policies: PoliciesByAction, port: (p: number) => number, forTcp: boolean): Json[] {
  const out: Json[] = [];
  for (const [kind, action] of ORDER) {
    if (policies[kind].length === 0) continue;
    const { rules, shadow } = ruleSets(policies[kind], action, forTcp, port);
    const cfg: Json = forTcp ? { '@type': NetworkRbacType, stat_prefix: 'tcp.' } : { '@type': HttpRbacType };
    if (rules !== undefined) cfg.rules = rules;
    if (shadow !== undefined) {
      cfg.shadow_rules = shadow;
      const sp = shadowPrefix(action);
      if (sp !== undefined) cfg.shadow_rules_stat_prefix = sp;
    }
    out.push({ name: forTcp ? 'envoy.filters.network.rbac' : 'envoy.filters.http.rbac', typed_config: cfg });
  }
  return out;
}

/** RBAC HTTP filters for AUDIT, DENY and ALLOW policies (CUSTOM is separate), in Istio's order. */
export function httpRbacFilters(policies: PoliciesByAction, port: (p: number) => number): Json[] {
  return rbacFilters(policies, port, false);
}

/** RBAC network filters for a TCP filter chain, in Istio's order. */
export function networkRbacFilters(policies: PoliciesByAction, port: (p: number) => number): Json[] {
  return rbacFilters(policies, port, true);
}
