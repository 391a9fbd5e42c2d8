/**
 * Distributes the mesh's trust bundle to every namespace as Istio's namespace controller does:
 * a ConfigMap `istio-ca-root-cert` (label `istio.io/config: "true"`) whose `root-cert.pem` holds
 * the CA's roots, in each namespace the mesh reads (discoverySelectors) except Kubernetes'
 * own kube-public, kube-node-lease and local-path-storage, and not in terminating ones. Injected
 * proxies mount it to verify the CA's TLS port; workloads may read it to trust the mesh. It is
 * kept current: on a bundle change (root rotation), a new namespace, and an edited or deleted
 * ConfigMap (both watched), plus a periodic pass. Only the elected leader (Lease
 * `trellis-namespace-controller` in the control plane's namespace) writes, so replicas and
 * revisions sharing the root never fight over it.
 */
import type { KubeObject, KubeRest } from '../../config/store/kubernetes-rest.ts';
import { apiStatus } from '../../config/store/kubernetes-rest.ts';
import { kubeKind, type KubeKind } from '../../config/store/kubernetes-kinds.ts';
import { ResourceTypes } from '../../config/resource.ts';
import type { ResourceType } from '../../config/resource.ts';
import { Reflector } from '../../config/store/kubernetes-reflector.ts';
import type { ReflectorSink } from '../../config/store/kubernetes-reflector.ts';
import { labelSelectorMatches, type LabelSelector } from '../../config/label-selector.ts';
import { describeError } from '../../errors.ts';
import { startLeaderElection, type LeaderElection } from './leader.ts';
import { SerialRounds } from './serial-rounds.ts';

/** Istio's names. */
export const RootCertConfigMap = 'istio-ca-root-cert';
export const RootCertKey = 'root-cert.pem';
/** Namespaces Istio never writes the ConfigMap to (kube-system is written: a node agent may run there). */
export const IgnoredNamespaces: ReadonlySet<string> = new Set(['kube-public', 'kube-node-lease', 'local-path-storage']);

const ConfigMapKind: KubeKind = Object.freeze({ type: 'core/ConfigMap' as ResourceType, group: 'core', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true, crd: false });

export interface RootCertPublisherOptions {
  readonly rest: KubeRest;
  /** The trust bundle (PEM roots) to publish. */
  readonly bundle: () => readonly string[];
  /** Where the leader Lease lives. */
  readonly systemNamespace: string;
  readonly identity: string;
  readonly discoverySelectors?: readonly LabelSelector[];
  readonly periodMs?: number;
  readonly debounceMs?: number;
  readonly log?: (level: 'info' | 'warn', obj: Record<string, unknown>, msg: string) => void;
}

export interface RootCertPublisher {
  /** The bundle changed: republish. */
  bundleChanged(): void;
  /** Runs one pass now (leader only); resolves when done. */
  sync(): Promise<void>;
  isLeader(): boolean;
  close(): Promise<void>;
}

/** The ConfigMap's content for a bundle. */
export function rootCertData(bundle: readonly string[]): Record<string, string> {
  return { [RootCertKey]: bundle.map((p) => p.trim()).join('\n') + '\n' };
}

