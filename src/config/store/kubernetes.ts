/**
 * KubernetesStore: the ConfigStore over a Kubernetes API server. One reflector per kind (list +
 * watch with bookmarks, relist on 410, backoff on errors; kubernetes-reflector.ts) holds the raw
 * objects; changes mark keys dirty and, after a short debounce (a `kubectl apply -f` of many
 * objects is one batch), each dirty key is converted through the same validation as files and
 * committed to the shared ResourceTable as one batch. The API server's own bookkeeping
 * (creationTimestamp, generation, resourceVersion) is kept as it is, since status written back
 * must carry the server's `observedGeneration`.
 *
 * What is visible follows Istio: namespaced objects only from namespaces matching the mesh's
 * `discoverySelectors` (all when none), Secrets only when a Gateway (Gateway API
 * `certificateRefs`, Istio `credentialName`) or a DestinationRule `credentialName` references
 * them. An object that stops validating leaves the store and is reported as rejected (the control
 * plane's config gate keeps serving its last valid version); a failing watch keeps what it had
 * (KUBE_WATCH_FAILING).
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Diagnostic, Resource, ResourceType } from '../resource.ts';
import { ResourceTypes } from '../resource.ts';
import { describeError } from '../../errors.ts';
import { labelSelectorMatches } from '../label-selector.ts';
import type { LabelSelector } from '../label-selector.ts';
import { ResourceTable } from './table.ts';
import { TableStore } from './table-store.ts';
import type { TableMutation } from './table.ts';
import type { ConfigStore, RejectedResource } from './types.ts';
import { StoreDiagnosticCodes } from './file-state.ts';
import { KubeRest } from './kubernetes-rest.ts';
import type { KubeObject } from './kubernetes-rest.ts';
import { KubeKinds, kubeKind } from './kubernetes-kinds.ts';
import type { KubeKind } from './kubernetes-kinds.ts';
import { Reflector } from './kubernetes-reflector.ts';
import type { ReflectorOptions, ReflectorSink, ReflectorState } from './kubernetes-reflector.ts';
import { apiSourceName, convertObject } from './kubernetes-convert.ts';

/** Options of a KubernetesStore; every one has a default. */
export interface KubernetesStoreOptions extends ReflectorOptions {
  /** Resource types to read (default: every kind in kubernetes-kinds.ts). */
  readonly types?: readonly ResourceType[];
  /** Istio `meshConfig.discoverySelectors`: namespaces matching any are read; none = all. */
  readonly discoverySelectors?: readonly LabelSelector[];
  /**
   * Quiet time after the last change before a batch is committed (ms). Default 100, as the file
   * store: a rollout writes EndpointSlices one by one, and every batch is a push to every proxy
   * (with 20 ms, 100 slices written over a second became ten full EDS pushes to 1,000 proxies).
   */
  readonly debounceMs?: number;
  /** Upper bound on how long a stream of changes can delay a batch (ms). Default 1000. */
  readonly maxDelayMs?: number;
  /** Called on list/watch errors (they are retried); default: nothing (they show in diagnostics()). */
  readonly onError?: (err: unknown, kind: KubeKind) => void;
  readonly onListenerError?: (err: unknown) => void;
}

/** Diagnostic codes of this store. */
export const KubeStoreCodes = {
  /** A list or watch keeps failing; what was read before stays in force while it retries. */
  WatchFailing: 'KUBE_WATCH_FAILING',
} as const;

interface Entry {
  readonly rv: string | undefined;
  readonly resource?: Resource;
  readonly diagnostics: readonly Diagnostic[];
}

const SECRET_REFERRERS: ReadonlySet<ResourceType> = new Set([ResourceTypes.Gateway, ResourceTypes.IstioGateway, ResourceTypes.DestinationRule]);

function nsName(obj: KubeObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}

