/**
 * The Kubernetes side of the control-plane benchmark (`--store kubernetes`): a real kube-apiserver
 * + etcd (test/support/kube-apiserver.ts, built by scripts/install-kube.sh) holding the same mesh
 * the file store reads, written through the API (16 requests in flight), and changes applied the
 * same way, so `trellis control --kubeconfig` is measured from the API write to every client's ACK.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Cleanups } from '../test/support/processes.ts';
import { pool } from '../test/support/features.ts';
import { applyObject, sharedK8s, ensureNamespace, installCrds, skipUnlessKube, startKubeCluster, yamlObjects } from '../test/support/kube-apiserver.ts';
import type { KubeObject } from '../src/config/store/kubernetes-rest.ts';
import { Namespaces } from './control-config.ts';

export interface KubeBench {
  readonly kubeconfigPath: string;
  /** Applies every object of a YAML text (16 in flight); resolves when the API server has them all. */
  apply(text: string): Promise<void>;
  stop(): Promise<void>;
}

/** Why the Kubernetes store cannot be benchmarked here, or undefined. */
export function kubeUnavailable(): string | undefined {
  return skipUnlessKube() || undefined;
}

/** Starts a cluster with the Istio CRDs and the mesh in `dir` (every .yaml file) applied. */
export async function startKubeBench(dir: string): Promise<KubeBench> {
  const cleanups = new Cleanups();
  const cluster = await startKubeCluster(cleanups);
  const shared = join(sharedK8s, 'istio', 'crd-all.gen.yaml');
  await installCrds(cluster.rest, yamlObjects(readFileSync(shared, 'utf8')).filter((o) => o.kind === 'CustomResourceDefinition'));
  for (let n = 0; n < Namespaces; n++) await ensureNamespace(cluster.rest, `ns-${n}`);
  const apply = async (text: string): Promise<void> => void (await pool<KubeObject, KubeObject>(yamlObjects(text), 16, (o) => applyObject(cluster.rest, o)));
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();
  // Services and slices before the policies that name them.
  for (const f of [...files.filter((x) => x.startsWith('services-')), ...files.filter((x) => !x.startsWith('services-'))]) await apply(readFileSync(join(dir, f), 'utf8'));
  return { kubeconfigPath: cluster.kubeconfigPath, apply, stop: () => cleanups.run() };
}
