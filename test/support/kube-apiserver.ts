/**
 * A real Kubernetes API server for tests: etcd and kube-apiserver (built by
 * scripts/install-kube.sh into ~/.cache/trellis/kube-<version>/) started on loopback with
 * certificates generated here (a CA, the server's serving certificate for 127.0.0.1, an admin
 * client certificate in `system:masters`, the service-account signing key), and a kubeconfig
 * file for `trellis control --kubeconfig`. Neither binary can be told port 0 and report back, so
 * ports are picked free and a start that loses the race retries on new ones. There is no kubelet
 * or controller-manager: tests write Pod status and EndpointSlices themselves, as a kubelet and
 * the EndpointSlice controller would. One cluster per test file (`startKubeCluster` in `before`).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { KubeConfig } from '@kubernetes/client-node';
import { Cleanups, freePort, nodeBin, repoRoot, spawnTracked, tempDir, waitFor } from './processes.ts';
import type { Spawned } from './processes.ts';
import { sharedDir, skipBecause, skipUnlessShared } from './skip.ts';
import { createCa, issueCert } from '../../src/control/webhook/certs.ts';
import { KubeRest, apiStatus } from '../../src/config/store/kubernetes-rest.ts';
import type { KubeObject } from '../../src/config/store/kubernetes-rest.ts';

/** The Kubernetes version scripts/install-kube.sh builds. */
export const KubeVersion = '1.37.2';

/** Directory holding kube-apiserver and etcd ($TRELLIS_KUBE_DIR or the install script's cache). */
export function kubeDir(): string {
  return process.env.TRELLIS_KUBE_DIR ?? join(homedir(), '.cache', 'trellis', `kube-${KubeVersion}`);
}

/** helm's path ($TRELLIS_HELM_DIR or the install script's cache), or undefined. */
export function helmBinary(): string | undefined {
  const p = join(process.env.TRELLIS_HELM_DIR ?? join(homedir(), '.cache', 'trellis', 'helm-4.3.2'), 'helm');
  return existsSync(p) ? p : undefined;
}

/**
 * For `test(..., { skip: skipUnlessKube() })`: false, or a `tool:` skip naming the missing binary
 * (and the shared CRDs the Kubernetes tests install).
 */
export function skipUnlessKube(): false | string {
  const missing = ['kube-apiserver', 'etcd'].filter((b) => !existsSync(join(kubeDir(), b)));
  if (missing.length > 0) return skipBecause(`tool:${missing.join(',')}`, `needs ${missing.join(' and ')} in ${kubeDir()} (built by scripts/install-kube.sh)`);
  return skipUnlessShared('k8s/istio/crd-all.gen.yaml', 'k8s/gateway-api');
}

/** False when helm is built, otherwise a `tool:helm` skip. */
export function skipUnlessHelm(): false | string {
  return helmBinary() !== undefined ? false : skipBecause('tool:helm', 'needs helm in ~/.cache/trellis/helm-4.3.2 (built by scripts/install-kube.sh)');
}

/** The upstream CRDs of the shared test data (`../shared/k8s`). */
export const sharedK8s = join(sharedDir, 'k8s');

/** A running etcd + kube-apiserver. */
export interface KubeCluster {
  /** https://127.0.0.1:<port> */
  readonly server: string;
  /** A kubeconfig file with the admin client certificate. */
  readonly kubeconfigPath: string;
  readonly caPem: string;
  /** The key the API server signs service-account tokens with (PEM): tests forge tokens the API server would accept but for one claim. */
  readonly serviceAccountKeyPem: string;
  /** A fresh KubeConfig for the admin user. */
  kubeConfig(): KubeConfig;
  /** A REST client for the admin user. */
  readonly rest: KubeRest;
  /** Compacts etcd at its current revision: older resourceVersions answer 410 Gone from then on. */
  compactEtcd(): Promise<void>;
  /** Stops the API server (not etcd): every watch connection drops. */
  stopApiServer(): Promise<void>;
  /** Starts it again on the same port and waits for /readyz. */
  startApiServer(): Promise<void>;
  /** The API server's output so far (for failure messages). */
  logs(): string;
  stop(): Promise<void>;
}

