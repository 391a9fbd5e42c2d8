/**
 * ResourceTable: the in-memory state every ConfigStore implementation shares — resources by key,
 * sorted per-type views, revision counting, and batched change delivery to listeners. A write is
 * a *batch*: the table records the state before the batch, applies every mutation, then diffs
 * before/after per touched key, so `add then delete` in one batch emits nothing and a resource
 * moved between sources emits one `updated` (or nothing), never a delete followed by an add.
 * It also owns the Kubernetes-like bookkeeping the Gateway API status needs: `creationTimestamp`
 * set when a resource is first seen and kept across updates, `generation` bumped on spec changes
 * (status `observedGeneration` is compared against it), `resourceVersion` = store revision of the
 * last change.
 */
import { isDeepStrictEqual } from 'node:util';
import { TrellisError } from '../../errors.ts';
import { resourceKey } from '../resource.ts';
import type { ObjectMeta, Resource, ResourceType } from '../resource.ts';
import type { StoreEvent, StoreListener } from './types.ts';

/** Options of a ResourceTable. */
export interface ResourceTableOptions {
  /**
   * Store resources exactly as given (no creationTimestamp/generation/resourceVersion
   * bookkeeping). Used by stores that relay another store's resources (composite).
   */
  readonly trustMetadata?: boolean;
  /** Clock for creationTimestamp; defaults to `Date.now`. */
  readonly now?: () => number;
  /** Called when a listener throws; the default emits a process warning. Other listeners still run. */
  readonly onListenerError?: (err: unknown) => void;
}

/** A pending mutation inside one batch. */
export type TableMutation =
  | { readonly op: 'put'; readonly resource: Resource }
  | { readonly op: 'delete'; readonly type: ResourceType; readonly namespace: string; readonly name: string };

/** RFC 3339 with second precision, as the Kubernetes API server writes creationTimestamp. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Same user-visible content (ignores store-managed metadata and source position). */
export function sameContent(a: Resource, b: Resource): boolean {
  return (
    a.type === b.type &&
    a.apiVersion === b.apiVersion &&
    a.kind === b.kind &&
    a.metadata.name === b.metadata.name &&
    a.metadata.namespace === b.metadata.namespace &&
    isDeepStrictEqual(a.metadata.labels, b.metadata.labels) &&
    isDeepStrictEqual(a.metadata.annotations, b.metadata.annotations) &&
    isDeepStrictEqual(a.spec, b.spec) &&
    isDeepStrictEqual(a.body, b.body)
  );
}

function compareResources(a: Resource, b: Resource): number {
  const an = a.metadata.namespace;
  const bn = b.metadata.namespace;
  if (an !== bn) return an < bn ? -1 : 1;
  const aa = a.metadata.name;
  const bb = b.metadata.name;
  return aa < bb ? -1 : aa > bb ? 1 : 0;
}

function compareEvents(a: StoreEvent, b: StoreEvent): number {
  if (a.resource.type !== b.resource.type) return a.resource.type < b.resource.type ? -1 : 1;
  return compareResources(a.resource, b.resource);
}

function defaultListenerError(err: unknown): void {
  process.emitWarning(err instanceof Error ? err : new Error(String(err)), { code: 'TRELLIS_STORE_LISTENER' });
}

/** The shared state + change-batching engine behind MemoryStore, FileStore and CompositeStore. */
export class ResourceTable {
  readonly #byType = new Map<ResourceType, Map<string, Resource>>();
  readonly #sorted = new Map<ResourceType, readonly Resource[]>();
  readonly #listeners = new Set<StoreListener>();
  readonly #queue: Array<{ events: readonly StoreEvent[]; revision: number }> = [];
  readonly #trust: boolean;
  readonly #now: () => number;
  readonly #onListenerError: (err: unknown) => void;
  #dispatching = false;
  #revision = 0;

  constructor(options: ResourceTableOptions = {}) {
    this.#trust = options.trustMetadata ?? false;
    this.#now = options.now ?? Date.now;
    this.#onListenerError = options.onListenerError ?? defaultListenerError;
  }

  /** Increases by one on every batch that changed something. */
  get revision(): number {
    return this.#revision;
  }

