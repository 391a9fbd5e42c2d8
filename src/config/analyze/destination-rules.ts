/**
 * DestinationRule checks: DR_HOST_NOT_FOUND (warning, IST0174) — the rule's host names no Service
 * or ServiceEntry visible where the rule applies (its namespace, or its exportTo), so it configures
 * nothing (often a short name resolved in the wrong namespace); SUBSET_DUPLICATE (error) — two
 * subsets share a name, and a route naming it would get whichever one the translation happened to
 * keep; SUBSET_SHADOWED (warning) — an older rule of the same namespace and host already defines
 * the subset, and the merge (Istio's, and ours) keeps the older definition, so this one is silently
 * ignored; SUBSET_NO_WORKLOADS (warning, IST0173) — the Service's workloads are known and none
 * carries a subset's labels, so routes to it find no endpoint; DR_TLS_NO_CA (warning, IST0128 /
 * IST0129) — SIMPLE or MUTUAL TLS to a server inside the mesh (a Kubernetes Service name, or a
 * MESH_INTERNAL ServiceEntry) without `caCertificates`: such servers carry certificates of a private
 * CA, so nothing can verify them. (Istio since 1.20 verifies servers outside the mesh against the
 * system's public roots when caCertificates is unset — VERIFY_CERTIFICATE_AT_CLIENT — so external
 * hosts such as Istio's TLS-origination sample are not reported.)
 */
import { compareByAge, ResourceTypes, type Resource } from '../resource.ts';
import type { AnalysisContext } from './context.ts';
import { notVisibleWhy, ruleViewers } from './host-index.ts';
import { formatSelector } from './workloads.ts';
import { serviceFqdn } from '../host.ts';
import { isObject, labelsOf, list, view, type Destination, type DestinationRuleView, type Labels, type ServiceView, type VirtualServiceView } from '../views.ts';

/** SUBSET_SHADOWED over rules without workloadSelector, grouped by namespace and qualified host. */
function checkMergedSubsets(ctx: AnalysisContext): void {
  const groups = new Map<string, Resource[]>();
  for (const { host, resource } of ctx.destinationRules) {
    if (view<DestinationRuleView>(resource).workloadSelector !== undefined) continue;
    const key = `${resource.metadata.namespace}\n${host}`;
    const g = groups.get(key);
    if (g === undefined) groups.set(key, [resource]);
    else g.push(resource);
  }
  for (const rules of groups.values()) {
    if (rules.length < 2) continue;
    const definedBy = new Map<string, Resource>();
    for (const dr of rules.sort(compareByAge)) {
      const own = new Set<string>();
      list(view<DestinationRuleView>(dr).subsets).forEach((s, i) => {
        const name = s?.name;
        if (typeof name !== 'string' || own.has(name)) return; // a duplicate inside one rule is SUBSET_DUPLICATE
        own.add(name);
        const older = definedBy.get(name);
        if (older !== undefined) {
          ctx.report(dr, 'warning', 'SUBSET_SHADOWED', `subset '${name}' is already defined by the older DestinationRule ${older.metadata.namespace}/${older.metadata.name} for the same host; same-host rules are merged oldest first and the first definition is kept, so this one is ignored`, `spec.subsets[${i}].name`);
        } else definedBy.set(name, dr);
      });
    }
  }
}

/** Runs the DestinationRule checks. */
export function checkDestinationRules(ctx: AnalysisContext): void {
  for (const { host, resource: dr } of ctx.destinationRules) {
    const spec = view<DestinationRuleView>(dr);
    const viewers = ruleViewers(spec.exportTo, dr.metadata.namespace);
    const found = ctx.hosts.lookup(host, viewers);
    if (found.visible.length === 0) {
      ctx.report(dr, 'warning', 'DR_HOST_NOT_FOUND', `host '${spec.host}' (${host}) ${notVisibleWhy(found.hidden, viewers)}; this rule applies to nothing`, 'spec.host');
    }
    checkSubsetWorkloads(ctx, dr, host);
    if (insideMesh(ctx, host)) checkTlsVerification(ctx, dr);
    const seen = new Map<string, number>();
    list(spec.subsets).forEach((s, i) => {
      const name = s?.name;
      if (typeof name !== 'string') return;
      const first = seen.get(name);
      if (first !== undefined) {
        ctx.report(dr, 'error', 'SUBSET_DUPLICATE', `subset '${name}' is defined twice (subsets ${first} and ${i})`, `spec.subsets[${i}].name`);
      } else seen.set(name, i);
    });
  }
  checkMergedSubsets(ctx);
}

/** Istio matches these subset labels against the node's locality, not the pod's labels. */
const TopologyLabels = new Set(['topology.kubernetes.io/region', 'topology.kubernetes.io/zone', 'topology.istio.io/subzone']);

/** `<service FQDN>|<subset>` of every VirtualService destination that names a subset of a Kubernetes Service. */
function routedSubsets(ctx: AnalysisContext): ReadonlySet<string> {
  let set = routedCache.get(ctx);
  if (set !== undefined) return set;
  set = new Set<string>();
  const add = (d: Destination | undefined, ns: string): void => {
    if (!isObject(d) || typeof d.host !== 'string' || typeof d.subset !== 'string' || d.subset === '') return;
    const svc = ctx.serviceFor(ctx.resolve(d.host, ns));
    if (svc !== undefined) set!.add(`${serviceFqdn(svc.metadata.name, svc.metadata.namespace, ctx.domainSuffix)}|${d.subset}`);
  };
  for (const vs of ctx.of(ResourceTypes.VirtualService)) {
    const spec = view<VirtualServiceView>(vs);
    for (const h of list(spec.http)) {
      for (const rd of list(h?.route)) add(rd?.destination, vs.metadata.namespace);
      add(h?.mirror, vs.metadata.namespace);
      for (const m of list(h?.mirrors)) add(m?.destination, vs.metadata.namespace);
    }
    for (const r of [...list(spec.tcp), ...list(spec.tls)]) for (const rd of list(r?.route)) add(rd?.destination, vs.metadata.namespace);
  }
  routedCache.set(ctx, set);
  return set;
}
const routedCache = new WeakMap<AnalysisContext, Set<string>>();

