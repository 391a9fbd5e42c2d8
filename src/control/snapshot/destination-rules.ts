/**
 * DestinationRules by host, looked up the way Istio does for a proxy calling a service: the first
 * namespace in [proxy namespace, service namespace, root namespace] holding a rule for the host
 * that is exported to the proxy's namespace wins; within a namespace an exact host beats the most
 * specific wildcard. Several rules of one namespace with the same host (exact or the same wildcard)
 * that the proxy can see are merged as Istio merges them, oldest first (creation time, then
 * namespace/name): subsets are concatenated, a subset name already defined keeps its first
 * definition, the top-level trafficPolicy is the first rule's that has one, and exportTo is the
 * first rule's. Rule hosts written as short names are qualified relative to the rule's namespace.
 * A rule with a `workloadSelector` applies only to the proxies of its own namespace whose labels it
 * selects, and for them it comes before every rule without one (Istio's workload-specific rule:
 * e.g. the TLS origination settings only the egress gateway should use, with a `credentialName`
 * only its namespace holds).
 */
import { compareByAge, type Resource } from '../../config/resource.ts';
import type { ServiceRegistry } from '../../registry/types.ts';
import { exportedTo, hostMatches } from './visibility.ts';
import { type DestinationRuleView, view } from '../../config/views.ts';

/** One DestinationRule with its qualified host, or several merged into one. */
export interface IndexedDestinationRule {
  /** The rule (the oldest one when merged). */
  readonly resource: Resource;
  readonly spec: DestinationRuleView;
  readonly host: string;
  readonly namespace: string;
  /** When several same-host rules were merged: all of them, oldest first. */
  readonly mergedFrom?: readonly Resource[];
}

/** Istio's merge of same-host rules (oldest first); `rules` has at least two. */
function mergeRules(rules: readonly IndexedDestinationRule[]): IndexedDestinationRule {
  const [first] = rules;
  const subsets: NonNullable<DestinationRuleView['subsets']>[number][] = [];
  const names = new Set<string>();
  let trafficPolicy = first.spec.trafficPolicy;
  for (const r of rules) {
    for (const s of r.spec.subsets ?? []) {
      const name = s.name ?? '';
      if (names.has(name)) continue; // Istio keeps the first definition (and counts a duplicate)
      names.add(name);
      subsets.push(s);
    }
    trafficPolicy ??= r.spec.trafficPolicy;
  }
  const spec: DestinationRuleView = { ...first.spec, subsets, ...(trafficPolicy !== undefined ? { trafficPolicy } : {}) };
  return Object.freeze({ resource: first.resource, spec: Object.freeze(spec), host: first.host, namespace: first.namespace, mergedFrom: Object.freeze(rules.map((r) => r.resource)) });
}

export interface DestinationRuleIndex {
  /**
   * The rule that applies to traffic from a proxy of `proxyNamespace` (with `proxyLabels`, for
   * workload-selected rules) to `host` (declared in `serviceNamespace`).
   */
  lookup(host: string, proxyNamespace: string, serviceNamespace: string, proxyLabels?: Readonly<Record<string, string>>): IndexedDestinationRule | undefined;
  /** Every rule, in namespace/name order. */
  all(): readonly IndexedDestinationRule[];
}