/** A ConfigStore reading Istio, Gateway API and core kinds from a Kubernetes API server. */
export class KubernetesStore extends TableStore implements ConfigStore {
  readonly rest: KubeRest;
  readonly #opts: KubernetesStoreOptions;
  readonly #kinds: readonly KubeKind[];
  readonly #reflectors = new Map<ResourceType, Reflector>();
  /** Raw objects by type, then `namespace/name`. */
  readonly #raw = new Map<ResourceType, Map<string, KubeObject>>();
  readonly #converted = new Map<string, Entry>();
  readonly #dirty = new Set<string>();
  readonly #watchErrors = new Map<ResourceType, string>();
  readonly #selectors: readonly LabelSelector[];
  #debounce: NodeJS.Timeout | undefined;
  #firstDirtyAt = 0;
  #ready: Promise<void> | undefined;

  constructor(kc: KubeConfig | KubeRest, options: KubernetesStoreOptions = {}) {
    super(new ResourceTable({ trustMetadata: true, onListenerError: options.onListenerError }));
    this.rest = kc instanceof KubeRest ? kc : new KubeRest(kc);
    this.#opts = options;
    this.#selectors = options.discoverySelectors ?? [];
    const wanted = new Set(options.types ?? KubeKinds.map((k) => k.type));
    // Namespace selection needs the namespaces' labels even when Namespaces are not asked for.
    if (this.#selectors.length > 0) wanted.add(ResourceTypes.Namespace);
    this.#kinds = KubeKinds.filter((k) => wanted.has(k.type));
    const sink: ReflectorSink = {
      replace: (kind, objects) => this.#onReplace(kind, objects),
      event: (kind, type, object) => this.#onEvent(kind, type, object),
      error: (kind, err) => this.#onWatchError(kind, err),
    };
    for (const kind of this.#kinds) this.#reflectors.set(kind.type, new Reflector(this.rest, kind, sink, options));
  }

  /** Starts every reflector; resolves once each has listed (or found its CRD absent) and the first batch is in. */
  ready(): Promise<void> {
    this.#ready ??= (async () => {
      for (const r of this.#reflectors.values()) r.start();
      await Promise.all([...this.#reflectors.values()].map((r) => r.firstSync));
      this.#flush();
    })();
    return this.#ready;
  }

  /** Each watched kind's state (synced / absent / failing / starting), for status pages and tests. */
  reflectorStates(): Record<string, ReflectorState> {
    return Object.fromEntries([...this.#reflectors].map(([t, r]) => [t, r.state]));
  }

  /** Lists made per kind (first list and relists after 410). */
  listCounts(): Record<string, number> {
    return Object.fromEntries([...this.#reflectors].map(([t, r]) => [t, r.lists]));
  }

  /** Commits pending changes now instead of after the debounce. */
  flush(): void {
    this.#flush();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.#debounce);
    for (const r of this.#reflectors.values()) r.stop();
    this.clearListeners();
  }

  #objects(type: ResourceType): Map<string, KubeObject> {
    let m = this.#raw.get(type);
    if (m === undefined) {
      m = new Map();
      this.#raw.set(type, m);
    }
    return m;
  }

  #onReplace(kind: KubeKind, objects: readonly KubeObject[]): void {
    const m = this.#objects(kind.type);
    const next = new Map(objects.map((o) => [nsName(o), o]));
    for (const key of m.keys()) if (!next.has(key)) this.#markDirty(kind.type, key);
    for (const [key, o] of next) if (m.get(key)?.metadata?.resourceVersion !== o.metadata?.resourceVersion || !m.has(key)) this.#markDirty(kind.type, key);
    this.#raw.set(kind.type, next);
    this.#watchErrors.delete(kind.type);
    this.#afterRawChange(kind.type, [...next.keys(), ...m.keys()]);
  }

  #onEvent(kind: KubeKind, type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: KubeObject): void {
    const m = this.#objects(kind.type);
    const key = nsName(obj);
    if (type === 'DELETED') m.delete(key);
    else m.set(key, obj);
    this.#watchErrors.delete(kind.type);
    this.#markDirty(kind.type, key);
    this.#afterRawChange(kind.type, [key]);
  }

  #onWatchError(kind: KubeKind, err: unknown): void {
    this.#watchErrors.set(kind.type, describeError(err));
    this.#opts.onError?.(err, kind);
    this.#schedule();
  }

  /** Changes that alter what other keys show: a namespace's labels, a referencing gateway. */
  #afterRawChange(type: ResourceType, keys: readonly string[]): void {
    if (type === ResourceTypes.Namespace && this.#selectors.length > 0) {
      const names = new Set(keys.map((k) => k.slice(k.indexOf('/') + 1)));
      for (const [t, m] of this.#raw) {
        if (t === ResourceTypes.Namespace) continue;
        for (const [key, o] of m) if (names.has(o.metadata?.namespace ?? '')) this.#markDirty(t, key);
      }
    }
    if (SECRET_REFERRERS.has(type)) for (const key of this.#raw.get(ResourceTypes.Secret)?.keys() ?? []) this.#markDirty(ResourceTypes.Secret, key);
    this.#schedule();
  }

  #markDirty(type: ResourceType, key: string): void {
    if (this.#dirty.size === 0) this.#firstDirtyAt = Date.now();
    this.#dirty.add(`${type}\u0000${key}`);
  }

  #schedule(): void {
    if (this.closed || this.#ready === undefined) return;
    clearTimeout(this.#debounce);
    const waited = Date.now() - this.#firstDirtyAt;
    const delay = Math.max(0, Math.min(this.#opts.debounceMs ?? 100, (this.#opts.maxDelayMs ?? 1000) - waited));
    this.#debounce = setTimeout(() => this.#flush(), delay);
  }

  #namespaceSelected(namespace: string): boolean {
    if (this.#selectors.length === 0 || namespace === '') return true;
    const ns = this.#raw.get(ResourceTypes.Namespace)?.get(`/${namespace}`);
    if (ns === undefined) return false;
    const labels = ns.metadata?.labels ?? {};
    return this.#selectors.some((s) => labelSelectorMatches(s, labels));
  }

  /**
   * The specs of the visible objects of a type, from the raw objects: the validated resource's, or
   * for an object that does not validate (rejected; its last valid version is still served) the
   * object's own, read defensively below.
   */
  #current(type: ResourceType): { metadata: { namespace: string }; spec: unknown }[] {
    const kind = kubeKind(type);
    if (kind === undefined) return [];
    const out: { metadata: { namespace: string }; spec: unknown }[] = [];
    for (const [key, o] of this.#raw.get(type) ?? []) {
      const namespace = o.metadata?.namespace ?? '';
      if (!this.#namespaceSelected(namespace)) continue;
      out.push(this.#entry(kind, key)?.resource ?? { metadata: { namespace }, spec: o.spec ?? {} });
    }
    return out;
  }

  /** `namespace/name` of every Secret a gateway or DestinationRule references. */
  #referencedSecrets(): Set<string> {
    const out = new Set<string>();
    for (const gw of this.#current(ResourceTypes.Gateway)) {
      const spec = gw.spec as { listeners?: { tls?: { certificateRefs?: { kind?: string; group?: string; name: string; namespace?: string }[] } }[] };
      for (const l of spec.listeners ?? []) {
        for (const ref of l.tls?.certificateRefs ?? []) {
          if ((ref.kind ?? 'Secret') === 'Secret' && (ref.group ?? '') === '') out.add(`${ref.namespace ?? gw.metadata.namespace}/${ref.name}`);
        }
      }
    }
    for (const gw of this.#current(ResourceTypes.IstioGateway)) {
      const spec = gw.spec as { servers?: { tls?: { credentialName?: string } }[] };
      for (const s of spec.servers ?? []) if (s.tls?.credentialName) out.add(`${gw.metadata.namespace}/${s.tls.credentialName}`);
    }
    for (const dr of this.#current(ResourceTypes.DestinationRule)) {
      const spec = dr.spec as { trafficPolicy?: { tls?: { credentialName?: string } } };
      const cred = spec.trafficPolicy?.tls?.credentialName;
      if (cred) out.add(`${dr.metadata.namespace}/${cred}`);
    }
    return out;
  }

  #entry(kind: KubeKind, key: string): Entry | undefined {
    const obj = this.#raw.get(kind.type)?.get(key);
    if (obj === undefined) return undefined;
    const ck = `${kind.type}\u0000${key}`;
    const rv = obj.metadata?.resourceVersion;
    const cached = this.#converted.get(ck);
    if (cached !== undefined && cached.rv === rv && rv !== undefined) return cached;
    const { resource, diagnostics } = convertObject(kind, obj);
    const e: Entry = { rv, resource, diagnostics };
    this.#converted.set(ck, e);
    return e;
  }

  #flush(): void {
    clearTimeout(this.#debounce);
    this.#debounce = undefined;
    if (this.closed) return;
    const dirty = [...this.#dirty];
    this.#dirty.clear();
    const later: string[] = [];
    const mutations: TableMutation[] = [];
    const apply = (item: string, secrets?: Set<string>): void => {
      const sep = item.indexOf('\u0000');
      const type = item.slice(0, sep);
      const key = item.slice(sep + 1);
      const kind = kubeKind(type);
      if (kind === undefined) return;
      const slash = key.indexOf('/');
      const namespace = key.slice(0, slash);
      const name = key.slice(slash + 1);
      const tableNs = kind.namespaced ? namespace : '';
      const e = this.#entry(kind, key);
      const visible = e !== undefined && this.#namespaceSelected(namespace) && (secrets === undefined || secrets.has(key));
      if (!visible) {
        this.#converted.delete(item);
        mutations.push({ op: 'delete', type, namespace: tableNs, name });
        return;
      }
      // Invalid now: out of the store, reported as rejected (#report).
      if (e.resource !== undefined) mutations.push({ op: 'put', resource: e.resource });
      else mutations.push({ op: 'delete', type, namespace: tableNs, name });
    };
    for (const item of dirty) {
      if (item.startsWith(`${ResourceTypes.Secret}\u0000`)) later.push(item);
      else apply(item);
    }
    if (later.length > 0) {
      const secrets = this.#referencedSecrets();
      for (const item of later) apply(item, secrets);
    }
    const { diagnostics, rejected } = this.#report();
    this.commitReported(mutations, false, diagnostics, rejected);
  }

  #report(): { diagnostics: Diagnostic[]; rejected: Map<string, RejectedResource> } {
    const out: Diagnostic[] = [];
    const rejected = new Map<string, RejectedResource>();
    for (const [ck, e] of this.#converted) {
      const sep = ck.indexOf('\u0000');
      const type = ck.slice(0, sep);
      const key = ck.slice(sep + 1);
      out.push(...e.diagnostics);
      if (e.resource === undefined && e.diagnostics.some((d) => d.severity === 'error')) {
        const slash = key.indexOf('/');
        const kind = kubeKind(type)!;
        const namespace = kind.namespaced ? key.slice(0, slash) : '';
        const name = key.slice(slash + 1);
        const file = apiSourceName(kind, key.slice(0, slash), name);
        rejected.set(`${type}:${namespace}/${name}`, { type, kind: kind.kind, namespace, name, reason: `its current version (resourceVersion ${e.rv ?? '?'}) is invalid`, file, line: 1 });
      }
    }
    for (const [type, msg] of this.#watchErrors) {
      out.push({ severity: 'warning', code: KubeStoreCodes.WatchFailing, message: `reading ${type} from the API server keeps failing (retrying; what was read before stays in force): ${msg}` });
    }
    return { diagnostics: out, rejected };
  }
}