/**
 * SUBSET_NO_WORKLOADS: judged only when the input shows workloads of the rule's Service; a warning
 * when a route uses the subset (its requests find no endpoint), otherwise an info (a subset kept
 * for workloads not deployed yet is harmless, as in Istio's Bookinfo sample).
 */
function checkSubsetWorkloads(ctx: AnalysisContext, dr: Resource, host: string): void {
  const subsets = list(view<DestinationRuleView>(dr).subsets);
  if (subsets.length === 0) return;
  const svc = ctx.serviceFor(host);
  if (svc === undefined) return;
  const sel = labelsOf(view<ServiceView>(svc).selector);
  if (Object.keys(sel).length === 0) return;
  const pods = ctx.selectWorkloads(sel, svc.metadata.namespace);
  if (pods.length === 0) return;
  subsets.forEach((sub, i) => {
    const labels: Labels = labelsOf(sub?.labels);
    // An empty topology label can never match a node; other topology labels are the nodes' and not in the input.
    if (Object.entries(labels).some(([k, v]) => TopologyLabels.has(k) && v !== '')) return;
    const podLabels = Object.entries(labels).filter(([k]) => !TopologyLabels.has(k));
    const empty = Object.entries(labels).some(([k, v]) => TopologyLabels.has(k) && v === '');
    if (!empty && pods.some((w) => podLabels.every(([k, v]) => w.labels[k] === v))) return;
    const routed = typeof sub?.name === 'string' && routedSubsets(ctx).has(`${serviceFqdn(svc.metadata.name, svc.metadata.namespace, ctx.domainSuffix)}|${sub.name}`);
    ctx.report(dr, routed ? 'warning' : 'info', 'SUBSET_NO_WORKLOADS',
      `subset '${sub?.name ?? i}' (${formatSelector(labels)}) selects none of the ${pods.length} known workload(s) of Service ${svc.metadata.namespace}/${svc.metadata.name}${empty ? '; an empty topology label matches no node' : ''}${routed ? ': requests routed to it find no endpoint' : ' (no route uses it yet)'}`,
      `spec.subsets[${i}].labels`);
  });
}

/** True for a Kubernetes Service host (`*.svc.<suffix>`, or one the input defines) or a MESH_INTERNAL ServiceEntry host. */
function insideMesh(ctx: AnalysisContext, host: string): boolean {
  if (host.endsWith(`.svc.${ctx.domainSuffix}`) || ctx.serviceFor(host) !== undefined) return true;
  return ctx.hosts.lookup(host, new Set(['*'])).visible.some((e) =>
    e.resource.type === ResourceTypes.ServiceEntry && (e.resource.spec as { location?: string } | undefined)?.location === 'MESH_INTERNAL');
}

interface ClientTls {
  readonly mode?: string;
  readonly caCertificates?: string;
  readonly credentialName?: string;
  readonly insecureSkipVerify?: boolean;
}

/** DR_TLS_NO_CA, at the rule level and per port (subsets' policies likewise). */
function checkTlsVerification(ctx: AnalysisContext, dr: Resource): void {
  const spec = view<DestinationRuleView & { workloadSelector?: unknown }>(dr);
  const selected = spec.workloadSelector !== undefined;
  const check = (tls: ClientTls | undefined, path: string, where: string): void => {
    if (!isObject(tls) || (tls.mode !== 'SIMPLE' && tls.mode !== 'MUTUAL') || tls.insecureSkipVerify === true) return;
    if (typeof tls.caCertificates === 'string' && tls.caCertificates !== '') return;
    const cred = typeof tls.credentialName === 'string' && tls.credentialName !== '';
    if (cred && selected) return; // the CA comes from the credential's Secret (`ca.crt`, or `<name>-cacert`)
    ctx.report(dr, 'warning', 'DR_TLS_NO_CA', cred
      ? `${where}: ${tls.mode} TLS with credentialName and no caCertificates or workloadSelector: Istio's sidecars ignore credentialName then (it serves gateways, or the workloads a workloadSelector names) and verify no server certificate; Trellis sidecars read the CA from '${tls.credentialName}-cacert' in each client's namespace. Set caCertificates, or a workloadSelector`
      : `${where}: ${tls.mode} TLS to a server inside the mesh without caCertificates: its certificate is not verified (public roots cannot vouch for a cluster-internal name); set caCertificates, or insecureSkipVerify: true to say so`,
    `${path}.tls`);
  };
  const policies: [unknown, string, string][] = [[spec.trafficPolicy, 'spec.trafficPolicy', 'traffic policy']];
  list(spec.subsets).forEach((s, i) => policies.push([s?.trafficPolicy, `spec.subsets[${i}].trafficPolicy`, `subset '${s?.name ?? i}'`]));
  for (const [tp, path, where] of policies) {
    if (!isObject(tp)) continue;
    check(tp.tls as ClientTls | undefined, path, where);
    list(tp.portLevelSettings as readonly { port?: { number?: number }; tls?: ClientTls }[] | undefined).forEach((p, k) => {
      check(p?.tls, `${path}.portLevelSettings[${k}]`, `${where}, port ${p?.port?.number ?? k}`);
    });
  }
}
