/**
 * DestinationRule checks: DR_HOST_NOT_FOUND (warning) — the rule's host names no Service or
 * ServiceEntry, so it configures nothing (often a short name resolved in the wrong namespace);
 * SUBSET_DUPLICATE (error) — two subsets share a name, and a route naming it would get whichever
 * one the translation happened to keep; SUBSET_SHADOWED (warning) — an older rule of the same
 * namespace and host already defines the subset, and the merge (Istio's, and ours) keeps the
 * older definition, so this one is silently ignored.
 */
import { compareByAge, ResourceTypes, type Resource } from '../resource.ts';
import type { AnalysisContext } from './context.ts';
import { list, view, type DestinationRuleView } from './view.ts';

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
    if (!ctx.hostKnown(host)) {
      ctx.report(dr, 'warning', 'DR_HOST_NOT_FOUND', `host '${spec.host}' (${host}) is neither a Service nor a ServiceEntry host; this rule applies to nothing`, 'spec.host');
    }
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