/** Starts leader election, the watches and the publishing loop. */
export function startRootCertPublisher(o: RootCertPublisherOptions): RootCertPublisher {
  const namespaces = new Map<string, KubeObject>();
  const maps = new Map<string, KubeObject>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const sinkInto = (into: Map<string, KubeObject>, key: (obj: KubeObject) => string): ReflectorSink => ({
    replace: (_k, objects) => {
      into.clear();
      for (const obj of objects) into.set(key(obj), obj);
      schedule();
    },
    event: (_k, type, obj) => {
      if (type === 'DELETED') into.delete(key(obj));
      else into.set(key(obj), obj);
      schedule();
    },
    error: (k, err) => o.log?.('warn', { kind: k.kind, error: describeError(err) }, 'root certificate publisher: watch failed; retrying'),
  });
  const nsReflector = new Reflector(o.rest, kubeKind(ResourceTypes.Namespace)!, sinkInto(namespaces, (n) => n.metadata?.name ?? ''));
  const cmReflector = new Reflector(o.rest, ConfigMapKind, sinkInto(maps, (c) => c.metadata?.namespace ?? ''), { fieldSelector: `metadata.name=${RootCertConfigMap}` });

  const wanted = (ns: KubeObject): boolean => {
    const name = ns.metadata?.name ?? '';
    if (name === '' || IgnoredNamespaces.has(name)) return false;
    if ((ns as { status?: { phase?: string } }).status?.phase === 'Terminating') return false;
    const sel = o.discoverySelectors ?? [];
    return sel.length === 0 || sel.some((s) => labelSelectorMatches(s, ns.metadata?.labels ?? {}));
  };

  const pass = async (): Promise<void> => {
    const bundle = o.bundle();
    if (bundle.length === 0) return;
    const data = rootCertData(bundle);
    let written = 0;
    for (const ns of namespaces.values()) {
      if (closed || !election.isLeader()) return;
      if (!wanted(ns)) continue;
      const name = ns.metadata!.name!;
      const cur = maps.get(name) as (KubeObject & { data?: Record<string, string> }) | undefined;
      if (cur !== undefined && cur.data?.[RootCertKey] === data[RootCertKey] && cur.metadata?.labels?.['istio.io/config'] === 'true') continue;
      const coll = `/api/v1/namespaces/${name}/configmaps`;
      const body = {
        apiVersion: 'v1', kind: 'ConfigMap', data,
        metadata: { name: RootCertConfigMap, namespace: name, labels: { ...(cur?.metadata?.labels ?? {}), 'istio.io/config': 'true' }, ...(cur !== undefined ? { resourceVersion: cur.metadata?.resourceVersion } : {}) },
      };
      try {
        const res = cur === undefined ? await o.rest.request('POST', coll, { body }) : await o.rest.request('PUT', `${coll}/${RootCertConfigMap}`, { body });
        maps.set(name, res);
        written++;
      } catch (err) {
        // 409: someone wrote it meanwhile (the watch brings the new version); 404: the namespace is going away.
        const code = apiStatus(err);
        if (code !== 409 && code !== 404) o.log?.('warn', { namespace: name, error: describeError(err) }, `writing ${RootCertConfigMap} failed; retrying`);
        rounds.repeat();
      }
    }
    if (written > 0) o.log?.('info', { namespaces: written, roots: bundle.length }, `published ${RootCertConfigMap}`);
  };

  // A failed write is retried after a short pause, while this replica still leads.
  const rounds = new SerialRounds(
    () => pass().catch((err: unknown) => o.log?.('warn', { error: describeError(err) }, `publishing ${RootCertConfigMap} failed; retrying`)),
    async () => !closed && election.isLeader() && (await new Promise<boolean>((r) => setTimeout(r, 500, true))),
  );
  const run = (): Promise<void> => rounds.run();

  function schedule(): void {
    if (closed || !election.isLeader()) return;
    clearTimeout(timer);
    timer = setTimeout(() => void run(), o.debounceMs ?? 100);
    timer.unref();
  }

  const election: LeaderElection = startLeaderElection({
    rest: o.rest, namespace: o.systemNamespace, name: 'trellis-namespace-controller', identity: o.identity,
    onChange: (leader) => {
      o.log?.('info', { leader }, leader ? `leading: publishing ${RootCertConfigMap}` : `no longer publishing ${RootCertConfigMap}`);
      if (leader) schedule();
    },
  });
  nsReflector.start();
  cmReflector.start();
  const periodic = setInterval(() => schedule(), o.periodMs ?? 60_000);
  periodic.unref();

  return {
    bundleChanged: () => schedule(),
    sync: () => (election.isLeader() ? run() : Promise.resolve()),
    isLeader: () => election.isLeader(),
    async close() {
      closed = true;
      clearTimeout(timer);
      clearInterval(periodic);
      nsReflector.stop();
      cmReflector.stop();
      await rounds.current;
      await election.stop();
    },
  };
}
