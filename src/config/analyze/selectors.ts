/**
 * SELECTOR_NO_MATCH (warning): a workload selector that selects no known workload. Known
 * workloads are Trellis Workloads and WorkloadEntries (complete label sets) and, standing in for
 * pods, Kubernetes Service selectors widened by their DestinationRule subsets' labels (pods carry
 * at least those labels). A selector "may match" a Service-derived set when no key disagrees and
 * at least one key is known — a pod may carry labels no Service mentions, and a false alarm costs
 * more than a miss. With no workload information in the input at all, nothing is reported.
 *
 * Scope follows Istio: a selector applies to workloads in its resource's namespace, except in the
 * root namespace (istio-system) and for Istio Gateways, whose selectors match gateway workloads in
 * any namespace. The built-in gateway labels `istio: ingressgateway|egressgateway` are passed
 * over: Trellis provides those gateways itself.
 */
import type { Resource } from '../resource.ts';
import { ResourceTypes } from '../resource.ts';
import { selectorMayMatch, type AnalysisContext } from './context.ts';
import { labelsOf, view, type DestinationRuleView, type IstioGatewayView, type Labels, type SelectorPolicyView, type ServiceEntryView } from './view.ts';

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
    for (const r of ctx.of(t)) add(r, view<SelectorPolicyView>(r).selector?.matchLabels, 'spec.selector.matchLabels');
  }
  for (const r of ctx.of(ResourceTypes.Sidecar)) add(r, view<SelectorPolicyView>(r).workloadSelector?.labels, 'spec.workloadSelector.labels');
  for (const r of ctx.of(ResourceTypes.ServiceEntry)) add(r, view<ServiceEntryView>(r).workloadSelector?.labels, 'spec.workloadSelector.labels');
  for (const r of ctx.of(ResourceTypes.DestinationRule)) add(r, view<DestinationRuleView>(r).workloadSelector?.matchLabels, 'spec.workloadSelector.matchLabels');
  for (const r of ctx.of(ResourceTypes.IstioGateway)) {
    const sel = labelsOf(view<IstioGatewayView>(r).selector);
    const keys = Object.keys(sel);
    if (keys.length === 1 && (sel.istio === 'ingressgateway' || sel.istio === 'egressgateway')) continue;
    add(r, sel, 'spec.selector', true);
  }
  return out;
}

/** Runs SELECTOR_NO_MATCH. */
export function checkSelectors(ctx: AnalysisContext): void {
  if (ctx.workloadLabels.length === 0) return;
  for (const s of selectorsOf(ctx)) {
    const candidates = ctx.workloadLabels.filter((w) => s.anyNamespace || w.namespace === s.resource.metadata.namespace);
    if (candidates.some((w) => selectorMayMatch(s.labels, w))) continue;
    const text = Object.entries(s.labels).map(([k, v]) => `${k}=${v}`).join(',');
    ctx.report(s.resource, 'warning', 'SELECTOR_NO_MATCH',
      `selector ${text} matches no known workload${s.anyNamespace ? '' : ` in namespace ${s.resource.metadata.namespace}`} (Workloads, WorkloadEntries, Service selectors)`,
      s.fieldPath);
  }
}
