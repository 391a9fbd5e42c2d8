/**
 * CompositeStore: one ConfigStore view over several (e.g. the user's file store plus the memory
 * store where the local runtime registers endpoints). Sources are ordered: for a key defined by
 * more than one, the earliest source wins and a DUPLICATE_RESOURCE diagnostic names the others,
 * so a later source never silently hides or replaces an earlier one. Each child batch becomes at
 * most one composite batch; resources are relayed as the child holds them (its creationTimestamp
 * and generation), and the composite keeps its own revision.
 */
import { resourceKey } from '../resource.ts';
import type { Diagnostic, Resource, ResourceType } from '../resource.ts';
import { StoreDiagnosticCodes } from './file-state.ts';
import { ResourceTable } from './table.ts';
import { TableStore } from './table-store.ts';
import type { TableMutation } from './table.ts';
import type { ConfigStore, RejectedResource, StoreEvent, StoreListener } from './types.ts';

/** One source of a CompositeStore. */
export interface CompositeSource {
  readonly store: ConfigStore;
  /** Shown in duplicate diagnostics (e.g. `files`, `runtime`). */
  readonly name: string;
}

/** Options of a CompositeStore. */
export interface CompositeStoreOptions {
  /** Whether close() also closes the sources. Default true (the composite owns them). */
  readonly closeSources?: boolean;
  /** Called when a listener throws; default: process warning. */
  readonly onListenerError?: (err: unknown) => void;
}

/** Merges several stores; earlier sources win. */
export class CompositeStore extends TableStore implements ConfigStore {
  readonly #sources: readonly CompositeSource[];
  readonly #unsubscribe: Array<() => void> = [];
  readonly #closeSources: boolean;
  readonly #ready: Promise<void>;

  /** Sources as stores (named `source0`, `source1`, ...) or named sources, highest priority first. */
  constructor(sources: ReadonlyArray<ConfigStore | CompositeSource>, options: CompositeStoreOptions = {}) {
    super(new ResourceTable({ trustMetadata: true, onListenerError: options.onListenerError }));
    this.#sources = sources.map((s, i) => ('store' in s && 'name' in s ? s : { store: s as ConfigStore, name: `source${i}` }));
    this.#closeSources = options.closeSources ?? true;
    for (const { store } of this.#sources) {
      this.#unsubscribe.push(store.watch((events) => this.#onChildBatch(events)));
      this.#unsubscribe.push(store.watchDiagnostics(() => this.#republish()));
    }
    this.#resync();
    this.#ready = Promise.all(this.#sources.map((s) => s.store.ready())).then(() => {
      this.#resync();
    });
    this.#ready.catch(() => {});
  }

  /**
   * Publishes the sources' diagnostics in source order, then one DUPLICATE_RESOURCE per shadowed
   * definition; and the keys some source rejects that no source defines validly.
   */
  #republish(mutations?: Iterable<TableMutation>, replace = false): void {
    const out: Diagnostic[] = [];
    const rejected = new Map<string, RejectedResource>();
    for (const { store } of this.#sources) {
      out.push(...store.diagnostics());
      for (const [key, r] of store.rejected()) if (!rejected.has(key)) rejected.set(key, r);
    }
    if (mutations !== undefined) {
      // The sources have changed already: what they list after this batch wins over their rejections.
      this.commitReported(mutations, replace, this.#duplicates(out, rejected), rejected);
    } else {
      this.report(this.#duplicates(out, rejected), rejected);
    }
  }

  /** Appends one DUPLICATE_RESOURCE per shadowed definition to `out`; drops keys a source lists from `rejected`. */
  #duplicates(out: Diagnostic[], rejected: Map<string, RejectedResource>): Diagnostic[] {
    const owner = new Map<string, string>();
    for (const { store, name } of this.#sources) {
      for (const type of store.types()) {
        for (const r of store.list(type)) {
          const key = resourceKey(r);
          rejected.delete(key);
          const first = owner.get(key);
          if (first === undefined) {
            owner.set(key, name);
            continue;
          }
          out.push({
            severity: 'warning',
            code: StoreDiagnosticCodes.DuplicateResource,
            message: `${r.kind} ${r.metadata.namespace}/${r.metadata.name} is defined in both ${first} and ${name}; using ${first}`,
            resource: { kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name },
            file: r.source?.file,
            line: r.source?.line,
          });
        }
      }
    }
    return out;
  }

  /** Resolves once every source is ready; rejects with the first source's failure. */
  ready(): Promise<void> {
    return this.#ready;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.#unsubscribe.splice(0)) off();
    this.clearListeners();
    if (this.#closeSources) await Promise.all(this.#sources.map((s) => s.store.close()));
  }

  #winner(type: ResourceType, namespace: string, name: string): Resource | undefined {
    for (const { store } of this.#sources) {
      const r = store.get(type, namespace, name);
      if (r !== undefined) return r;
    }
    return undefined;
  }

  #onChildBatch(events: readonly StoreEvent[]): void {
    if (this.closed) return;
    const mutations: TableMutation[] = [];
    for (const { resource: r } of events) {
      const w = this.#winner(r.type, r.metadata.namespace, r.metadata.name);
      mutations.push(w === undefined ? { op: 'delete', type: r.type, namespace: r.metadata.namespace, name: r.metadata.name } : { op: 'put', resource: w });
    }
    this.#republish(mutations, false);
  }

  #resync(): void {
    if (this.closed) return;
    const seen = new Set<string>();
    const mutations: TableMutation[] = [];
    for (const { store } of this.#sources) {
      for (const type of store.types()) {
        for (const r of store.list(type)) {
          const key = resourceKey(r);
          if (seen.has(key)) continue;
          seen.add(key);
          mutations.push({ op: 'put', resource: r });
        }
      }
    }
    this.#republish(mutations, true);
  }
}
