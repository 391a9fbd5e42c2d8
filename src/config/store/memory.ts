/**
 * MemoryStore: a ConfigStore whose content is written by code — tests, programmatic use, and the
 * local runtime registering the endpoints of workloads it starts. Every write method call is one
 * batch: one event delivery, one revision bump, and nothing at all when the content is unchanged.
 * Resources are expected to be validated already (from `config/load.ts` or built in code); the
 * store only checks they carry an identity.
 */
import { TrellisError } from '../../errors.ts';
import type { Diagnostic, Resource, ResourceType } from '../resource.ts';
import { ResourceTable } from './table.ts';
import { TableStore } from './table-store.ts';
import type { ResourceTableOptions, TableMutation } from './table.ts';
import type { ConfigStore, StoreEvent, StoreListener } from './types.ts';

/** Options of a MemoryStore. */
export interface MemoryStoreOptions extends Pick<ResourceTableOptions, 'now' | 'onListenerError'> {
  /** Initial content, loaded as the first batch (revision 1) when non-empty. */
  readonly resources?: readonly Resource[];
}

/**
 * A writable in-memory ConfigStore.
 * @example
 * const store = new MemoryStore();
 * store.apply(resources);            // one batch
 * store.delete(ResourceTypes.VirtualService, 'default', 'reviews');
 */
export class MemoryStore extends TableStore implements ConfigStore {

  constructor(options: MemoryStoreOptions = {}) {
    super(new ResourceTable({ now: options.now, onListenerError: options.onListenerError }));
    if (options.resources !== undefined && options.resources.length > 0) this.apply(options.resources);
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.clearListeners();
  }

  /** Adds or updates resources (last one wins for a repeated key); returns the events emitted. */
  apply(resources: Resource | readonly Resource[]): readonly StoreEvent[] {
    this.#checkOpen();
    const list = Array.isArray(resources) ? (resources as readonly Resource[]) : [resources as Resource];
    return this.table.commit(list.map((resource): TableMutation => ({ op: 'put', resource })));
  }

  /** Deletes one resource; returns whether it existed. */
  delete(type: ResourceType, namespace: string, name: string): boolean {
    this.#checkOpen();
    return this.table.commit([{ op: 'delete', type, namespace, name }]).length > 0;
  }

  /** Makes the content exactly `resources`, in one batch; returns the events emitted. */
  replaceAll(resources: readonly Resource[]): readonly StoreEvent[] {
    this.#checkOpen();
    return this.table.commit(
      resources.map((resource): TableMutation => ({ op: 'put', resource })),
      true,
    );
  }

  #checkOpen(): void {
    if (this.closed) throw new TrellisError('STORE_CLOSED', 'memory store: write after close');
  }
}
