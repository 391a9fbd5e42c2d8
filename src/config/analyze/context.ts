/**
 * The indexes every check reads, built once per analysis from the resource list: resources by
 * type, Kubernetes Services by FQDN, ServiceEntry hosts, gateways and secrets by `ns/name`,
 * DestinationRules by resolved host, the label sets of known workloads, and ReferenceGrants. Also
 * the one way a check creates a diagnostic, so every finding names resource, file, line and field
 * the same way.
 */
import type { Diagnostic, Resource, Severity } from '../resource.ts';
import { ResourceTypes } from '../resource.ts';
import { hostAliases, hostCovers, resolveHost } from './hosts.ts';
import {
  labelsOf,
  list,
  view,
  type DestinationRuleView,
  type Labels,
  type ReferenceGrantView,
  type ServiceEntryView,
  type ServiceView,
  type WorkloadEntryView,
} from './view.ts';

/** Options of an analysis. */
export interface AnalyzeOptions {
  /** Cluster DNS suffix for short-name expansion; default `cluster.local`. */
  readonly domainSuffix?: string;
  /** Istio's root namespace (mesh-wide policies); default `istio-system`. */
  readonly rootNamespace?: string;
}

/** A set of labels some workload is known (or, from a Service selector, assumed) to carry. */
export interface WorkloadLabels {
  readonly namespace: string;
  readonly labels: Labels;
  /** true when derived from a Service selector (a lower bound of the pods' labels). */
  readonly partial: boolean;
}

/** Everything a check needs, plus the diagnostic sink. */
export interface AnalysisContext {
  readonly domainSuffix: string;
  readonly rootNamespace: string;
  /** Resources of one type, in input order. */
  of(type: string): readonly Resource[];
  /** Kubernetes Services by lower-case FQDN. */
  readonly servicesByHost: ReadonlyMap<string, Resource>;
  /** Every ServiceEntry host (as written, lower case) with its ServiceEntry. */
  readonly serviceEntryHosts: readonly { readonly host: string; readonly resource: Resource }[];
  /** DestinationRules with their resolved host. */
  readonly destinationRules: readonly { readonly host: string; readonly resource: Resource }[];
  /** Label sets of known workloads (Workload, WorkloadEntry, Service selectors). */
  readonly workloadLabels: readonly WorkloadLabels[];
  /** Resolves a rule's host relative to the rule's namespace. */
  resolve(host: string, namespace: string): string;
  /** True when `host` (resolved) names a Kubernetes Service or is covered by a ServiceEntry host. */
  hostKnown(host: string): boolean;
  /** The Kubernetes Service a resolved host names, if any. */
  serviceFor(host: string): Resource | undefined;
  /** A resource of `type` named `ns/name`, if present. */
  find(type: string, namespace: string, name: string): Resource | undefined;
  /** True when a ReferenceGrant in `toNs` lets `fromKind` in `fromNs` refer to `toKind` `toName`. */
  referenceGranted(from: { group: string; kind: string; namespace: string }, to: { group: string; kind: string; namespace: string; name: string }): boolean;
  /** Records a finding about `r`. */
  report(r: Resource, severity: Severity, code: string, message: string, fieldPath?: string): void;
}

