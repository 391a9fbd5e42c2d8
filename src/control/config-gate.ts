/**
 * The config gate: what proxies are served, decided after every store change — the one
 * last-known-good. A resource is served in its current version unless that version is rejected,
 * by the store (its schema does not validate, or its file cannot be parsed: it is then missing
 * from `store.list()` and named in `store.rejected()`) or by the semantic analysis (an error that
 * blocks serving, see `blocksServing`). Then its last good version stays in force
 * (LAST_KNOWN_GOOD), or, if it never had one, it is left out (NOT_SERVED). A resource that did
 * not change but became erroneous because of another resource keeps being served as it is (there
 * is no better version of it to serve). The analysis sees the store's resources plus the last good
 * versions of the rejected ones, as proxies will, and is incremental (incremental-analysis.ts).
 * Every decision is a diagnostic, so operators see both the error and what is served.
 */
import type { Diagnostic, Resource, ResourceType } from '../config/resource.ts';
import { resourceKey } from '../config/resource.ts';
import type { ConfigStore, RejectedResource } from '../config/store/types.ts';
import { sameContent } from '../config/store/table.ts';
import type { SnapshotSource } from './snapshot/snapshot.ts';
import { IncrementalAnalysis, type AnalysisStep } from './incremental-analysis.ts';

export interface GateResult {
  /** Resources whose served version changed (old and new versions), for push scoping. */
  readonly changed: readonly Resource[];
  /** Diagnostics of the current config: the store's, the analysis', and the gate's decisions. */
  readonly diagnostics: readonly Diagnostic[];
}

/** Options of a ConfigGate. */
export interface ConfigGateOptions {
  /** Cluster DNS suffix for the analysis; default `cluster.local`. */
  readonly domainSuffix?: string;
  /** The mesh's root namespace for the analysis; default `istio-system`. */
  readonly rootNamespace?: string;
  /** Semantic analysis (default true); without it only the store's rejections are gated. */
  readonly analyze?: boolean;
}

/**
 * Gateway API route problems that the spec expresses in route status, not by dropping the route:
 * a backendRef to a missing Service or one not permitted by a ReferenceGrant leaves the route
 * attached (ResolvedRefs=False) and requests to that backend answer 500 (Gateway API
 * HTTPBackendRef; conformance HTTPRouteInvalidNonExistentBackendRef, HTTPRouteInvalidReferenceGrant).
 */
const StatusOnlyRouteCodes: ReadonlySet<string> = new Set(['ROUTE_BACKEND_NOT_FOUND', 'REF_NOT_PERMITTED']);
const GatewayApiRouteKinds: ReadonlySet<string> = new Set(['HTTPRoute', 'GRPCRoute', 'TCPRoute', 'TLSRoute']);

/**
 * Errors reported without withholding the resource. Conflicts between resources (two
 * VirtualServices for one host, two Gateways on one port and host, two Sidecars for one
 * workload): each side is reported, and withholding every side would serve less than serving them
 * (then the oldest wins, as in Istio). Gateway credentials: SDS resolves a credential per
 * gateway proxy, in that proxy's namespace, and a missing or broken Secret fails that server's TLS
 * only (as in Istio, and as Gateway API's ResolvedRefs=False listener status); the analysis cannot
 * see where a running control plane's gateway proxies live, and withholding the whole Gateway would
 * take its other servers down too.
 */
const ReportOnlyCodes: ReadonlySet<string> = new Set(['VS_HOST_CONFLICT', 'GATEWAY_CONFLICT', 'SELECTOR_CONFLICT', 'NAMESPACE_DEFAULT_CONFLICT', 'SECRET_NOT_FOUND', 'SECRET_INVALID']);

/** True when an error diagnostic keeps its resource from being served. */
export function blocksServing(d: Diagnostic): boolean {
  if (d.severity !== 'error' || d.resource === undefined || ReportOnlyCodes.has(d.code)) return false;
  return !(GatewayApiRouteKinds.has(d.resource.kind) && StatusOnlyRouteCodes.has(d.code));
}

