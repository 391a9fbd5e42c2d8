/**
 * The read and watch half every ConfigStore shares: a `ResourceTable` holds the current
 * resources and delivers change batches, and `report` publishes the diagnostics and rejected
 * resources, telling diagnostics listeners when they changed; subclasses (memory, file,
 * composite, kubernetes) decide how the table is written and what they report.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Diagnostic, Resource, ResourceType } from '../resource.ts';
import type { ResourceTable, TableMutation } from './table.ts';
import type { ConfigStore, RejectedResource, StoreListener } from './types.ts';

const noneRejected: ReadonlyMap<string, RejectedResource> = new Map();

export abstract class TableStore implements ConfigStore {
  protected readonly table: ResourceTable;
  /** Set by close(): no new watchers, and writes are refused by the subclass. */
  protected closed = false;
  #diagnostics: readonly Diagnostic[] = Object.freeze([]);
  #rejected: ReadonlyMap<string, RejectedResource> = noneRejected;
  readonly #diagnosticsListeners = new Set<() => void>();

  protected constructor(table: ResourceTable) {
    this.table = table;
  }

  get revision(): number {
    return this.table.revision;
  }

  list(type: ResourceType, namespace?: string): readonly Resource[] {
    return this.table.list(type, namespace);
  }

  get(type: ResourceType, namespace: string, name: string): Resource | undefined {
    return this.table.get(type, namespace, name);
  }

  types(): readonly ResourceType[] {
    return this.table.types();
  }

  /** Every resource, ordered by type, namespace, name. */
  all(): Resource[] {
    return this.table.all();
  }

  watch(listener: StoreListener): () => void {
    if (this.closed) return () => {};
    return this.table.watch(listener);
  }

  diagnostics(): readonly Diagnostic[] {
    return this.#diagnostics;
  }

  rejected(): ReadonlyMap<string, RejectedResource> {
    return this.#rejected;
  }

  watchDiagnostics(listener: () => void): () => void {
    if (this.closed) return () => {};
    const wrapped = (): void => listener();
    this.#diagnosticsListeners.add(wrapped);
    return () => void this.#diagnosticsListeners.delete(wrapped);
  }

  /**
   * Commits one load: its resources as one batch, with what it reports. A rejection is announced
   * before its resource leaves the store and withdrawn only after a valid version arrived, so at no
   * moment is a resource neither listed nor rejected while its source still names it.
   */
  protected commitReported(mutations: Iterable<TableMutation>, replace: boolean, diagnostics: readonly Diagnostic[], rejected: ReadonlyMap<string, RejectedResource>): void {
    this.report(diagnostics, new Map([...this.#rejected, ...rejected]));
    this.table.commit(mutations, replace);
    this.report(diagnostics, rejected);
  }

  /** Publishes what the store reports; listeners hear of it only when it changed. */
  protected report(diagnostics: readonly Diagnostic[], rejected: ReadonlyMap<string, RejectedResource> = noneRejected): void {
    if (isDeepStrictEqual(diagnostics, this.#diagnostics) && isDeepStrictEqual(rejected, this.#rejected)) return;
    this.#diagnostics = Object.freeze([...diagnostics]);
    this.#rejected = rejected.size === 0 ? noneRejected : new Map(rejected);
    for (const l of [...this.#diagnosticsListeners]) {
      try {
        l();
      } catch (err) {
        process.emitWarning(err instanceof Error ? err : new Error(String(err)), { code: 'TRELLIS_STORE_LISTENER' });
      }
    }
  }

  /** Drops every listener (store close). */
  protected clearListeners(): void {
    this.table.clearListeners();
    this.#diagnosticsListeners.clear();
  }

  abstract ready(): Promise<void>;
  abstract close(): Promise<void>;
}
