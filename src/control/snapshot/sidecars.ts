/**
 * Which Sidecar resource applies to a proxy, by Istio's rule: in the proxy's namespace, a Sidecar
 * whose workloadSelector matches the proxy's labels (oldest first), else the namespace's Sidecar
 * without a selector, else the root namespace's Sidecar without a selector; else none (defaults).
 */
import type { Resource } from '../../config/resource.ts';
import { type SidecarView, view } from '../../config/views.ts';

export interface SidecarIndex {
  forProxy(namespace: string, labels: Readonly<Record<string, string>>): { readonly resource: Resource; readonly spec: SidecarView } | undefined;
}

function matches(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

function byAge(a: Resource, b: Resource): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  return ta < tb ? -1 : ta > tb ? 1 : a.metadata.name.localeCompare(b.metadata.name);
}

export function indexSidecars(sidecars: readonly Resource[], rootNamespace: string): SidecarIndex {
  const byNamespace = new Map<string, Resource[]>();
  for (const r of [...sidecars].sort(byAge)) {
    const l = byNamespace.get(r.metadata.namespace) ?? [];
    l.push(r);
    byNamespace.set(r.metadata.namespace, l);
  }
  const wrap = (r: Resource | undefined) => (r === undefined ? undefined : { resource: r, spec: view<SidecarView>(r) });
  const namespaceDefault = (ns: string) => (byNamespace.get(ns) ?? []).find((r) => view<SidecarView>(r).workloadSelector?.labels === undefined);
  return {
    forProxy(namespace, labels) {
      const own = byNamespace.get(namespace) ?? [];
      const selected = own.find((r) => {
        const sel = view<SidecarView>(r).workloadSelector?.labels;
        return sel !== undefined && matches(sel, labels);
      });
      return wrap(selected ?? namespaceDefault(namespace) ?? namespaceDefault(rootNamespace));
    },
  };
}
