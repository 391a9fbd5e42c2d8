/**
 * DestinationRule checks: DR_HOST_NOT_FOUND (warning) — the rule's host names no Service or
 * ServiceEntry, so it configures nothing (often a short name resolved in the wrong namespace);
 * SUBSET_DUPLICATE (error) — two subsets share a name, and a route naming it would get whichever
 * one the translation happened to keep.
 */
import { ResourceTypes } from '../resource.ts';
import type { AnalysisContext } from './context.ts';
import { list, view, type DestinationRuleView } from './view.ts';

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
}
