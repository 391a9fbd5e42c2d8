/**
 * Which mTLS mode a workload port is in, by Istio's PeerAuthentication rules: the oldest policy
 * whose `selector.matchLabels` selects the workload in its namespace (its `portLevelMtls` entry for
 * the port first), else the namespace's policy without a selector, else the root namespace's
 * (mesh-wide) policy without a selector, else PERMISSIVE. `UNSET` (or no `mtls`) at a level
 * inherits from the next one out. Ports are workload (target) ports, as in Istio.
 */
import { compareByAge, type Resource } from '../../config/resource.ts';
import { view, type PeerAuthenticationView } from '../../config/views.ts';
import { workloadPolicySelects } from '../../config/label-selector.ts';

/** An effective mode (UNSET resolved). */
export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export interface EffectiveMtls {
  readonly mode: MtlsMode;
  /** `ns/name#level` of the policy that decided (level: port, workload, namespace, mesh), or `default`. */
  readonly decidedBy: string;
}

export interface PeerAuthenticationIndex {
  /** The mode of `port` on a workload with `labels` in `namespace`. */
  modeFor(namespace: string, labels: Readonly<Record<string, string>>, port: number): EffectiveMtls;
  /** True when any policy exists (lets callers skip work in meshes without any). */
  readonly empty: boolean;
}

function spec(r: Resource): PeerAuthenticationView {
  return view<PeerAuthenticationView>(r);
}

function modeOf(m: string | undefined): MtlsMode | undefined {
  return m === 'STRICT' || m === 'PERMISSIVE' || m === 'DISABLE' ? m : undefined;
}

function isDefault(r: Resource): boolean {
  const sel = spec(r).selector?.matchLabels;
  return sel === undefined || Object.keys(sel).length === 0;
}

/** Indexes PeerAuthentication resources. */
export function indexPeerAuthentications(policies: readonly Resource[], rootNamespace: string): PeerAuthenticationIndex {
  const byNs = new Map<string, Resource[]>();
  for (const r of [...policies].sort(compareByAge)) {
    const l = byNs.get(r.metadata.namespace) ?? [];
    l.push(r);
    byNs.set(r.metadata.namespace, l);
  }
  const key = (r: Resource, level: string) => `${r.metadata.namespace}/${r.metadata.name}#${level}`;
  return {
    empty: policies.length === 0,
    modeFor(namespace, labels, port) {
      const own = byNs.get(namespace) ?? [];
      const workload = own.find((r) => workloadPolicySelects(spec(r).selector?.matchLabels, labels));
      if (workload !== undefined) {
        const p = modeOf(spec(workload).portLevelMtls?.[String(port)]?.mode);
        if (p !== undefined) return { mode: p, decidedBy: key(workload, 'port') };
        const w = modeOf(spec(workload).mtls?.mode);
        if (w !== undefined) return { mode: w, decidedBy: key(workload, 'workload') };
      }
      const nsDefault = own.find(isDefault);
      const n = modeOf(nsDefault !== undefined ? spec(nsDefault).mtls?.mode : undefined);
      if (n !== undefined) return { mode: n, decidedBy: key(nsDefault!, 'namespace') };
      const meshDefault = (byNs.get(rootNamespace) ?? []).find(isDefault);
      const m = modeOf(meshDefault !== undefined ? spec(meshDefault).mtls?.mode : undefined);
      if (m !== undefined) return { mode: m, decidedBy: key(meshDefault!, 'mesh') };
      return { mode: 'PERMISSIVE', decidedBy: 'default' };
    },
  };
}
