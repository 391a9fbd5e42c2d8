/**
 * One RBAC rule set (envoy.config.rbac.v3.RBAC: an action and named policies) compiled once.
 * A policy matches when any of its permissions and any of its principals match. ALLOW admits what
 * some policy matches, DENY refuses it, LOG admits everything and reports the match. Policies are
 * evaluated in name order (Envoy keeps them in an ordered map), so the policy reported for a
 * decision is the same one Envoy reports in `rbac_access_denied_matched_policy[...]`. Also the
 * vocabulary for naming the AuthorizationPolicy behind an Istio-style policy name.
 */
import { configError, optArr, optObj } from '../../http/config-json.ts';
import { compilePermission, compilePrincipal, type RbacInput, type RbacMatch } from './rbac-matchers.ts';

export type RbacAction = 'ALLOW' | 'DENY' | 'LOG';

interface CompiledPolicy {
  readonly name: string;
  readonly permissions: RbacMatch;
  readonly principals: RbacMatch;
}

/** A compiled rule set. */
export interface RbacEngine {
  readonly action: RbacAction;
  /** Policy names, in evaluation order. */
  readonly policyNames: readonly string[];
  /** The first policy (name order) matching `input`, or undefined. */
  firstMatch(input: RbacInput): string | undefined;
}

/** The outcome of enforcing a rule set on one request or connection. */
export interface RbacDecision {
  readonly allowed: boolean;
  /** The matched policy, when one matched. */
  readonly policy: string | undefined;
}

const ACTIONS: Record<string, RbacAction> = { ALLOW: 'ALLOW', DENY: 'DENY', LOG: 'LOG', 0: 'ALLOW', 1: 'DENY', 2: 'LOG' };

function anyOf(list: readonly RbacMatch[]): RbacMatch {
  return (i) => {
    for (const m of list) if (m(i)) return true;
    return false;
  };
}

/** Compile an RBAC message; throws HTTP_CONFIG_INVALID naming the field on bad config. */
export function compileRbac(v: unknown, path: string): RbacEngine {
  const o = optObj(v, path) ?? {};
  const actionRaw = o.action ?? 'ALLOW';
  const action = ACTIONS[String(actionRaw)] ?? configError(`${path}.action`, `unknown action '${String(actionRaw)}'`);
  if (o.audit_logging_options !== undefined) configError(`${path}.audit_logging_options`, 'is not supported');
  const policiesObj = optObj(o.policies, `${path}.policies`) ?? {};
  const policies: CompiledPolicy[] = Object.keys(policiesObj).sort().map((name) => {
    const pp = `${path}.policies[${JSON.stringify(name)}]`;
    const p = optObj(policiesObj[name], pp) ?? {};
    if (p.condition !== undefined || p.checked_condition !== undefined || p.cel_config !== undefined) configError(`${pp}.condition`, 'CEL conditions are not supported');
    const perms = optArr(p.permissions, `${pp}.permissions`).map((x, i) => compilePermission(x, `${pp}.permissions[${i}]`));
    const princ = optArr(p.principals, `${pp}.principals`).map((x, i) => compilePrincipal(x, `${pp}.principals[${i}]`));
    if (perms.length === 0) configError(`${pp}.permissions`, 'at least one permission is required');
    if (princ.length === 0) configError(`${pp}.principals`, 'at least one principal is required');
    return { name, permissions: anyOf(perms), principals: anyOf(princ) };
  });
  return Object.freeze({
    action,
    policyNames: Object.freeze(policies.map((p) => p.name)),
    firstMatch(input: RbacInput): string | undefined {
      for (const p of policies) if (p.permissions(input) && p.principals(input)) return p.name;
      return undefined;
    },
  });
}

/** Enforce `engine` on `input`: ALLOW admits a match, DENY refuses one, LOG admits everything. */
export function decide(engine: RbacEngine, input: RbacInput): RbacDecision {
  const policy = engine.firstMatch(input);
  const allowed = engine.action === 'ALLOW' ? policy !== undefined : engine.action === 'DENY' ? policy === undefined : true;
  return { allowed, policy };
}

const ISTIO_NAME = /^(?:istio-ext-authz-)?ns\[([^\]]*)\]-policy\[([^\]]*)\]-rule\[\d+\]$/;

/**
 * The AuthorizationPolicy behind an RBAC policy name: `ns[shop]-policy[deny-x]-rule[0]` (Istio's
 * naming, which our control plane uses too) is `shop/deny-x`; other names are returned as given.
 */
export function authorizationPolicyOf(rbacPolicyName: string): string {
  const m = ISTIO_NAME.exec(rbacPolicyName);
  return m === null ? rbacPolicyName : `${m[1]}/${m[2]}`;
}

/** The distinct AuthorizationPolicies behind a rule set's policies, in order. */
export function authorizationPoliciesOf(engine: RbacEngine): string[] {
  return [...new Set(engine.policyNames.map(authorizationPolicyOf))];
}
