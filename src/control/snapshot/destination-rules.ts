/**
 * DestinationRules by host, looked up the way Istio does for a proxy calling a service: the first
 * namespace in [proxy namespace, service namespace, root namespace] holding a rule for the host
 * that is exported to the proxy's namespace wins; within a namespace an exact host beats the most
 * specific wildcard, and the oldest rule wins a tie (Istio merges same-host rules' subsets; we keep
 * the oldest only, an approximation). Rule hosts written as short names are qualified relative to
 * the rule's namespace.
 */
import type { Resource } from '../../config/resource.ts';
import type { ServiceRegistry } from '../../registry/types.ts';
import type { DestinationRuleView } from './specs.ts';
import { view } from './specs.ts';
import { exportedTo, hostMatches } from './visibility.ts';

/** One DestinationRule with its qualified host. */
export interface IndexedDestinationRule {
  readonly resource: Resource;
  readonly spec: DestinationRuleView;
  readonly host: string;
  readonly namespace: string;
}

export interface DestinationRuleIndex {
  /** The rule that applies to traffic from `proxyNamespace` to `host` (declared in `serviceNamespace`). */
  lookup(host: string, proxyNamespace: string, serviceNamespace: string): IndexedDestinationRule | undefined;
  /** Every rule, in namespace/name order. */
  all(): readonly IndexedDestinationRule[];
}

function byAge(a: Resource, b: Resource): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  return ta < tb ? -1 : ta > tb ? 1 : a.metadata.namespace.localeCompare(b.metadata.namespace) || a.metadata.name.localeCompare(b.metadata.name);
}

/** Builds the index; `rootNamespace` holds mesh-wide defaults. */
export function indexDestinationRules(
  rules: readonly Resource[],
  registry: Pick<ServiceRegistry, 'qualify'>,
  rootNamespace: string,
): DestinationRuleIndex {
  const byNamespace = new Map<string, IndexedDestinationRule[]>();
  const all: IndexedDestinationRule[] = [];
  for (const r of [...rules].sort(byAge)) {
    const spec = view<DestinationRuleView>(r);
    if (spec.host === undefined || spec.host === '') continue;
    if (spec.workloadSelector !== undefined) continue; // workload-scoped rules apply to inbound/sidecar-specific config: not supported yet
    const e: IndexedDestinationRule = Object.freeze({ resource: r, spec, host: registry.qualify(spec.host, r.metadata.namespace), namespace: r.metadata.namespace });
    all.push(e);
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
  function inNamespace(ns: string, host: string, proxyNamespace: string): IndexedDestinationRule | undefined {
    for (const e of exactByNamespace.get(ns)?.get(host) ?? []) {
      if (exportedTo(e.spec.exportTo, e.namespace, proxyNamespace)) return e;
    }
    let best: IndexedDestinationRule | undefined;
    for (const e of wildcardByNamespace.get(ns) ?? []) {
      if (!exportedTo(e.spec.exportTo, e.namespace, proxyNamespace)) continue;
      if (hostMatches(e.host, host) && (best === undefined || e.host.length > best.host.length)) best = e;
    }
    return best;
  }
  all.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.resource.metadata.name.localeCompare(b.resource.metadata.name));
  return {
    lookup(host, proxyNamespace, serviceNamespace) {
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