  /** Number of resources held. */
  get size(): number {
    let n = 0;
    for (const m of this.#byType.values()) n += m.size;
    return n;
  }

  list(type: ResourceType, namespace?: string): readonly Resource[] {
    let sorted = this.#sorted.get(type);
    if (sorted === undefined) {
      const m = this.#byType.get(type);
      if (m === undefined) return [];
      sorted = Object.freeze([...m.values()].sort(compareResources));
      this.#sorted.set(type, sorted);
    }
    if (namespace === undefined) return sorted;
    return sorted.filter((r) => r.metadata.namespace === namespace);
  }

  get(type: ResourceType, namespace: string, name: string): Resource | undefined {
    return this.#byType.get(type)?.get(`${type}:${namespace}/${name}`);
  }

  types(): readonly ResourceType[] {
    return [...this.#byType.keys()].sort();
  }

  /** Every resource, ordered by type, namespace, name. */
  all(): Resource[] {
    const out: Resource[] = [];
    for (const t of this.types()) out.push(...this.list(t));
    return out;
  }

  watch(listener: StoreListener): () => void {
    // Wrap so the same function subscribed twice gets two independent subscriptions.
    const wrapped: StoreListener = (events, revision) => listener(events, revision);
    this.#listeners.add(wrapped);
    return () => {
      this.#listeners.delete(wrapped);
    };
  }

  /** Drops every listener (store close). */
  clearListeners(): void {
    this.#listeners.clear();
  }

  /**
   * Applies mutations as one batch; emits one event batch (and bumps the revision) only when
   * the visible state changed. Returns the events emitted (empty when nothing changed).
   * With `replace`, every resource not put in this batch is deleted.
   */
  commit(mutations: Iterable<TableMutation>, replace = false): readonly StoreEvent[] {
    const before = new Map<string, Resource | undefined>();
    const after = new Map<string, Resource | undefined>();
    const remember = (key: string, type: ResourceType): void => {
      if (!before.has(key)) before.set(key, this.#byType.get(type)?.get(key));
    };
    if (replace) {
      for (const [, m] of this.#byType) {
        for (const [key, r] of m) {
          before.set(key, r);
          after.set(key, undefined);
        }
      }
    }
    for (const m of mutations) {
      if (m.op === 'put') {
        const r = m.resource;
        checkResource(r);
        const key = resourceKey(r);
        remember(key, r.type);
        after.set(key, r);
      } else {
        const key = `${m.type}:${m.namespace}/${m.name}`;
        remember(key, m.type);
        after.set(key, undefined);
      }
    }

    const revision = this.#revision + 1;
    const events: StoreEvent[] = [];
    for (const [key, next] of after) {
      const prev = before.get(key);
      if (next === undefined) {
        if (prev === undefined) continue;
        this.#remove(prev.type, key);
        events.push({ kind: 'deleted', resource: prev });
        continue;
      }
      if (prev !== undefined && sameContent(prev, next)) {
        // Same content: keep the stored object (and its bookkeeping) but follow the new source
        // position quietly, so diagnostics point at where the resource now lives.
        if (prev.source !== next.source && next.source !== undefined) {
          this.#set(key, Object.freeze({ ...prev, source: next.source }));
        }
        continue;
      }
      const stored = this.#trust ? Object.freeze(next) : this.#stamp(next, prev, revision);
      this.#set(key, stored);
      events.push({ kind: prev === undefined ? 'added' : 'updated', resource: stored });
    }
    if (events.length === 0) return events;
    events.sort(compareEvents);
    this.#revision = revision;
    const frozen = Object.freeze(events);
    this.#queue.push({ events: frozen, revision });
    this.#drain();
    return frozen;
  }

  #stamp(next: Resource, prev: Resource | undefined, revision: number): Resource {
    let generation: number;
    let creationTimestamp: string;
    if (prev === undefined) {
      generation = next.metadata.generation ?? 1;
      creationTimestamp = next.metadata.creationTimestamp ?? rfc3339(this.#now());
    } else {
      const prevGen = prev.metadata.generation ?? 1;
      const specChanged = !isDeepStrictEqual(prev.spec, next.spec) || !isDeepStrictEqual(prev.body, next.body);
      generation = specChanged ? prevGen + 1 : prevGen;
      creationTimestamp = prev.metadata.creationTimestamp ?? next.metadata.creationTimestamp ?? rfc3339(this.#now());
    }
    const metadata: ObjectMeta = Object.freeze({
      ...next.metadata,
      creationTimestamp,
      generation,
      resourceVersion: String(revision),
    });
    return Object.freeze({ ...next, metadata });
  }

  #set(key: string, r: Resource): void {
    let m = this.#byType.get(r.type);
    if (m === undefined) {
      m = new Map();
      this.#byType.set(r.type, m);
    }
    m.set(key, r);
    this.#sorted.delete(r.type);
  }

  #remove(type: ResourceType, key: string): void {
    const m = this.#byType.get(type);
    if (m === undefined) return;
    m.delete(key);
    if (m.size === 0) this.#byType.delete(type);
    this.#sorted.delete(type);
  }

  // Batches are delivered in revision order even when a listener writes to the store while
  // being notified (its batch is queued behind the one being delivered).
  #drain(): void {
    if (this.#dispatching) return;
    this.#dispatching = true;
    try {
      for (let item = this.#queue.shift(); item !== undefined; item = this.#queue.shift()) {
        for (const l of [...this.#listeners]) {
          if (!this.#listeners.has(l)) continue;
          try {
            l(item.events, item.revision);
          } catch (err) {
            try {
              this.#onListenerError(err);
            } catch {
              // An error handler that throws must not break delivery to others.
            }
          }
        }
      }
    } finally {
      this.#dispatching = false;
    }
  }
}

function checkResource(r: Resource): void {
  const m = r?.metadata;
  if (typeof r?.type !== 'string' || r.type === '' || typeof m?.name !== 'string' || m.name === '' || typeof m.namespace !== 'string') {
    throw new TrellisError('STORE_INVALID_RESOURCE', 'store: a resource needs a type, metadata.name and metadata.namespace', {
      context: { type: r?.type, name: m?.name, namespace: m?.namespace },
    });
  }
}
