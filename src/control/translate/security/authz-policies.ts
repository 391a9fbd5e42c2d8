/**
 * Which AuthorizationPolicies apply to a proxy (Istio's attachment rules: `policy-attachment.ts`),
 * grouped by action; the `istio.io/dry-run: "true"` annotation makes a policy shadow-only.
 */
import type { Resource } from '../../../config/resource.ts';
import { ResourceTypes } from '../../../config/resource.ts';
import type { MeshSnapshot } from '../../snapshot/snapshot.ts';
import type { ProxyNode } from '../../proxy-node.ts';
import type { RuleSpec } from './rbac-rule.ts';
import { policyAttaches } from '../policy-attachment.ts';
import type { TargetablePolicyView } from '../../../config/policy-target-refs.ts';

export type PolicyAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

/** An AuthorizationPolicy spec as far as translation reads it. */
export interface AuthorizationPolicyView extends TargetablePolicyView {
  readonly action?: string;
  readonly provider?: { readonly name?: string };
  readonly rules?: readonly RuleSpec[];
}

/** One applicable policy. */
export interface AppliedPolicy {
  readonly namespace: string;
  readonly name: string;
  readonly spec: AuthorizationPolicyView;
  readonly dryRun: boolean;
}

/** Applicable policies by action, each list in namespace/name order. */
export type PoliciesByAction = Readonly<Record<PolicyAction, readonly AppliedPolicy[]>>;

/** The AuthorizationPolicies that apply to `proxy`, grouped by action. */
export function policiesFor(snapshot: MeshSnapshot, proxy: ProxyNode): PoliciesByAction {
  const out: Record<PolicyAction, AppliedPolicy[]> = { ALLOW: [], DENY: [], AUDIT: [], CUSTOM: [] };
  for (const r of snapshot.list(ResourceTypes.AuthorizationPolicy)) {
    const spec = (r.spec ?? {}) as AuthorizationPolicyView;
    if (!policyAttaches(r, spec, proxy, snapshot.mesh.rootNamespace)) continue;
    const action = (spec.action ?? 'ALLOW') as PolicyAction;
    if (!(action in out)) continue;
    out[action].push({ namespace: r.metadata.namespace, name: r.metadata.name, spec, dryRun: r.metadata.annotations['istio.io/dry-run'] === 'true' });
  }
  return out;
}

/** True when no policy applies. */
export function noPolicies(p: PoliciesByAction): boolean {
  return p.ALLOW.length === 0 && p.DENY.length === 0 && p.AUDIT.length === 0 && p.CUSTOM.length === 0;
}
