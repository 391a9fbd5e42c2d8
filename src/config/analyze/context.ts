/**
 * The indexes every check reads, built once per analysis from the resource list: resources by
 * type and by `ns/name`, the hosts Services and ServiceEntries declare with their exportTo
 * visibility (host-index.ts), DestinationRules by resolved host, the known workloads
 * (workloads.ts), ReferenceGrants, and the mesh config. Also the one way a check creates a
 * diagnostic, so every finding names resource, file, line and field the same way.
 */
import type { Diagnostic, Resource, Severity } from '../resource.ts';
import type { ObservedPlaintext } from './mtls.ts';
import { ResourceTypes } from '../resource.ts';
import { hasCode } from '../../errors.ts';
import { parseMeshConfig, type MeshConfigSettings } from '../mesh-config.ts';
import { foldHost, resolveHost, serviceFqdn } from '../host.ts';
import { buildHostIndex, type HostIndex } from './host-index.ts';
import { builtinIngressGateway, collectWorkloads, type WorkloadInfo } from './workloads.ts';
import { labelsOf, list, view, type DestinationRuleView, type Labels, type ReferenceGrantView } from '../views.ts';

/** Options of an analysis. */
export interface AnalyzeOptions {
  /** Cluster DNS suffix for short-name expansion; default `cluster.local`. */
  readonly domainSuffix?: string;
  /**
   * Istio MeshConfig (`trellis analyze --mesh-config`). When absent, the `istio` ConfigMap of
   * namespace istio-system in the input (where istiod reads it, key `mesh`), else Istio's defaults.
   */
  readonly mesh?: MeshConfigSettings;
  /** Istio's root namespace (mesh-wide policies); default the mesh config's, `istio-system`. */
  readonly rootNamespace?: string;
  /** Plaintext traffic the running mesh's sidecars saw (`trellis mtls` counters), for MTLS_PLAINTEXT_CLIENTS. */
  readonly observedPlaintext?: readonly ObservedPlaintext[];
}

