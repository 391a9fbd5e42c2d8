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

/**
 * A resource its source still names but holds no valid definition of right now: the schema
 * rejected its current definition, or a file that held it cannot be parsed or read. It is not in
 * `list()`; the control plane's config gate keeps serving its last good version (the one
 * last-known-good, src/control/config-gate.ts) and says so with `reason`.
 */
export interface RejectedResource {
  readonly type: ResourceType;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  /** Why, naming the place: "the definition at a.yaml:12 is invalid". */
  readonly reason: string;
  readonly file?: string;
  readonly line?: number;
}

export interface ConfigStore {
  /** All resources of a type, optionally in one namespace; sorted by namespace then name. */
  list(type: ResourceType, namespace?: string): readonly Resource[];
  /** One resource, or undefined. */
  get(type: ResourceType, namespace: string, name: string): Resource | undefined;
  /** Every resource type currently holding at least one resource. */
  types(): readonly ResourceType[];
  /** Subscribes to change batches; returns the unsubscribe function. */
  watch(listener: StoreListener): () => void;
  /** Diagnostics from the last load of every source (parse/schema errors of the current files). */
  diagnostics(): readonly Diagnostic[];
  /** Resources whose current definition was rejected, by resourceKey (see RejectedResource). */
  rejected(): ReadonlyMap<string, RejectedResource>;
  /**
   * Subscribes to changes of `diagnostics()` and `rejected()`, which a load can change without
   * changing any resource (a file that stops parsing). Called before the change batch the same
   * load commits, if any; returns the unsubscribe function.
   */
  watchDiagnostics(listener: () => void): () => void;
  /** Increases by one on every batch of changes. */
  readonly revision: number;
  /** Resolves once the initial load is complete. */
  ready(): Promise<void>;
  /** Stops watching and releases resources. */
  close(): Promise<void>;
}