function refKey(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

function describe(r: Resource): string {
  return `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`;
}

function refOf(r: Resource): Diagnostic['resource'] {
  return { kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name };
}

function byNamespaceName(a: Resource, b: Resource): number {
  const x = `${a.metadata.namespace}/${a.metadata.name}`;
  const y = `${b.metadata.namespace}/${b.metadata.name}`;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The served view of a store: a SnapshotSource, brought up to date by `update()`. */
export class ConfigGate implements SnapshotSource {
  readonly #store: ConfigStore;
  readonly #analysis: IncrementalAnalysis | undefined;
  /** The last version of each resource that was served because it was good. */
  readonly #lastGood = new Map<string, Resource>();
  #served = new Map<ResourceType, readonly Resource[]>();
  #servedByKey = new Map<string, Resource>();
  #diagnostics: readonly Diagnostic[] = [];
  #revision = 0;

  constructor(store: ConfigStore, opts: ConfigGateOptions = {}) {
    this.#store = store;
    this.#analysis = opts.analyze === false ? undefined : new IncrementalAnalysis({ domainSuffix: opts.domainSuffix ?? 'cluster.local', ...(opts.rootNamespace !== undefined ? { rootNamespace: opts.rootNamespace } : {}) });
  }

  /** Increases by one whenever what is served changes. */
  get revision(): number {
    return this.#revision;
  }

  list(type: ResourceType, namespace?: string): readonly Resource[] {
    const all = this.#served.get(type) ?? [];
    return namespace === undefined ? all : all.filter((r) => r.metadata.namespace === namespace);
  }

  types(): readonly ResourceType[] {
    return [...this.#served.keys()];
  }

  /** Diagnostics as of the last update. */
  diagnostics(): readonly Diagnostic[] {
    return this.#diagnostics;
  }

  /** What the last update's analysis did (undefined without analysis). */
  get analysisStep(): AnalysisStep | undefined {
    return this.#analysis?.last;
  }

  /** Recomputes what is served from the store's current resources and rejections. */
  update(): GateResult {
    const rejected = this.#store.rejected();
    const candidates = this.#candidates(rejected);
    const analysis = this.#analysis?.update(candidates) ?? [];
    const blocked = new Set<string>();
    for (const d of analysis) if (blocksServing(d) && d.resource) blocked.add(refKey(d.resource.kind, d.resource.namespace, d.resource.name));

    const decisions: Diagnostic[] = [];
    const present = new Set<string>();
    const served = new Map<ResourceType, readonly Resource[]>();
    for (const [type, list] of candidates) {
      const out: Resource[] = [];
      for (const r of list) {
        const key = resourceKey(r);
        present.add(key);
        const held = rejected.get(key);
        if (held !== undefined && this.#store.get(r.type, r.metadata.namespace, r.metadata.name) === undefined) {
          out.push(r); // the last good version itself
          decisions.push(this.#decision(r, 'LAST_KNOWN_GOOD', `${describe(r)}: ${held.reason}; still serving its last valid version`, held));
          continue;
        }
        if (!blocked.has(refKey(r.kind, r.metadata.namespace, r.metadata.name))) {
          // A store re-reading a file hands out new objects for unchanged resources (with their new
          // line numbers): proxies keep the one they have.
          const prev = this.#servedByKey.get(key);
          const serve = prev !== undefined && prev !== r && sameContent(prev, r) ? prev : r;
          out.push(serve);
          this.#lastGood.set(key, serve);
          continue;
        }
        const good = this.#lastGood.get(key);
        if (good !== undefined && good !== r && JSON.stringify(good.spec) !== JSON.stringify(r.spec)) {
          out.push(good);
          decisions.push(this.#decision(r, 'LAST_KNOWN_GOOD', `${describe(r)} has errors; its previous valid version is still served`));
        } else if (good !== undefined) {
          out.push(r);
        } else {
          decisions.push(this.#decision(r, 'NOT_SERVED', `${describe(r)} has errors and no previous valid version; it is not sent to proxies`));
        }
      }
      const before = this.#served.get(type);
      served.set(type, before !== undefined && sameList(before, out) ? before : Object.freeze(out));
    }
    // Deleted (and not rejected) resources are forgotten.
    for (const key of [...this.#lastGood.keys()]) if (!present.has(key)) this.#lastGood.delete(key);

    const changed = this.#changes(served);
    if (changed.length > 0 || this.#revision === 0) this.#revision++;
    this.#served = new Map([...served].filter(([, l]) => l.length > 0));
    this.#servedByKey = new Map();
    for (const list of this.#served.values()) for (const r of list) this.#servedByKey.set(resourceKey(r), r);
    this.#diagnostics = Object.freeze([...this.#store.diagnostics(), ...analysis, ...decisions]);
    return { changed, diagnostics: this.#diagnostics };
  }

  /**
   * The store's lists (identical objects while unchanged), with the last good version of each
   * rejected resource put back where the store would list it.
   */
  #candidates(rejected: ReadonlyMap<string, RejectedResource>): Map<ResourceType, readonly Resource[]> {
    const lists = new Map<ResourceType, readonly Resource[]>();
    for (const type of this.#store.types()) lists.set(type, this.#store.list(type));
    for (const [key, rej] of rejected) {
      const good = this.#lastGood.get(key);
      if (good === undefined || this.#store.get(rej.type, rej.namespace, rej.name) !== undefined) continue;
      lists.set(rej.type, [...(lists.get(rej.type) ?? []), good].sort(byNamespaceName));
    }
    return lists;
  }

  #decision(r: Resource, code: 'LAST_KNOWN_GOOD' | 'NOT_SERVED', message: string, at?: RejectedResource): Diagnostic {
    const file = at?.file ?? r.source?.file;
    const line = at !== undefined ? at.line : r.source?.line;
    return { severity: 'warning', code, message, resource: refOf(r), ...(file !== undefined ? { file } : {}), ...(line !== undefined ? { line } : {}) };
  }

  /** Served versions that differ from before (old and new), by identity. */
  #changes(next: ReadonlyMap<ResourceType, readonly Resource[]>): Resource[] {
    const changed: Resource[] = [];
    for (const type of new Set([...this.#served.keys(), ...next.keys()])) {
      const before = this.#served.get(type) ?? [];
      const after = next.get(type) ?? [];
      if (before === after) continue;
      const old = new Map(before.map((r) => [resourceKey(r), r]));
      for (const r of after) {
        const key = resourceKey(r);
        const was = old.get(key);
        if (was !== r) {
          changed.push(r);
          if (was !== undefined) changed.push(was); // what proxies had matters as much as what they get
        }
        old.delete(key);
      }
      changed.push(...old.values());
    }
    return changed;
  }
}

function sameList(a: readonly Resource[], b: readonly Resource[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