/** Everything a check needs, plus the diagnostic sink. */
export interface AnalysisContext {
  readonly domainSuffix: string;
  readonly rootNamespace: string;
  /** The mesh config in force (fields Istio defaults when unset). */
  readonly mesh: MeshConfigSettings;
  /** Resources of one type, in input order. */
  of(type: string): readonly Resource[];
  /** Hosts of Services and ServiceEntries with their visibility. */
  readonly hosts: HostIndex;
  /** DestinationRules with their resolved host. */
  readonly destinationRules: readonly { readonly host: string; readonly resource: Resource }[];
  /** Known workloads: complete label sets first, then Service-derived partial ones; the built-in gateway among them. */
  readonly workloads: readonly WorkloadInfo[];
  /** The known workloads of one namespace, in `workloads` order. */
  workloadsIn(namespace: string): readonly WorkloadInfo[];
  /** Complete (not Service-derived) workloads a non-empty selector matches, in one namespace or (undefined) any. */
  selectWorkloads(selector: Labels, namespace: string | undefined): readonly WorkloadInfo[];
  /** The ingress gateway Trellis provides. */
  readonly builtinGateway: WorkloadInfo;
  /** Resolves a rule's host relative to the rule's namespace (lower case). */
  resolve(host: string, namespace: string): string;
  /** True when `host` (resolved) names a Service or is covered by a ServiceEntry host, whatever their exportTo. */
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

const Everywhere: ReadonlySet<string> = new Set(['*']);

/** Builds the indexes for `resources`; findings accumulate in `out`. */
export function buildContext(resources: readonly Resource[], opts: AnalyzeOptions, out: Diagnostic[]): AnalysisContext {
  const domainSuffix = opts.domainSuffix ?? 'cluster.local';
  const byType = new Map<string, Resource[]>();
  const byKey = new Map<string, Resource>();
  for (const r of resources) {
    let l = byType.get(r.type);
    if (l === undefined) byType.set(r.type, (l = []));
    l.push(r);
    byKey.set(`${r.type}:${r.metadata.namespace}/${r.metadata.name}`, r);
  }
  const mesh = opts.mesh ?? meshFromInput(byKey.get(`${ResourceTypes.ConfigMap}:istio-system/istio`), out) ?? { raw: {}, ignored: [] };
  const rootNamespace = opts.rootNamespace ?? mesh.rootNamespace ?? 'istio-system';
  const of = (type: string): readonly Resource[] => byType.get(type) ?? [];
  const resolve = (host: string, ns: string): string => foldHost(resolveHost(host, ns, domainSuffix));
  const hosts = buildHostIndex(of, domainSuffix);

  const destinationRules: { host: string; resource: Resource }[] = [];
  const rulesByHost = new Map<string, Resource[]>();
  for (const dr of of(ResourceTypes.DestinationRule)) {
    const h = view<DestinationRuleView>(dr).host;
    if (typeof h !== 'string') continue;
    const host = resolve(h, dr.metadata.namespace);
    destinationRules.push({ host, resource: dr });
    let l = rulesByHost.get(host);
    if (l === undefined) rulesByHost.set(host, (l = []));
    l.push(dr);
  }
  // DestinationRule subsets name the extra labels a Service's pods carry (version: v1).
  const subsetLabels = (s: Resource): Labels[] =>
    (rulesByHost.get(serviceFqdn(s.metadata.name, s.metadata.namespace, domainSuffix)) ?? []).flatMap((dr) =>
      list(view<DestinationRuleView>(dr).subsets).map((sub) => labelsOf(sub?.labels)));
  const builtinGateway = builtinIngressGateway(rootNamespace, mesh.ingressSelector ?? 'ingressgateway');
  const workloads = collectWorkloads(of, builtinGateway, subsetLabels);
  const workloadsByNamespace = new Map<string, WorkloadInfo[]>();
  // Complete workloads by one label pair, with and without their namespace: a selector is then
  // compared only with the workloads that carry its first label.
  const byLabel = new Map<string, WorkloadInfo[]>();
  const push = <T>(m: Map<string, T[]>, k: string, v: T): void => {
    let l = m.get(k);
    if (l === undefined) m.set(k, (l = []));
    l.push(v);
  };
  for (const w of workloads) {
    push(workloadsByNamespace, w.namespace, w);
    if (w.partial) continue;
    for (const [k, v] of Object.entries(w.labels)) {
      push(byLabel, `*\n${k}=${v}`, w);
      push(byLabel, `${w.namespace}\n${k}=${v}`, w);
    }
  }
  const selectWorkloads = (selector: Labels, namespace: string | undefined): readonly WorkloadInfo[] => {
    const pairs = Object.entries(selector);
    if (pairs.length === 0) return [];
    const [k, v] = pairs[0];
    return (byLabel.get(`${namespace ?? '*'}\n${k}=${v}`) ?? []).filter((w) => pairs.every(([pk, pv]) => w.labels[pk] === pv));
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
    mesh,
    of,
    hosts,
    destinationRules,
    workloads,
    workloadsIn: (ns) => workloadsByNamespace.get(ns) ?? [],
    selectWorkloads,
    builtinGateway,
    resolve,
    hostKnown: (host) => hosts.lookup(host, Everywhere).visible.length > 0,
    serviceFor: (host) => hosts.serviceFor(host),
    find: (type, ns, name) => byKey.get(`${type}:${ns}/${name}`),
    referenceGranted,
    report,
  };
}

/** The MeshConfig held by the `istio` ConfigMap (key `mesh`), if the input has it; a broken one is reported. */
function meshFromInput(cm: Resource | undefined, out: Diagnostic[]): MeshConfigSettings | undefined {
  const text = (cm?.body as { data?: Record<string, unknown> } | undefined)?.data?.mesh;
  if (cm === undefined || typeof text !== 'string') return undefined;
  const file = cm.source?.file ?? `ConfigMap ${cm.metadata.namespace}/${cm.metadata.name}`;
  try {
    return parseMeshConfig(text, file);
  } catch (err) {
    if (!hasCode(err, 'MESH_CONFIG_INVALID')) throw err;
    const detail = err.message.startsWith(`${file}: `) ? err.message.slice(file.length + 2) : err.message;
    out.push({
      severity: 'error', code: err.code, message: `mesh config in data.mesh: ${detail}`,
      resource: { kind: cm.kind, namespace: cm.metadata.namespace, name: cm.metadata.name },
      ...(cm.source?.file !== undefined ? { file: cm.source.file, line: cm.source.lineOf?.('data.mesh') ?? cm.source.line } : {}),
      fieldPath: 'data.mesh',
    });
    return undefined;
  }
}
