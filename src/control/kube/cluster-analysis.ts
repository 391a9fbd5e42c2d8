/**
 * `trellis analyze --kubeconfig`: the configuration a cluster holds, read once through the
 * KubernetesStore (the same conversion and checks as the control plane), plus what only the
 * cluster can tell: namespaces labelled for injection by a revision or tag that does not exist
 * (their pods would start without a sidecar, since no webhook selects them).
 */
import type { Diagnostic, Resource } from '../../config/resource.ts';
import { ResourceTypes } from '../../config/resource.ts';
import { KubernetesStore } from '../../config/store/kubernetes.ts';
import { KubeRest, loadKubeConfig } from '../../config/store/kubernetes-rest.ts';
import type { KubeObject } from '../../config/store/kubernetes-rest.ts';
import { InjectionLabel, RevisionLabel, TagLabel } from '../webhook/webhook-config.ts';

/** The revisions (injector configurations) and tags present in a cluster. */
export async function clusterRevisions(rest: KubeRest): Promise<{ revisions: Set<string>; tags: Set<string> }> {
  const list = await rest.request<{ items: KubeObject[] }>('GET', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', { query: { labelSelector: RevisionLabel } });
  const revisions = new Set<string>();
  const tags = new Set<string>();
  for (const c of list.items) {
    const l = c.metadata?.labels ?? {};
    if (l[TagLabel] !== undefined) tags.add(l[TagLabel]);
    else if (l[RevisionLabel] !== undefined) revisions.add(l[RevisionLabel]);
  }
  return { revisions, tags };
}

/** REVISION_NOT_FOUND for every namespace whose injection label points at nothing. */
export function revisionDiagnostics(namespaces: readonly Resource[], revisions: ReadonlySet<string>, tags: ReadonlySet<string>): Diagnostic[] {
  const known = [...[...revisions].map((r) => `revision ${r}`), ...[...tags].map((t) => `tag ${t}`)].join(', ') || 'none';
  const out: Diagnostic[] = [];
  for (const ns of namespaces) {
    const rev = ns.metadata.labels[RevisionLabel];
    const injection = ns.metadata.labels[InjectionLabel];
    const ref = { kind: 'Namespace', namespace: '', name: ns.metadata.name };
    if (injection === 'enabled' && !revisions.has('default') && !tags.has('default')) {
      out.push({ severity: 'warning', code: 'REVISION_NOT_FOUND', resource: ref, file: ns.source?.file, fieldPath: `metadata.labels.${InjectionLabel}`,
        message: `namespace ${ns.metadata.name} is labelled ${InjectionLabel}=enabled but there is no default revision (nor a 'default' tag); its new pods start without a sidecar (present: ${known})` });
    } else if (rev !== undefined && injection === undefined && !revisions.has(rev) && !tags.has(rev)) {
      out.push({ severity: 'warning', code: 'REVISION_NOT_FOUND', resource: ref, file: ns.source?.file, fieldPath: `metadata.labels.${RevisionLabel}`,
        message: `namespace ${ns.metadata.name} is labelled ${RevisionLabel}=${rev}, but no control plane revision or tag '${rev}' exists; its new pods start without a sidecar (present: ${known})` });
    }
  }
  return out;
}

/** Reads every resource of the cluster once; returns them with the store's and the revision diagnostics. */
export async function loadClusterConfig(kubeconfig: string): Promise<{ resources: Resource[]; diagnostics: Diagnostic[] }> {
  const rest = new KubeRest(loadKubeConfig(kubeconfig));
  const store = new KubernetesStore(rest);
  try {
    await store.ready();
    const resources = store.types().flatMap((t) => [...store.list(t)]);
    const { revisions, tags } = await clusterRevisions(rest);
    return { resources, diagnostics: [...store.diagnostics(), ...revisionDiagnostics(store.list(ResourceTypes.Namespace), revisions, tags)] };
  } finally {
    await store.close();
  }
}
