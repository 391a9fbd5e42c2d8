/**
 * Endpoint registration for local workloads: one Istio `WorkloadEntry` per ready replica, written
 * as a YAML file into a directory the control plane watches (its second `--config`). We register
 * WorkloadEntries rather than EndpointSlices because subsets (`version: v2`) need the endpoint's
 * labels, which an EndpointSlice only carries through its Pod (not a kind local mode loads), while
 * a WorkloadEntry carries labels, service account and per-port-name ports itself — it is Istio's
 * own way to register a non-Kubernetes workload, and a Service's selector selects it. A replica
 * that is not ready has no file (Istio likewise drops unhealthy auto-registered entries), so the
 * mesh only sends traffic to ready replicas; a restarted replica gets a new file with new ports.
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

export interface Registration {
  /** Unique replica id (`web-api-v1-x7k2q`). */
  readonly id: string;
  readonly workload: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  readonly address: string;
  /** Service port name -> port the sidecar serves inbound on. */
  readonly ports: Readonly<Record<string, number>>;
}

/** The file a replica's registration lives in. */
export function registrationFile(dir: string, id: string, namespace: string): string {
  return join(dir, `${namespace}--${id}.yaml`);
}

/** The WorkloadEntry for a replica, as YAML text. */
export function workloadEntryYaml(r: Registration): string {
  return stringify({
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: {
      name: r.id,
      namespace: r.namespace,
      labels: { ...r.labels, 'trellis.dev/workload': r.workload },
    },
    spec: {
      address: r.address,
      // Istio's injector marks workloads that run a sidecar; auto-mTLS sends them ISTIO_MUTUAL.
      labels: { ...r.labels, 'security.istio.io/tlsMode': 'istio' },
      serviceAccount: r.serviceAccount,
      ports: { ...r.ports },
    },
  });
}

/** Writes (atomically: the file store must never see half a document) a replica's registration. */
export function register(dir: string, r: Registration): string {
  const file = registrationFile(dir, r.id, r.namespace);
  const tmp = join(dir, `.${r.namespace}--${r.id}.tmp`);
  writeFileSync(tmp, workloadEntryYaml(r));
  renameSync(tmp, file);
  return file;
}

/** Removes a replica's registration (no error when absent). */
export function unregister(dir: string, id: string, namespace: string): void {
  rmSync(registrationFile(dir, id, namespace), { force: true });
}