/** Builds the indexes for `resources`; findings accumulate in `out`. */
export function buildContext(resources: readonly Resource[], opts: AnalyzeOptions, out: Diagnostic[]): AnalysisContext {
  const domainSuffix = opts.domainSuffix ?? 'cluster.local';
  const rootNamespace = opts.rootNamespace ?? 'istio-system';
  const byType = new Map<string, Resource[]>();
  const byKey = new Map<string, Resource>();
  for (const r of resources) {
    let l = byType.get(r.type);
    if (l === undefined) byType.set(r.type, (l = []));
    l.push(r);
    byKey.set(`${r.type}:${r.metadata.namespace}/${r.metadata.name}`, r);
  }
  const of = (type: string): readonly Resource[] => byType.get(type) ?? [];
  const resolve = (host: string, ns: string): string => resolveHost(host, ns, domainSuffix);

  const servicesByHost = new Map<string, Resource>();
  for (const s of of(ResourceTypes.Service)) {
    servicesByHost.set(`${s.metadata.name}.${s.metadata.namespace}.svc.${domainSuffix}`.toLowerCase(), s);
  }
  const serviceEntryHosts: { host: string; resource: Resource }[] = [];
  for (const se of of(ResourceTypes.ServiceEntry)) {
    for (const h of list(view<ServiceEntryView>(se).hosts)) {
      if (typeof h === 'string') serviceEntryHosts.push({ host: resolve(h, se.metadata.namespace), resource: se });
    }
  }
  const destinationRules: { host: string; resource: Resource }[] = [];
  for (const dr of of(ResourceTypes.DestinationRule)) {
    const h = view<DestinationRuleView>(dr).host;
    if (typeof h === 'string') destinationRules.push({ host: resolve(h, dr.metadata.namespace), resource: dr });
  }
  const rulesByHost = new Map<string, { host: string; resource: Resource }[]>();
  for (const dr of destinationRules) {
    let l = rulesByHost.get(dr.host);
    if (l === undefined) rulesByHost.set(dr.host, (l = []));
    l.push(dr);
  }

  const workloadLabels: WorkloadLabels[] = [];
  for (const w of of(ResourceTypes.Workload)) {
    const specLabels = labelsOf((w.spec as { labels?: unknown } | undefined)?.labels);
    workloadLabels.push({ namespace: w.metadata.namespace, labels: { ...specLabels, ...w.metadata.labels }, partial: false });
  }
  for (const we of of(ResourceTypes.WorkloadEntry)) {
    workloadLabels.push({ namespace: we.metadata.namespace, labels: labelsOf(view<WorkloadEntryView>(we).labels), partial: false });
  }
  for (const se of of(ResourceTypes.ServiceEntry)) {
    for (const ep of list((se.spec as { endpoints?: WorkloadEntryView[] } | undefined)?.endpoints)) {
      workloadLabels.push({ namespace: se.metadata.namespace, labels: labelsOf(ep?.labels), partial: false });
    }
  }
  for (const s of of(ResourceTypes.Service)) {
    const sel = view<ServiceView>(s).selector;
    if (sel === undefined || Object.keys(labelsOf(sel)).length === 0) continue;
    workloadLabels.push({ namespace: s.metadata.namespace, labels: labelsOf(sel), partial: true });
    // DestinationRule subsets name the extra labels the Service's pods carry (version: v1).
    const host = `${s.metadata.name}.${s.metadata.namespace}.svc.${domainSuffix}`.toLowerCase();
    for (const dr of rulesByHost.get(host) ?? []) {
      for (const sub of list(view<DestinationRuleView>(dr.resource).subsets)) {
        workloadLabels.push({ namespace: s.metadata.namespace, labels: { ...labelsOf(sub?.labels), ...labelsOf(sel) }, partial: true });
      }
    }
  }

  const serviceFor = (host: string): Resource | undefined => {
    for (const alias of hostAliases(host, domainSuffix)) {
      const s = servicesByHost.get(alias);
      if (s !== undefined) return s;
    }
    return undefined;
  };
  const hostKnown = (host: string): boolean => {
    if (serviceFor(host) !== undefined) return true;
    for (const e of serviceEntryHosts) if (hostCovers(e.host, host) || hostCovers(host, e.host)) return true;
    if (host.startsWith('*')) {
      for (const h of servicesByHost.keys()) if (hostCovers(host, h)) return true;
    }
    return false;
  };

  const grants = of(ResourceTypes.ReferenceGrant);
  const referenceGranted: AnalysisContext['referenceGranted'] = (from, to) => {
    for (const g of grants) {
      if (g.metadata.namespace !== to.namespace) continue;
      const spec = view<ReferenceGrantView>(g);
      const fromOk = list(spec.from).some(
        (f) => (f?.group ?? '') === from.group && f?.kind === from.kind && f?.namespace === from.namespace,
      );
      const toOk = list(spec.to).some(
        (t) => (t?.group ?? '') === to.group && t?.kind === to.kind && (t?.name === undefined || t.name === '' || t.name === to.name),
      );
      if (fromOk && toOk) return true;
    }
    return false;
  };

  const report: AnalysisContext['report'] = (r, severity, code, message, fieldPath) => {
    const line = fieldPath !== undefined ? (r.source?.lineOf?.(fieldPath) ?? r.source?.line) : r.source?.line;
    out.push({
      severity,
      code,
      message,
      resource: { kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name },
      ...(r.source?.file !== undefined ? { file: r.source.file } : {}),
      ...(line !== undefined ? { line } : {}),
      ...(fieldPath !== undefined ? { fieldPath } : {}),
    });
  };

  return {
    domainSuffix,
    rootNamespace,
    of,
    servicesByHost,
    serviceEntryHosts,
    destinationRules,
    workloadLabels,
    resolve,
    hostKnown,
    serviceFor,
    find: (type, ns, name) => byKey.get(`${type}:${ns}/${name}`),
    referenceGranted,
    report,
  };
}

/** True when every label in `selector` is carried by `labels`. */
export function selectorMatches(selector: Labels, labels: Labels): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

/**
 * True when a workload with (at least) `known` labels may match `selector`: exact for complete
 * label sets; for partial sets (Service selectors), no key may disagree and at least one key of
 * the selector must be known, since pods usually carry more labels than their Service selects on.
 */
export function selectorMayMatch(selector: Labels, known: WorkloadLabels): boolean {
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
