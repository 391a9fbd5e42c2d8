/**
 * Small builders for the mesh YAML end-to-end tests and the control-plane benchmark write into a
 * watched config directory: a Kubernetes Service with workloads behind it, and atomic file writes
 * (write a temp file, rename) so the file store never sees half a document.
 *
 * Workload labels (version=v1/v2 for subsets) come from WorkloadEntries selected by the Service's
 * selector, as Istio does: the file store ignores Pods, so EndpointSlice endpoints carry no labels
 * here; EndpointSlices are used where labels do not matter (the benchmark).
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Writes `text` to `dir/name` atomically (temp file + rename). */
export function writeConfig(dir: string, name: string, text: string): void {
  const tmp = join(dir, `.${name}.${process.pid}.${Date.now()}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, join(dir, name));
}

export interface Workload {
  name: string;
  labels: Record<string, string>;
  address?: string;
  /** Port by service port name. */
  ports: Record<string, number>;
}

/** A Service selecting `app: <name>`, up to its `ports:` key. */
function serviceHead(name: string, ns: string): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: ${ns}
spec:
  selector:
    app: ${name}
  ports:`;
}

/** A Service selecting `app: <name>` with the given ports, plus one WorkloadEntry per workload. */
export function serviceWithWorkloads(o: { name: string; namespace?: string; ports: { name: string; port: number; appProtocol?: string }[]; workloads: Workload[] }): string {
  const ns = o.namespace ?? 'default';
  const docs = [
    `${serviceHead(o.name, ns)}
${o.ports.map((p) => `  - name: ${p.name}\n    port: ${p.port}\n    targetPort: ${p.port}${p.appProtocol ? `\n    appProtocol: ${p.appProtocol}` : ''}`).join('\n')}`,
    ...o.workloads.map((w) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: ${w.name}
  namespace: ${ns}
spec:
  address: ${w.address ?? '127.0.0.1'}
  labels:
    app: ${o.name}
${Object.entries(w.labels).map(([k, v]) => `    ${k}: ${v}`).join('\n')}
  ports:
${Object.entries(w.ports).map(([k, v]) => `    ${k}: ${v}`).join('\n')}`),
  ];
  return docs.join('\n---\n') + '\n';
}

/** A Service with one EndpointSlice of `addresses` (all on `targetPort`). */
export function serviceWithSlice(o: { name: string; namespace?: string; port: number; portName?: string; targetPort: number; addresses: string[] }): string {
  const ns = o.namespace ?? 'default';
  const pn = o.portName ?? 'http';
  return `${serviceHead(o.name, ns)}
  - name: ${pn}
    port: ${o.port}
    targetPort: ${o.targetPort}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${o.name}-1
  namespace: ${ns}
  labels:
    kubernetes.io/service-name: ${o.name}
addressType: IPv4
ports:
- name: ${pn}
  port: ${o.targetPort}
endpoints:
${o.addresses.map((a) => `- addresses: ["${a}"]\n  conditions: {ready: true}`).join('\n')}
`;
}

/** DestinationRule with subsets v1/v2 by the version label. */
export function versionSubsets(host: string, namespace = 'default'): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ${host.split('.')[0]}
  namespace: ${namespace}
spec:
  host: ${host}
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
`;
}
