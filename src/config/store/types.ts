/**
 * The ConfigStore seam: where typed, validated resources come from. Implementations: `memory`
 * (tests, programmatic use), `file` (a watched directory; the embedded default), later
 * `kubernetes`. Every implementation passes the shared suite in `common.case.test.ts`.
 */
import type { Diagnostic, Resource, ResourceType } from '../resource.ts';

/** One change, after validation. An `updated` event carries the new version of the resource. */
export interface StoreEvent {
  readonly kind: 'added' | 'updated' | 'deleted';
  readonly resource: Resource;
}

/** Called once per batch of changes (a debounced burst of file writes is one batch). */
export type StoreListener = (events: readonly StoreEvent[], revision: number) => void;

export interface ConfigStore {
  /** All resources of a type, optionally in one namespace; sorted by namespace then name. */
  list(type: ResourceType, namespace?: string): readonly Resource[];
  /** One resource, or undefined. */
  get(type: ResourceType, namespace: string, name: string): Resource | undefined;
  /** Every resource type currently holding at least one resource. */
  types(): readonly ResourceType[];
  /** Subscribes to change batches; returns the unsubscribe function. */
  watch(listener: StoreListener): () => void;
  /**
   * Diagnostics from the last load of every source (parse/schema errors of the current files),
   * including those of sources whose last-known-good version is still in force.
   */
  diagnostics(): readonly Diagnostic[];
  /** Increases by one on every batch of changes. */
  readonly revision: number;
  /** Resolves once the initial load is complete. */
  ready(): Promise<void>;
  /** Stops watching and releases resources. */
  close(): Promise<void>;
}