/** Builds the index; `rootNamespace` holds mesh-wide defaults. */
export function indexDestinationRules(
  rules: readonly Resource[],
  registry: Pick<ServiceRegistry, 'qualify'>,
  rootNamespace: string,
): DestinationRuleIndex {
  const byNamespace = new Map<string, IndexedDestinationRule[]>();
  const selectedByNamespace = new Map<string, { labels: Readonly<Record<string, string>>; rule: IndexedDestinationRule }[]>();
  const all: IndexedDestinationRule[] = [];
  for (const r of [...rules].sort(compareByAge)) {
    const spec = view<DestinationRuleView>(r);
    if (spec.host === undefined || spec.host === '') continue;
    const e: IndexedDestinationRule = Object.freeze({ resource: r, spec, host: registry.qualify(spec.host, r.metadata.namespace), namespace: r.metadata.namespace });
    all.push(e);
    if (spec.workloadSelector !== undefined) {
      const l = selectedByNamespace.get(e.namespace) ?? [];
      l.push({ labels: spec.workloadSelector.matchLabels ?? {}, rule: e });
      selectedByNamespace.set(e.namespace, l);
      continue;
    }
    const l = byNamespace.get(e.namespace) ?? [];
    l.push(e);
    byNamespace.set(e.namespace, l);
  }
  // Per namespace: exact hosts in a map (oldest first), wildcard hosts in a list. A scan of the
  // namespace's rules per lookup was quadratic at 10,000 services.
  const exactByNamespace = new Map<string, Map<string, IndexedDestinationRule[]>>();
  const wildcardByNamespace = new Map<string, IndexedDestinationRule[]>();
  for (const [ns, list] of byNamespace) {
    const exact = new Map<string, IndexedDestinationRule[]>();
    const wild: IndexedDestinationRule[] = [];
    for (const e of list) {
      if (e.host.startsWith('*')) wild.push(e);
      else {
        let l = exact.get(e.host);
        if (l === undefined) exact.set(e.host, (l = []));
        l.push(e);
      }
    }
    exactByNamespace.set(ns, exact);
    wildcardByNamespace.set(ns, wild);
  }
  const cache = new Map<string, IndexedDestinationRule | undefined>();
  // One merged object per set of rules, so every proxy the same set applies to shares it (the
  // translation shares clusters by rule identity).
  const merged = new Map<string, IndexedDestinationRule>();
  const seq = new Map<IndexedDestinationRule, number>(all.map((e, i) => [e, i]));
  function visible(rules: readonly IndexedDestinationRule[], proxyNamespace: string): IndexedDestinationRule | undefined {
    const seen = rules.filter((e) => exportedTo(e.spec.exportTo, e.namespace, proxyNamespace));
    if (seen.length <= 1) return seen[0];
    const key = seen.map((e) => seq.get(e)).join(',');
    let m = merged.get(key);
    if (m === undefined) merged.set(key, (m = mergeRules(seen)));
    return m;
  }
  function inNamespace(ns: string, host: string, proxyNamespace: string): IndexedDestinationRule | undefined {
    const exact = exactByNamespace.get(ns)?.get(host);
    if (exact !== undefined) {
      const found = visible(exact, proxyNamespace);
      if (found !== undefined) return found;
    }
    let best: IndexedDestinationRule | undefined;
    for (const e of wildcardByNamespace.get(ns) ?? []) {
      if (!exportedTo(e.spec.exportTo, e.namespace, proxyNamespace)) continue;
      if (hostMatches(e.host, host) && (best === undefined || e.host.length > best.host.length)) best = e;
    }
    if (best === undefined) return undefined;
    const bestHost = best.host;
    return visible((wildcardByNamespace.get(ns) ?? []).filter((e) => e.host === bestHost), proxyNamespace);
  }
  all.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.resource.metadata.name.localeCompare(b.resource.metadata.name));
  /** The oldest workload-selected rule of the proxy's namespace for `host` (exact host before wildcard). */
  function selected(host: string, proxyNamespace: string, labels: Readonly<Record<string, string>>): IndexedDestinationRule | undefined {
    let best: IndexedDestinationRule | undefined;
    for (const { labels: want, rule } of selectedByNamespace.get(proxyNamespace) ?? []) {
      if (!Object.entries(want).every(([k, v]) => labels[k] === v) || !hostMatches(rule.host, host)) continue;
      if (rule.host === host) return rule;
      if (best === undefined || rule.host.length > best.host.length) best = rule;
    }
    return best;
  }
  return {
    lookup(host, proxyNamespace, serviceNamespace, proxyLabels) {
      if (proxyLabels !== undefined && selectedByNamespace.has(proxyNamespace)) {
        const own = selected(host, proxyNamespace, proxyLabels);
        if (own !== undefined) return own;
      }
      const key = `${host}\n${proxyNamespace}\n${serviceNamespace}`;
      if (cache.has(key)) return cache.get(key);
      let found: IndexedDestinationRule | undefined;
      for (const ns of [proxyNamespace, serviceNamespace, rootNamespace]) {
        found = inNamespace(ns, host, proxyNamespace);
        if (found !== undefined) break;
      }
      cache.set(key, found);
      return found;
    },
    all: () => all,
  };
}
