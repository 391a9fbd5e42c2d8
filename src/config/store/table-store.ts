/**
 * The read and watch half every ConfigStore shares: a `ResourceTable` holds the current
 * resources and delivers change batches; subclasses (memory, file, composite) decide how the
 * table is written and what their diagnostics are.
 */
import type { Diagnostic, Resource, ResourceType } from '../resource.ts';
import type { ResourceTable } from './table.ts';
import type { ConfigStore, StoreListener } from './types.ts';

export abstract class TableStore implements ConfigStore {
  protected readonly table: ResourceTable;
  /** Set by close(): no new watchers, and writes are refused by the subclass. */
  protected closed = false;

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

  abstract diagnostics(): readonly Diagnostic[];
  abstract ready(): Promise<void>;
  abstract close(): Promise<void>;
}
