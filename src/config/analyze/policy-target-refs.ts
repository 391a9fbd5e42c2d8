/**
 * Policies attached by `targetRef(s)` (RequestAuthentication, AuthorizationPolicy, Telemetry):
 * - TARGET_REF_INEFFECTIVE (warning): a reference no Trellis proxy can be the target of: a kind
 *   other than a Gateway API `Gateway` (`Service`, `ServiceEntry` and `GatewayClass` attach to
 *   ambient waypoints, which Trellis does not run), or a namespace other than the policy's own
 *   (Istio never matches those). A policy whose every reference is ineffective applies nowhere,
 *   and its selector is ignored, so it is easy to believe enforced.
 * - TARGET_REF_NOT_FOUND (warning): a Gateway reference naming no Gateway API Gateway of the
 *   policy's namespace, when the input has Gateway API Gateways at all (files analysed alone may
 *   hold the policy without its Gateway).
 */
import { ResourceTypes } from '../resource.ts';
import { refStaysInNamespace, refsGatewayApiGateway, targetRefsOf, type TargetablePolicyView } from '../policy-target-refs.ts';
import type { AnalysisContext } from './context.ts';
import { view } from '../views.ts';

const PolicyTypes = [ResourceTypes.RequestAuthentication, ResourceTypes.AuthorizationPolicy, ResourceTypes.Telemetry];

export function checkPolicyTargetRefs(ctx: AnalysisContext): void {
  const anyGateway = ctx.of(ResourceTypes.Gateway).length > 0;
  for (const type of PolicyTypes) {
    for (const r of ctx.of(type)) {
      const ns = r.metadata.namespace;
      for (const { ref, fieldPath } of targetRefsOf(view<TargetablePolicyView>(r))) {
        const what = `${String(ref.group ?? '')}/${String(ref.kind ?? '')} ${String(ref.name ?? '')}`;
        if (!refsGatewayApiGateway(ref)) {
          ctx.report(r, 'warning', 'TARGET_REF_INEFFECTIVE',
            `targetRef ${what} attaches to nothing in Trellis: only a Gateway API Gateway (group gateway.networking.k8s.io, kind Gateway) can be a target (Service, ServiceEntry and GatewayClass targets are for ambient waypoints); to reach sidecars, use a selector without targetRefs`,
            fieldPath);
        } else if (!refStaysInNamespace(ref, ns)) {
          ctx.report(r, 'warning', 'TARGET_REF_INEFFECTIVE',
            `targetRef ${what} names namespace ${String(ref.namespace)}, but a policy attaches only to a Gateway of its own namespace (${ns}): move the policy there`,
            `${fieldPath}.namespace`);
        } else if (anyGateway && typeof ref.name === 'string' && ctx.find(ResourceTypes.Gateway, ns, ref.name) === undefined) {
          ctx.report(r, 'warning', 'TARGET_REF_NOT_FOUND',
            `targetRef names Gateway ${ns}/${ref.name}, which does not exist: the policy applies to no proxy until it does`,
            `${fieldPath}.name`);
        }
      }
    }
  }
}
