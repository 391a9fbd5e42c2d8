/**
 * The workloads an analysis knows, as label sets with a namespace: Kubernetes Pods and the pod
 * templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs (workloads
 * for the analyzer even where Trellis does not run them, since Kubernetes mode will), Trellis
 * Workloads, WorkloadEntries and ServiceEntry endpoints (complete label sets), the built-in
 * ingress gateway (`istio: <ingressSelector>`, `app: istio-ingressgateway` in the root namespace:
 * `trellis up` runs it, as istioctl assumes Istio's), and, standing in for pods the input does not
 * show, Service selectors widened by their DestinationRule subsets' labels (partial sets: the pods
 * carry at least those labels).
 */
import type { Resource } from '../resource.ts';
import { selectorMatches } from '../label-selector.ts';
import { ResourceTypes } from '../resource.ts';
import { isObject, labelsOf, list, view, type Labels, type ServiceView, type WorkloadEntryView } from '../views.ts';

/** One known (or, when `partial`, assumed) workload. */
export interface WorkloadInfo {
  readonly namespace: string;
  readonly labels: Labels;
  /** `Pod`, `Deployment`, `Workload`, `WorkloadEntry`, `ServiceEntry` (endpoint), `Service` (selector), or `built-in`. */
  readonly kind: string;
  readonly name: string;
  /** The resource it comes from; undefined for the built-in gateway. */
  readonly resource?: Resource;
  /** True when derived from a Service selector (a lower bound of the pods' labels). */
  readonly partial: boolean;
}

/** Labels of the ingress gateway Trellis provides (Istio's default ingress gateway's). */
export function builtinIngressGateway(rootNamespace: string, ingressSelector: string): WorkloadInfo {
  return { namespace: rootNamespace, labels: { istio: ingressSelector, app: 'istio-ingressgateway' }, kind: 'built-in', name: 'ingress gateway', partial: false };
}

const PodTemplateTypes: readonly string[] = [
  ResourceTypes.Deployment, ResourceTypes.StatefulSet, ResourceTypes.DaemonSet, ResourceTypes.ReplicaSet, ResourceTypes.Job,
];

/** The pod template of a workload controller (`spec.template`, CronJob `spec.jobTemplate.spec.template`), or the Pod itself. */
export function podTemplateOf(r: Resource): { labels: Labels; spec: Record<string, unknown> } | undefined {
  const spec = r.spec;
  if (!isObject(spec)) return undefined;
  if (r.type === ResourceTypes.Pod) return { labels: r.metadata.labels, spec };
  let tpl: unknown = spec.template;
  if (r.type === ResourceTypes.CronJob) {
    const jt = spec.jobTemplate;
    tpl = isObject(jt) && isObject(jt.spec) ? jt.spec.template : undefined;
  }
  if (!isObject(tpl)) return undefined;
  const md = tpl.metadata;
  return { labels: labelsOf(isObject(md) ? md.labels : undefined), spec: isObject(tpl.spec) ? tpl.spec : {} };
}

/** Resources whose pod (template) is a workload, in input order. */
export function podWorkloadResources(of: (type: string) => readonly Resource[]): Resource[] {
  return [ResourceTypes.Pod, ...PodTemplateTypes, ResourceTypes.CronJob].flatMap((t) => [...of(t)]);
}

/**
 * Every workload of the input (complete ones first, then Service-derived partial ones), plus
 * the built-in gateway. `subsetLabels(service)` gives the label sets of the DestinationRule
 * subsets for a Service, to widen its selector.
 */
export function collectWorkloads(
  of: (type: string) => readonly Resource[],
  builtin: WorkloadInfo,
  subsetLabels: (service: Resource) => readonly Labels[],
): WorkloadInfo[] {
  const out: WorkloadInfo[] = [];
  for (const r of podWorkloadResources(of)) {
    const tpl = podTemplateOf(r);
    if (tpl !== undefined) out.push({ namespace: r.metadata.namespace, labels: tpl.labels, kind: r.kind, name: r.metadata.name, resource: r, partial: false });
  }
  for (const w of of(ResourceTypes.Workload)) {
    const specLabels = labelsOf((w.spec as { labels?: unknown } | undefined)?.labels);
    out.push({ namespace: w.metadata.namespace, labels: { ...specLabels, ...w.metadata.labels }, kind: w.kind, name: w.metadata.name, resource: w, partial: false });
  }
  for (const we of of(ResourceTypes.WorkloadEntry)) {
    out.push({ namespace: we.metadata.namespace, labels: labelsOf(view<WorkloadEntryView>(we).labels), kind: we.kind, name: we.metadata.name, resource: we, partial: false });
  }
  for (const se of of(ResourceTypes.ServiceEntry)) {
    for (const ep of list((se.spec as { endpoints?: WorkloadEntryView[] } | undefined)?.endpoints)) {
      out.push({ namespace: se.metadata.namespace, labels: labelsOf(ep?.labels), kind: se.kind, name: se.metadata.name, resource: se, partial: false });
    }
  }
  out.push(builtin);
  for (const s of of(ResourceTypes.Service)) {
    const sel = labelsOf(view<ServiceView>(s).selector);
    if (Object.keys(sel).length === 0) continue;
    out.push({ namespace: s.metadata.namespace, labels: sel, kind: s.kind, name: s.metadata.name, resource: s, partial: true });
    for (const extra of subsetLabels(s)) {
      out.push({ namespace: s.metadata.namespace, labels: { ...extra, ...sel }, kind: s.kind, name: s.metadata.name, resource: s, partial: true });
    }
  }
  return out;
}

/** The one label-map rule (config/label-selector.ts), for the analyzers that import it from here. */
export { selectorMatches };

/**
 * True when a workload with (at least) `known` labels may match `selector`: exact for complete
 * label sets; for partial sets (Service selectors), no key may disagree and at least one key of
 * the selector must be known, since pods usually carry more labels than their Service selects on.
 */
export function selectorMayMatch(selector: Labels, known: WorkloadInfo): boolean {
  if (!known.partial) return selectorMatches(selector, known.labels);
  let shared = 0;
  for (const [k, v] of Object.entries(selector)) {
    const have = known.labels[k];
    if (have === undefined) continue;
    if (have !== v) return false;
    shared++;
  }
  return shared > 0 || Object.keys(selector).length === 0;
}

/** `k=v,k2=v2`, for messages. */
export function formatSelector(selector: Labels): string {
  return Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');
}
