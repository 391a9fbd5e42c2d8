/**
 * Which workload policies (AuthorizationPolicy, RequestAuthentication, Telemetry) attach to a
 * proxy, by Istio's rules (pilot's WorkloadPolicyMatcher):
 * - A policy with `targetRefs` (or the older single `targetRef`; the list wins when both are set)
 *   attaches only through them, and its selector is ignored. The one target a Trellis proxy can be
 *   is a Gateway API `Gateway` (group `gateway.networking.k8s.io`) the proxy implements, named in
 *   the policy's own namespace, which must be the Gateway's. `Service`, `ServiceEntry` and
 *   `GatewayClass` targets attach to ambient waypoints, which Trellis does not run: such a policy
 *   attaches to nothing here (`trellis analyze` says so).
 * - Without targetRefs, the selector decides, Gateway API gateways included (Istio's default,
 *   `ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY=true`): a policy in the proxy's namespace or the
 *   root namespace, with no selector (namespace- or mesh-wide) or a selector the proxy's labels
 *   carry.
 * Which proxy implements which Gateway API Gateway is `gatewayApiKeysOf` (the same rule the
 * listeners use); how the references are read is `config/policy-target-refs.ts`.
 */
import type { Resource } from '../../config/resource.ts';
import { hasTargetRefs, refStaysInNamespace, refsGatewayApiGateway, targetRefsOf, type PolicyTargetRefView, type TargetablePolicyView } from '../../config/policy-target-refs.ts';
import { selectorMatches } from '../../config/label-selector.ts';
import { gatewayApiKeysOf } from '../snapshot/gateways.ts';
import type { ProxyNode } from '../proxy-node.ts';

/** True when one of the policy's targetRefs names a Gateway API Gateway that `proxy` implements. */
function attachedByRef(r: Resource, spec: TargetablePolicyView, proxy: ProxyNode): boolean {
  const gateways = gatewayApiKeysOf(proxy.namespace, proxy.labels, proxy.metadata);
  if (gateways.length === 0) return false;
  const ns = r.metadata.namespace;
  for (const { ref } of targetRefsOf(spec)) {
    if (matchesGateway(ref, ns, gateways)) return true;
  }
  return false;
}

/** A reference may only name its own namespace: one elsewhere never matches (Istio). */
function matchesGateway(ref: PolicyTargetRefView, policyNamespace: string, gateways: readonly string[]): boolean {
  return refsGatewayApiGateway(ref) && typeof ref.name === 'string' && refStaysInNamespace(ref, policyNamespace) && gateways.includes(`${policyNamespace}/${ref.name}`);
}

/**
 * Whether policy `r` (spec `spec`) attaches to `proxy`. `workloadOnly`: a policy without selector
 * or targetRefs does not count (Telemetry picks its namespace default separately).
 */
export function policyAttaches(r: Resource, spec: TargetablePolicyView, proxy: ProxyNode, rootNamespace: string, workloadOnly = false): boolean {
  if (hasTargetRefs(spec)) return attachedByRef(r, spec, proxy);
  const ns = r.metadata.namespace;
  if (ns !== proxy.namespace && ns !== rootNamespace) return false;
  const sel = spec.selector?.matchLabels ?? {};
  if (Object.keys(sel).length === 0) return !workloadOnly;
  return selectorMatches(sel, proxy.labels);
}
