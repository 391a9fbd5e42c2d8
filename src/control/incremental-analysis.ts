/**
 * The semantic analysis (src/config/analyze), run incrementally for the config gate: after a
 * change, only the resources the change touches and the resources whose findings may depend on
 * them (analysis-reach.ts) are analysed again, on an input of just what their analysis reads; the
 * findings of everything else are kept from before. The analyzers themselves are unchanged: they
 * are called on a smaller input, and only the findings about the re-analysed resources are taken
 * from it. When a change reaches too far (a root-namespace or cluster-scoped resource, a type the
 * reach model does not know, or an input over half the mesh) the whole mesh is analysed, as the
 * first time. The result always equals a full analysis (incremental-analysis.test.ts checks it on
 * real corpora edited at random).
 */
import type { Diagnostic, Resource, ResourceType } from '../config/resource.ts';
import { resourceKey } from '../config/resource.ts';
import { analyzeConfig, compareDiagnostics, type AnalyzeOptions } from '../config/analyze/index.ts';
import { Everything, reachOf, type Reach } from './analysis-reach.ts';

/** What the last update did, for logs, benchmarks and tests. */
export interface AnalysisStep {
  readonly mode: 'none' | 'incremental' | 'full';
  /** Resources added, changed or removed. */
  readonly changed: number;
  /** Resources whose findings were recomputed. */
  readonly subjects: number;
  /** Resources given to the analyzers. */
  readonly input: number;
}

/** Kinds share a name across groups (Istio's and the Gateway API's Gateway): findings name resources by kind. */
function refOf(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}
function refKeyOf(r: Resource): string {
  return refOf(r.kind, r.metadata.namespace, r.metadata.name);
}

function addTo(index: Map<string, Set<string>>, facet: string, key: string): void {
  let s = index.get(facet);
  if (s === undefined) index.set(facet, (s = new Set()));
  s.add(key);
}
function removeFrom(index: Map<string, Set<string>>, facet: string, key: string): void {
  const s = index.get(facet);
  if (s === undefined) return;
  s.delete(key);
  if (s.size === 0) index.delete(facet);
}

/** One mesh's analysis, kept up to date across changes. */
export class IncrementalAnalysis {
  readonly #opts: AnalyzeOptions;
  readonly #rootNamespace: string;
  /** Above this share of the mesh in one input, a full analysis is as cheap. */
  readonly #fullShare: number;
  #lists = new Map<ResourceType, readonly Resource[]>();
  readonly #byKey = new Map<string, Resource>();
  readonly #keysByRef = new Map<string, Set<string>>();
  readonly #reach = new WeakMap<Resource, Reach>();
  readonly #readers = new Map<string, Set<string>>();
  readonly #providers = new Map<string, Set<string>>();
  /** Findings by the resource they name (kind/namespace/name), and those that name none. */
  #byRef = new Map<string, Diagnostic[]>();
  #unattributed: Diagnostic[] = [];
  #output: readonly Diagnostic[] = [];
  #started = false;
  #last: AnalysisStep = { mode: 'none', changed: 0, subjects: 0, input: 0 };

  constructor(opts: AnalyzeOptions & { fullShare?: number } = {}) {
    this.#opts = opts;
    this.#rootNamespace = opts.rootNamespace ?? 'istio-system';
    this.#fullShare = opts.fullShare ?? 0.5;
  }

  /** What the last update did. */
  get last(): AnalysisStep {
    return this.#last;
  }

