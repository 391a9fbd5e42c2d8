/**
 * Workload selectors against the workloads the input knows (workloads.ts).
 * - SELECTOR_NO_MATCH (warning, IST0101): a selector (Sidecar, PeerAuthentication,
 *   RequestAuthentication, AuthorizationPolicy, Telemetry, Istio Gateway, ServiceEntry and
 *   DestinationRule `workloadSelector`) selects no known workload. A selector "may match" a
 *   Service-derived (partial) label set when no key disagrees and at least one key is known — a
 *   pod may carry labels no Service mentions, and a false alarm costs more than a miss. Scope
 *   follows Istio: a selector applies to workloads of its resource's namespace, except in the root
 *   namespace and for Istio Gateways, whose selectors match gateway workloads in any namespace (the
 *   ingress gateway Trellis provides included). Nothing is reported where the input shows no
 *   workload at all in that scope.
 * - SELECTOR_CONFLICT (error, IST0110 / IST0159): two Sidecars (or two Telemetries) of one
 *   namespace select the same known workload, or have the same selector: which one applies is
 *   undefined.
 * - NAMESPACE_DEFAULT_CONFLICT (error, IST0111 / IST0160): more than one Sidecar (or Telemetry)
 *   without selector in one namespace: each claims to be the namespace's default.
 * - SELECTOR_INEFFECTIVE (warning, IST0166): a RequestAuthentication, AuthorizationPolicy or
 *   Telemetry `selector` that selects a Gateway API gateway's workloads (label
 *   `gateway.networking.k8s.io/gateway-name`) without `targetRef(s)`. Istio documents targetRefs as
 *   the way to attach policies to Gateway API gateways; selectors still apply there only while its
 *   ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY is on (the default, which Trellis follows).
 */
import type { Resource } from '../resource.ts';
import { ResourceTypes } from '../resource.ts';
import type { AnalysisContext } from './context.ts';
import { hasTargetRefs, type TargetablePolicyView } from '../policy-target-refs.ts';
import { formatSelector, selectorMatches, selectorMayMatch, type WorkloadInfo } from './workloads.ts';
import { labelsOf, view, type DestinationRuleView, type IstioGatewayView, type Labels, type SelectorPolicyView, type ServiceEntryView } from '../views.ts';

interface Selected {
  readonly resource: Resource;
  readonly labels: Labels;
  readonly fieldPath: string;
  readonly anyNamespace: boolean;
}

function selectorsOf(ctx: AnalysisContext): Selected[] {
  const out: Selected[] = [];
  const add = (r: Resource, labels: unknown, fieldPath: string, anyNamespace = false): void => {
    const l = labelsOf(labels);
    if (Object.keys(l).length > 0) out.push({ resource: r, labels: l, fieldPath, anyNamespace: anyNamespace || r.metadata.namespace === ctx.rootNamespace });
  };
  for (const t of [ResourceTypes.PeerAuthentication, ResourceTypes.RequestAuthentication, ResourceTypes.AuthorizationPolicy, ResourceTypes.Telemetry]) {
    for (const r of ctx.of(t)) if (!attachedByRefs(r)) add(r, view<SelectorPolicyView>(r).selector?.matchLabels, 'spec.selector.matchLabels');
  }
  for (const r of ctx.of(ResourceTypes.Sidecar)) add(r, view<SelectorPolicyView>(r).workloadSelector?.labels, 'spec.workloadSelector.labels');
  for (const r of ctx.of(ResourceTypes.ServiceEntry)) add(r, view<ServiceEntryView>(r).workloadSelector?.labels, 'spec.workloadSelector.labels');
  for (const r of ctx.of(ResourceTypes.DestinationRule)) add(r, view<DestinationRuleView>(r).workloadSelector?.matchLabels, 'spec.workloadSelector.matchLabels');
  for (const r of ctx.of(ResourceTypes.IstioGateway)) add(r, view<IstioGatewayView>(r).selector, 'spec.selector', true);
  return out;
}

/** Runs the selector checks. */
export function checkSelectors(ctx: AnalysisContext): void {
  const inputWorkloads = ctx.workloads.filter((w) => w !== ctx.builtinGateway);
  const namespacesWithWorkloads = new Set(inputWorkloads.map((w) => w.namespace));
  for (const s of selectorsOf(ctx)) {
    if (s.anyNamespace && inputWorkloads.length === 0) continue;
    const inScope = (w: WorkloadInfo): boolean => s.anyNamespace || w.namespace === s.resource.metadata.namespace;
    if (ctx.workloads.some((w) => inScope(w) && selectorMayMatch(s.labels, w))) continue;
    // A namespace the input shows no workload of is judged only when the selector matches
    // workloads elsewhere: then the namespace is the likely mistake.
    const elsewhere = s.anyNamespace ? undefined : inputWorkloads.find((w) => selectorMayMatch(s.labels, w));
    if (!s.anyNamespace && !namespacesWithWorkloads.has(s.resource.metadata.namespace) && elsewhere === undefined) continue;
    ctx.report(s.resource, 'warning', 'SELECTOR_NO_MATCH',
      `selector ${formatSelector(s.labels)} matches no known workload${s.anyNamespace ? '' : ` in namespace ${s.resource.metadata.namespace}`} (Pods, Deployments and other pod templates, Workloads, WorkloadEntries, Service selectors)${elsewhere !== undefined ? `; it matches ${elsewhere.kind} ${elsewhere.namespace}/${elsewhere.name}, but selectors reach only their own namespace's workloads` : ''}`,
      s.fieldPath);
  }
  for (const t of [ResourceTypes.Sidecar, ResourceTypes.Telemetry]) checkOnePerWorkload(ctx, t);
  checkIneffective(ctx);
}

