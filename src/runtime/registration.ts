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

/** A port of the egress gateway: the Gateway server port, its name, and where the process listens. */
export interface EgressGatewayPortBinding {
  readonly name: string;
  readonly port: number;
  readonly local: number;
}

/**
 * Istio's `istio-egressgateway` Service, one port per Gateway server port, for configs that do not
 * declare it themselves (Istio's installer creates it; here `up` does).
 */
export function egressGatewayServiceYaml(o: { namespace: string; service: string; labels: Readonly<Record<string, string>>; ports: readonly { name: string; port: number }[] }): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: o.service, namespace: o.namespace, labels: { 'trellis.dev/runtime': 'egress-gateway' } },
    spec: { selector: { ...o.labels }, ports: o.ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.port })) },
  });
}

/**
 * The egress gateway process as the WorkloadEntry behind that Service. Gateways take no auto-mTLS
 * (`tlsMode: disabled`, so a plain HTTP server port works as in Istio's egress examples); mTLS to
 * the gateway is a DestinationRule `ISTIO_MUTUAL`, as Istio documents it.
 */
export function egressGatewayEntryYaml(o: { id: string; namespace: string; labels: Readonly<Record<string, string>>; serviceAccount: string; address: string; ports: readonly EgressGatewayPortBinding[] }): string {
  return stringify({
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: { name: o.id, namespace: o.namespace },
    spec: {
      address: o.address,
      labels: { ...o.labels, 'security.istio.io/tlsMode': 'disabled' },
      serviceAccount: o.serviceAccount,
      ports: Object.fromEntries(o.ports.map((p) => [p.name, p.local])),
    },
  });
}

/** Writes `text` as the registration file of `id` (atomically). */
export function registerYaml(dir: string, id: string, namespace: string, text: string): string {
  const file = registrationFile(dir, id, namespace);
  const tmp = join(dir, `.${namespace}--${id}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, file);
  return file;
}

/** Writes (atomically: the file store must never see half a document) a replica's registration. */
export function register(dir: string, r: Registration): string {
  return registerYaml(dir, r.id, r.namespace, workloadEntryYaml(r));
}

/** Removes a replica's registration (no error when absent). */
export function unregister(dir: string, id: string, namespace: string): void {
  rmSync(registrationFile(dir, id, namespace), { force: true });
}