  /**
   * The findings about `lists` (every resource, by type, each list in the order stores list them),
   * sorted as `analyzeConfig` sorts them. Unchanged lists are recognised by identity.
   */
  update(lists: ReadonlyMap<ResourceType, readonly Resource[]>): readonly Diagnostic[] {
    const changes = this.#diff(lists);
    this.#lists = new Map(lists);
    if (!this.#started) {
      this.#started = true;
      this.#full(changes.length);
      return this.#output;
    }
    if (changes.length === 0) {
      this.#last = { mode: 'none', changed: 0, subjects: 0, input: 0 };
      return this.#output;
    }
    const subjects = new Set<string>();
    const gone = new Set<string>();
    let everything = false;
    for (const { key, before, after } of changes) {
      for (const r of [before, after]) {
        if (r === undefined) continue;
        for (const f of this.#reachOf(r).provides) for (const k of this.#readers.get(f) ?? []) subjects.add(k);
        if (this.#reachOf(r).reads.includes(Everything)) everything = true;
      }
      if (after !== undefined) subjects.add(key);
      else gone.add(refKeyOf(before!));
    }
    for (const k of this.#readers.get(Everything) ?? []) subjects.add(k);
    // Findings name resources by kind: a resource's namesake of another group is analysed with it.
    const refs = new Set<string>(gone);
    for (const k of subjects) refs.add(refKeyOf(this.#byKey.get(k)!));
    for (const ref of refs) for (const k of this.#keysByRef.get(ref) ?? []) subjects.add(k);
    if (everything || [...subjects].some((k) => this.#reachOf(this.#byKey.get(k)!).reads.includes(Everything))) {
      this.#full(changes.length);
      return this.#output;
    }
    const input = new Set<string>(subjects);
    for (const k of subjects) {
      for (const f of this.#reachOf(this.#byKey.get(k)!).reads) for (const p of this.#providers.get(f) ?? []) input.add(p);
    }
    if (input.size > this.#fullShare * this.#byKey.size) {
      this.#full(changes.length);
      return this.#output;
    }
    const resources = this.#ordered(input);
    const found = analyzeConfig(resources, this.#opts);
    for (const ref of refs) this.#byRef.delete(ref);
    for (const d of found) {
      if (d.resource === undefined) continue;
      const ref = refOf(d.resource.kind, d.resource.namespace, d.resource.name);
      if (!refs.has(ref)) continue; // about a resource given only as context: its findings stand
      this.#keep(ref, d);
    }
    this.#publish();
    this.#last = { mode: 'incremental', changed: changes.length, subjects: subjects.size, input: resources.length };
    return this.#output;
  }

  #reachOf(r: Resource): Reach {
    let reach = this.#reach.get(r);
    if (reach === undefined) this.#reach.set(r, (reach = reachOf(r, this.#rootNamespace)));
    return reach;
  }

  /** What changed since the last update, with the indexes brought up to date. */
  #diff(lists: ReadonlyMap<ResourceType, readonly Resource[]>): { key: string; before?: Resource; after?: Resource }[] {
    const changes: { key: string; before?: Resource; after?: Resource }[] = [];
    for (const type of new Set([...this.#lists.keys(), ...lists.keys()])) {
      const prev = this.#lists.get(type) ?? [];
      const next = lists.get(type) ?? [];
      if (prev === next) continue;
      const seen = new Set<string>();
      for (const r of next) {
        const key = resourceKey(r);
        seen.add(key);
        const before = this.#byKey.get(key);
        if (before !== r) changes.push({ key, before, after: r });
      }
      for (const r of prev) {
        const key = resourceKey(r);
        if (!seen.has(key) && this.#byKey.get(key) === r) changes.push({ key, before: r });
      }
    }
    for (const { key, before, after } of changes) {
      if (before !== undefined) this.#unindex(key, before);
      if (after !== undefined) this.#index(key, after);
    }
    return changes;
  }

  #index(key: string, r: Resource): void {
    this.#byKey.set(key, r);
    addTo(this.#keysByRef, refKeyOf(r), key);
    const reach = this.#reachOf(r);
    for (const f of reach.reads) addTo(this.#readers, f, key);
    for (const f of reach.provides) addTo(this.#providers, f, key);
  }

  #unindex(key: string, r: Resource): void {
    this.#byKey.delete(key);
    removeFrom(this.#keysByRef, refKeyOf(r), key);
    const reach = this.#reachOf(r);
    for (const f of reach.reads) removeFrom(this.#readers, f, key);
    for (const f of reach.provides) removeFrom(this.#providers, f, key);
  }

  /**
   * The input resources in the order a full analysis sees them, plus one resource of every type
   * the input lacks: analyzers that say nothing when the mesh has no resource of some kind at all
   * must see that it has some.
   */
  #ordered(keys: ReadonlySet<string>): Resource[] {
    const types = new Set<string>();
    for (const k of keys) types.add(k.slice(0, k.indexOf(':')));
    const out: Resource[] = [];
    for (const [type, list] of this.#lists) {
      if (list.length === 0) continue;
      if (!types.has(type)) {
        out.push(list[0]);
        continue;
      }
      for (const r of list) if (keys.has(resourceKey(r))) out.push(r);
    }
    return out;
  }

  #full(changed: number): void {
    const all: Resource[] = [];
    for (const list of this.#lists.values()) all.push(...list);
    this.#byRef = new Map();
    this.#unattributed = [];
    for (const d of analyzeConfig(all, this.#opts)) {
      if (d.resource === undefined) this.#unattributed.push(d);
      else this.#keep(refOf(d.resource.kind, d.resource.namespace, d.resource.name), d);
    }
    this.#publish();
    this.#last = { mode: 'full', changed, subjects: all.length, input: all.length };
  }

  #keep(ref: string, d: Diagnostic): void {
    const l = this.#byRef.get(ref);
    if (l === undefined) this.#byRef.set(ref, [d]);
    else l.push(d);
  }

  #publish(): void {
    const out = [...this.#unattributed];
    for (const l of this.#byRef.values()) out.push(...l);
    this.#output = Object.freeze(out.sort(compareDiagnostics));
  }
}