/** A policy attached by targetRef(s) ignores its selector (Istio: targetRefs win). */
function attachedByRefs(r: Resource): boolean {
  return hasTargetRefs(view<TargetablePolicyView>(r));
}

function selectorOf(r: Resource): Labels {
  return r.type === ResourceTypes.Sidecar
    ? labelsOf(view<SelectorPolicyView>(r).workloadSelector?.labels)
    : labelsOf(view<SelectorPolicyView>(r).selector?.matchLabels);
}

function selectorPath(r: Resource): string {
  return r.type === ResourceTypes.Sidecar ? 'spec.workloadSelector' : 'spec.selector';
}

/** SELECTOR_CONFLICT and NAMESPACE_DEFAULT_CONFLICT for one kind (Sidecar, Telemetry): at most one applies per workload. */
function checkOnePerWorkload(ctx: AnalysisContext, type: string): void {
  const byNamespace = new Map<string, Resource[]>();
  for (const r of ctx.of(type)) {
    if (attachedByRefs(r)) continue;
    let l = byNamespace.get(r.metadata.namespace);
    if (l === undefined) byNamespace.set(r.metadata.namespace, (l = []));
    l.push(r);
  }
  for (const [ns, rs] of byNamespace) {
    if (rs.length < 2) continue;
    const defaults = rs.filter((r) => Object.keys(selectorOf(r)).length === 0);
    if (defaults.length > 1) {
      for (const r of defaults) {
        ctx.report(r, 'error', 'NAMESPACE_DEFAULT_CONFLICT',
          `${r.kind} ${ns}/${r.metadata.name} has no workload selector, and neither has ${defaults.filter((o) => o !== r).map((o) => o.metadata.name).join(', ')}: only one ${r.kind} per namespace may be the namespace default`, 'spec');
      }
    }
    const selective = rs.filter((r) => Object.keys(selectorOf(r)).length > 0);
    const workloads = ctx.workloadsIn(ns).filter((w) => !w.partial);
    for (const r of selective) {
      const mine = selectorOf(r);
      const key = JSON.stringify(Object.entries(mine).sort());
      const clashes: string[] = [];
      for (const o of selective) {
        if (o === r) continue;
        const theirs = selectorOf(o);
        const shared = key === JSON.stringify(Object.entries(theirs).sort())
          ? 'the same selector'
          : workloads.find((w) => selectorMatches(mine, w.labels) && selectorMatches(theirs, w.labels));
        if (shared !== undefined) clashes.push(`${o.metadata.name} (${typeof shared === 'string' ? shared : `both select ${shared.kind} ${shared.name}`})`);
      }
      if (clashes.length > 0) {
        ctx.report(r, 'error', 'SELECTOR_CONFLICT',
          `selector ${formatSelector(mine)} selects the same workloads as ${r.kind} ${clashes.join(', ')}; only one ${r.kind} applies to a workload, and which one is undefined`, selectorPath(r));
      }
    }
  }
}

const GatewayNameLabel = 'gateway.networking.k8s.io/gateway-name';

function checkIneffective(ctx: AnalysisContext): void {
  const gatewayPods = ctx.workloads.filter((w) => !w.partial && w.labels[GatewayNameLabel] !== undefined);
  if (gatewayPods.length === 0) return;
  for (const t of [ResourceTypes.RequestAuthentication, ResourceTypes.AuthorizationPolicy, ResourceTypes.Telemetry]) {
    for (const r of ctx.of(t)) {
      if (attachedByRefs(r)) continue;
      const sel = labelsOf(view<SelectorPolicyView>(r).selector?.matchLabels);
      if (Object.keys(sel).length === 0) continue;
      const hit = gatewayPods.find((w) => (r.metadata.namespace === ctx.rootNamespace || w.namespace === r.metadata.namespace) && selectorMatches(sel, w.labels));
      if (hit === undefined) continue;
      ctx.report(r, 'warning', 'SELECTOR_INEFFECTIVE',
        `selector ${formatSelector(sel)} selects the Gateway API gateway ${hit.namespace}/${hit.labels[GatewayNameLabel]} (${hit.kind} ${hit.name}), where Istio documents targetRefs, not selectors (a selector applies there only while Istio's ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY is on, its default): attach the policy with targetRefs (group: gateway.networking.k8s.io, kind: Gateway, name: ${hit.labels[GatewayNameLabel]})`,
        'spec.selector');
    }
  }
}
