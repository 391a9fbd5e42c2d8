/**
 * Which AuthorizationPolicies apply to a proxy, as Istio selects them: policies in the root
 * namespace without a selector apply mesh-wide, policies in the proxy's namespace without a
 * selector to every workload there, policies with `selector.matchLabels` to the workloads (in
 * their namespace, or any namespace for the root namespace) whose labels match. Policies using
 * `targetRef(s)` attach to Gateway API gateways and services, not to sidecars by label, and are
 * skipped here. Grouped by action; the `istio.io/dry-run: "true"` annotation makes a policy
 * shadow-only.
 */
import type { Resource } from '../../../config/resource.ts';
import { ResourceTypes } from '../../../config/resource.ts';
import { selectorMatches } from '../../../config/label-selector.ts';
import type { MeshSnapshot } from '../../snapshot/snapshot.ts';
import type { ProxyNode } from '../../proxy-node.ts';
import type { RuleSpec } from './rbac-rule.ts';

export type PolicyAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

/** An AuthorizationPolicy spec as far as translation reads it. */
export interface AuthorizationPolicyView {
  readonly selector?: { readonly matchLabels?: Readonly<Record<string, string>> };
  readonly targetRef?: unknown;
  readonly targetRefs?: readonly unknown[];
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

/** True when a selector-bearing workload policy (or a PeerAuthentication/RequestAuthentication alike) applies to `proxy`. */
export function selectsProxy(r: Resource, spec: { readonly selector?: { readonly matchLabels?: Readonly<Record<string, string>> }; readonly targetRef?: unknown; readonly targetRefs?: readonly unknown[] }, proxy: ProxyNode, rootNamespace: string): boolean {
  if (spec.targetRef !== undefined || (spec.targetRefs !== undefined && spec.targetRefs.length > 0)) return false;
  const ns = r.metadata.namespace;
  if (ns !== proxy.namespace && ns !== rootNamespace) return false;
  const sel = spec.selector?.matchLabels ?? {};
  if (Object.keys(sel).length === 0) return true;
  return selectorMatches(sel, proxy.labels);
}

/** The AuthorizationPolicies that apply to `proxy`, grouped by action. */
export function policiesFor(snapshot: MeshSnapshot, proxy: ProxyNode): PoliciesByAction {
  const out: Record<PolicyAction, AppliedPolicy[]> = { ALLOW: [], DENY: [], AUDIT: [], CUSTOM: [] };
  for (const r of snapshot.list(ResourceTypes.AuthorizationPolicy)) {
    const spec = (r.spec ?? {}) as AuthorizationPolicyView;
    if (!selectsProxy(r, spec, proxy, snapshot.mesh.rootNamespace)) continue;
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