async function startEtcd(cleanups: Cleanups, dir: string): Promise<{ proc: Spawned; url: string }> {
  for (let attempt = 0; ; attempt++) {
    const [client, peer] = [await freePort(), await freePort()];
    const url = `http://127.0.0.1:${client}`;
    const proc = spawnTracked(cleanups, join(kubeDir(), 'etcd'), [
      '--name', 'default', '--data-dir', join(dir, `etcd-${attempt}`),
      '--listen-client-urls', url, '--advertise-client-urls', url,
      '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-cluster', `default=http://127.0.0.1:${peer}`,
      '--unsafe-no-fsync', '--log-level', 'warn', '--quota-backend-bytes', String(1 << 30),
    ]);
    try {
      await waitFor('etcd /health', async () => {
        const code = await Promise.race([proc.exited, new Promise((r) => setTimeout(r, 0, undefined))]);
        if (code !== undefined) throw new Error(`etcd exited (${String(code)}): ${proc.output().slice(-2000)}`);
        const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
        return res?.ok === true;
      }, 30_000, 100);
      return { proc, url };
    } catch (err) {
      await proc.stop();
      if (attempt >= 2 || !/address already in use/.test(proc.output())) throw err;
    }
  }
}

/** Starts etcd and kube-apiserver; `cleanups` stops them (API server first, as it must be). */
export async function startKubeCluster(cleanups: Cleanups, options: { extraArgs?: readonly string[] } = {}): Promise<KubeCluster> {
  const dir = tempDir(cleanups, 'trellis-kube-');
  const ca = await createCa('trellis-test-kube-ca');
  const serving = await issueCert(ca, { commonName: 'kube-apiserver', hosts: ['127.0.0.1', 'localhost', 'kubernetes', 'kubernetes.default.svc'] });
  const admin = await issueCert(ca, { commonName: 'trellis-test-admin', organization: 'system:masters' });
  const sa = await issueCert(ca, { commonName: 'service-accounts' });
  const pki = join(dir, 'pki');
  mkdirSync(pki);
  const files: Record<string, string> = {
    'ca.pem': ca.certPem, 'server.pem': serving.certPem, 'server.key': serving.keyPem,
    'sa.key': sa.keyPem, 'sa.pub': sa.cert.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(pki, name), text, { mode: 0o600 });

  // A private cleanup list so the cluster stops in the right order whatever the caller registered.
  const own = new Cleanups();
  cleanups.add(() => own.run());
  const etcd = await startEtcd(own, dir);

  let port = await freePort();
  let apiserver: Spawned | undefined;
  const launch = (): Spawned => spawnTracked(own, join(kubeDir(), 'kube-apiserver'), [
    '--etcd-servers', etcd.url,
    '--bind-address', '127.0.0.1', '--advertise-address', '127.0.0.1', '--secure-port', String(port),
    '--tls-cert-file', join(pki, 'server.pem'), '--tls-private-key-file', join(pki, 'server.key'),
    '--client-ca-file', join(pki, 'ca.pem'),
    '--service-account-issuer', 'https://kubernetes.default.svc.cluster.local',
    '--service-account-key-file', join(pki, 'sa.pub'), '--service-account-signing-key-file', join(pki, 'sa.key'),
    '--service-cluster-ip-range', '10.96.0.0/16',
    '--authorization-mode', 'RBAC',
    // No kube-controller-manager creates `default` ServiceAccounts, so Pods would be refused.
    '--disable-admission-plugins', 'ServiceAccount',
    // On 127.0.0.1 the endpoint reconciler refuses the loopback address.
    '--endpoint-reconciler-type', 'none',
    '--cert-dir', join(dir, 'apiserver-certs'),
    '--profiling=false', '--v', '0',
    ...(options.extraArgs ?? []),
  ], { env: { ...process.env, GOMAXPROCS: '2' } });

  const rest = (() => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'test', server: `https://127.0.0.1:${port}`, caData: Buffer.from(ca.certPem).toString('base64') }],
      users: [{ name: 'admin', certData: Buffer.from(admin.certPem).toString('base64'), keyData: Buffer.from(admin.keyPem).toString('base64') }],
      contexts: [{ name: 'test', cluster: 'test', user: 'admin' }],
      currentContext: 'test',
    });
    return kc;
  });

  const waitReady = async (): Promise<void> => {
    const client = new KubeRest(rest());
    await waitFor('kube-apiserver /readyz', async () => {
      const code = await Promise.race([apiserver!.exited, new Promise((r) => setTimeout(r, 0, undefined))]);
      if (code !== undefined) throw new Error(`kube-apiserver exited (${String(code)}): ${apiserver!.output().slice(-3000)}`);
      try {
        await client.request('GET', '/readyz', { timeoutMs: 3000 });
        return true;
      } catch {
        return false;
      }
    }, 90_000, 200);
  };

  for (let attempt = 0; ; attempt++) {
    apiserver = launch();
    try {
      await waitReady();
      break;
    } catch (err) {
      await apiserver.stop();
      if (attempt >= 2 || !/address already in use/.test(apiserver.output())) throw err;
      port = await freePort();
    }
  }
  own.add(() => apiserver?.stop(5000));

  const kubeconfigPath = join(dir, 'kubeconfig');
  writeFileSync(kubeconfigPath, rest().exportConfig(), { mode: 0o600 });
  const client = new KubeRest(rest());
  return {
    server: `https://127.0.0.1:${port}`,
    kubeconfigPath,
    caPem: ca.certPem,
    serviceAccountKeyPem: sa.keyPem,
    kubeConfig: rest,
    rest: client,
    async stopApiServer() {
      await apiserver?.stop(5000);
    },
    async startApiServer() {
      apiserver = launch();
      await waitReady();
    },
    async compactEtcd() {
      const range = await fetch(`${etcd.url}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from('/').toString('base64') }) });
      const revision = ((await range.json()) as { header: { revision: string } }).header.revision;
      const res = await fetch(`${etcd.url}/v3/kv/compaction`, { method: 'POST', body: JSON.stringify({ revision, physical: true }) });
      if (!res.ok) throw new Error(`etcd compaction: ${res.status} ${await res.text()}`);
    },
    logs: () => apiserver?.output() ?? '',
    stop: () => own.run(),
  };
}

/** Creates or replaces an object (server-side apply, field manager `trellis-test`). */
export async function applyObject(rest: KubeRest, obj: KubeObject, opts: { dryRun?: boolean } = {}): Promise<KubeObject> {
  return rest.request('PATCH', objectUrl(obj), {
    body: obj,
    contentType: 'application/apply-patch+yaml',
    query: { fieldManager: 'trellis-test', force: true, ...(opts.dryRun ? { dryRun: 'All' } : {}) },
  });
}

/** Deletes an object; a missing one is fine. */
export async function deleteObject(rest: KubeRest, obj: KubeObject): Promise<void> {
  try {
    await rest.request('DELETE', objectUrl(obj));
  } catch (err) {
    if (apiStatus(err) !== 404) throw err;
  }
}

const CLUSTER_SCOPED = new Set(['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'GatewayClass',
  'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding', 'Node']);

const PLURALS: Record<string, string> = {
  Gateway: 'gateways', ServiceEntry: 'serviceentries', Telemetry: 'telemetries', AuthorizationPolicy: 'authorizationpolicies',
  GatewayClass: 'gatewayclasses', Ingress: 'ingresses', PodDisruptionBudget: 'poddisruptionbudgets', Policy: 'policies',
  WorkloadEntry: 'workloadentries', ProxyConfig: 'proxyconfigs', NetworkPolicy: 'networkpolicies',
  ValidatingAdmissionPolicy: 'validatingadmissionpolicies',
};

/** The REST path of an object from its apiVersion/kind/metadata (plural: lowercase kind + s, with the irregular ones above). */
export function objectUrl(obj: KubeObject): string {
  const apiVersion = obj.apiVersion ?? 'v1';
  const kind = obj.kind ?? '';
  const plural = PLURALS[kind] ?? `${kind.toLowerCase()}s`;
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const ns = obj.metadata?.namespace ?? (CLUSTER_SCOPED.has(kind) ? undefined : 'default');
  const coll = ns !== undefined && !CLUSTER_SCOPED.has(kind) ? `${base}/namespaces/${ns}/${plural}` : `${base}/${plural}`;
  return `${coll}/${encodeURIComponent(obj.metadata?.name ?? '')}`;
}

/** Every document of a multi-document YAML text (empty ones dropped). */
export function yamlObjects(text: string): KubeObject[] {
  return parseAllDocuments(text).map((d) => d.toJS() as KubeObject).filter((o) => o !== null && typeof o === 'object');
}

/** Istio's own CRDs from the shared test data (what Istio's base chart installs). */
export function istioCrds(): KubeObject[] {
  return yamlObjects(readFileSync(join(sharedK8s, 'istio', 'crd-all.gen.yaml'), 'utf8')).filter((o) => o.kind === 'CustomResourceDefinition');
}

/** Installs CRDs and waits until each is Established (served). */
export async function installCrds(rest: KubeRest, crds: readonly KubeObject[]): Promise<void> {
  for (const crd of crds) await applyObject(rest, crd);
  for (const crd of crds) {
    await waitFor(`CRD ${crd.metadata?.name} established`, async () => {
      const got = await rest.request<KubeObject & { status?: { conditions?: { type: string; status: string }[] } }>('GET', objectUrl(crd));
      return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') === true;
    }, 30_000, 100);
  }
}

/** Creates a namespace (with labels) if missing. */
export async function ensureNamespace(rest: KubeRest, name: string, labels: Record<string, string> = {}): Promise<void> {
  await applyObject(rest, { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
}

/** A kubeconfig file authenticating as a ServiceAccount (a TokenRequest token): what runs with it has exactly that account's RBAC. */
export async function serviceAccountKubeconfig(cleanups: Cleanups, cluster: Pick<KubeCluster, 'rest' | 'server' | 'caPem'>, namespace: string, name: string): Promise<string> {
  const token = await cluster.rest.request<{ status: { token: string } }>('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
  });
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: cluster.server, caData: Buffer.from(cluster.caPem).toString('base64') }],
    users: [{ name: 'sa', token: token.status.token }],
    contexts: [{ name: 'c', cluster: 'c', user: 'sa' }],
    currentContext: 'c',
  });
  const path = join(tempDir(cleanups, 'trellis-sa-'), 'kubeconfig');
  writeFileSync(path, kc.exportConfig(), { mode: 0o600 });
  return path;
}

/** A `trellis control --kubeconfig` child process. */
export interface KubeControlProcess extends Spawned {
  readonly xdsPort: number;
  readonly debugPort: number;
  readonly webhookPort: number;
  /** The mesh CA's TLS port (0 with --no-ca). */
  readonly caTlsPort: number;
  /** http://127.0.0.1:<debugPort> */
  readonly url: string;
}

/** Starts `trellis control --kubeconfig` against `cluster` on free ports (`extraArgs` may name ports) and waits for its ready file. */
export async function startKubeControl(cleanups: Cleanups, cluster: Pick<KubeCluster, 'kubeconfigPath'>, extraArgs: readonly string[] = []): Promise<KubeControlProcess> {
  const work = tempDir(cleanups, 'trellis-kctl-');
  const ready = join(work, 'ready.json');
  const p = spawnTracked(cleanups, nodeBin, [join(repoRoot, 'bin', 'trellis.js'), 'control', '--kubeconfig', cluster.kubeconfigPath,
    '--xds-port', '0', '--debug-port', '0', '--ca-tls-port', '0', '--ready-file', ready, '--log-level', 'warn', ...extraArgs], { cwd: repoRoot });
  let exited: number | string | undefined;
  void p.exited.then((c) => (exited = c));
  const info = await Promise.race([
    waitFor('trellis control --kubeconfig ready file', () => exited === undefined && existsSync(ready) && (JSON.parse(readFileSync(ready, 'utf8')) as { xds: number; debug: number; webhook?: number; caTls?: number }), 60_000),
    p.exited.then((code) => {
      throw new Error(`trellis control exited (${String(code)}):\n${p.output()}`);
    }),
  ]);
  return { ...p, xdsPort: info.xds, debugPort: info.debug, webhookPort: info.webhook ?? 0, caTlsPort: info.caTls ?? 0, url: `http://127.0.0.1:${info.debug}` };
}
