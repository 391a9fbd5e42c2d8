/**
 * A workload policy's `targetRef` / `targetRefs` (Istio's PolicyTargetReference, GEP-2648), read
 * the one way both the analyzer and the control plane read them: a non-empty `targetRefs` wins over
 * the older single `targetRef`, and a policy with either is attached by reference only (its
 * selector is ignored, as Istio does).
 */

export const GatewayApiGroup = 'gateway.networking.k8s.io';

/** A PolicyTargetReference as written (every field may be missing or mistyped in user input). */
export interface PolicyTargetRefView {
  readonly group?: unknown;
  readonly kind?: unknown;
  readonly name?: unknown;
  readonly namespace?: unknown;
}

/** The attachment fields of a workload policy's spec. */
export interface TargetablePolicyView {
  readonly selector?: { readonly matchLabels?: Readonly<Record<string, string>> };
  readonly targetRef?: unknown;
  readonly targetRefs?: readonly unknown[];
}

function isRef(v: unknown): v is PolicyTargetRefView {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** True when the policy is attached by reference (so its selector is not used). */
export function hasTargetRefs(spec: TargetablePolicyView): boolean {
  return (Array.isArray(spec.targetRefs) && spec.targetRefs.length > 0) || spec.targetRef !== undefined;
}

/** The references in force with the field path of each: `targetRefs` when non-empty, else `targetRef`. */
export function targetRefsOf(spec: TargetablePolicyView): readonly { readonly ref: PolicyTargetRefView; readonly fieldPath: string }[] {
  if (Array.isArray(spec.targetRefs) && spec.targetRefs.length > 0) {
    return spec.targetRefs.flatMap((ref, i) => (isRef(ref) ? [{ ref, fieldPath: `spec.targetRefs[${i}]` }] : []));
  }
  return isRef(spec.targetRef) ? [{ ref: spec.targetRef, fieldPath: 'spec.targetRef' }] : [];
}

/** True for a reference to a Gateway API Gateway. */
export function refsGatewayApiGateway(ref: PolicyTargetRefView): boolean {
  return ref.group === GatewayApiGroup && ref.kind === 'Gateway';
}

/** True when the reference may only reach `policyNamespace` and does (an empty namespace is the policy's own). */
export function refStaysInNamespace(ref: PolicyTargetRefView, policyNamespace: string): boolean {
  return ref.namespace === undefined || ref.namespace === '' || ref.namespace === policyNamespace;
}
