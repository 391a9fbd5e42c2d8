/**
 * Outlier detection's consecutive-failure counters of one host (5xx, gateway failures,
 * local-origin failures), kept by this process or, with several worker processes, in the memory
 * they share (the breaker-counts.ts memfd, after the breaker table), so "5 consecutive 5xx" means
 * five for the proxy, as Envoy's detector counts across its worker threads.
 *
 * Shared layout: for each of the first `HostClusterSlots` cluster slots, `HostsPerCluster` hosts x
 * 3 kinds x `columns` workers of Int32. A host is addressed by its position in the cluster's host
 * list, which every worker builds in the same order from the same EDS/STATIC assignment (DNS and
 * ORIGINAL_DST clusters, whose hosts each worker finds on its own, keep local counters). A worker
 * adds to its own column; a count is the sum of the columns; a reset (a success, an ejection)
 * zeroes every column, racing harmlessly with a concurrent add (one count lost or kept).
 */

import { sumCells } from './breaker-counts.ts';

/** Which consecutive count. */
export type ConsecutiveKind = 0 | 1 | 2;
export const Consecutive5xx: ConsecutiveKind = 0;
export const ConsecutiveGateway: ConsecutiveKind = 1;
export const ConsecutiveLocal: ConsecutiveKind = 2;
const Kinds = 3;

/** Cluster slots (from the breaker slot numbering) that get shared host counters. */
export const HostClusterSlots = 4_096;
/** Hosts per cluster with shared counters; hosts beyond keep local ones. */
export const HostsPerCluster = 64;

/** The consecutive counts of one host. */
export interface ConsecutiveCounts {
  /** Adds one failure of `kind`; returns the count after it (whole proxy). */
  increment(kind: ConsecutiveKind): number;
  reset(kind: ConsecutiveKind): void;
}

/** Counts held by this process alone. */
export class LocalConsecutiveCounts implements ConsecutiveCounts {
  readonly #n = [0, 0, 0];

  increment(kind: ConsecutiveKind): number {
    return ++this.#n[kind];
  }

  reset(kind: ConsecutiveKind): void {
    this.#n[kind] = 0;
  }
}

class SharedConsecutiveCounts implements ConsecutiveCounts {
  readonly #cells: Int32Array;
  readonly #base: number;
  readonly #columns: number;
  readonly #column: number;

  constructor(cells: Int32Array, base: number, columns: number, column: number) {
    this.#cells = cells;
    this.#base = base;
    this.#columns = columns;
    this.#column = column;
  }

  increment(kind: ConsecutiveKind): number {
    const start = this.#base + kind * this.#columns;
    const own = start + this.#column;
    Atomics.store(this.#cells, own, Atomics.load(this.#cells, own) + 1);
    return sumCells(this.#cells, start, this.#columns);
  }

  reset(kind: ConsecutiveKind): void {
    const start = this.#base + kind * this.#columns;
    for (let i = start, end = start + this.#columns; i < end; i++) Atomics.store(this.#cells, i, 0);
  }
}

/** The shared host counters as one worker sees them. */
export class SharedHostCountTable {
  readonly #cells: Int32Array;
  readonly #columns: number;

  /** `buffer` from byte `offset`, `bytes(columns)` long. */
  constructor(buffer: ArrayBuffer, offset: number, columns: number) {
    this.#cells = new Int32Array(buffer, offset, HostClusterSlots * HostsPerCluster * Kinds * columns);
    this.#columns = columns;
  }

  static bytes(columns: number): number {
    return HostClusterSlots * HostsPerCluster * Kinds * columns * 4;
  }

  /** The counters of host `index` of the cluster in `slot` for worker `column`; undefined beyond the table. */
  counts(slot: number, index: number, column: number): ConsecutiveCounts | undefined {
    if (slot >= HostClusterSlots || index >= HostsPerCluster) return undefined;
    return new SharedConsecutiveCounts(this.#cells, (slot * HostsPerCluster + index) * Kinds * this.#columns, this.#columns, column);
  }

  /** Forgets worker `column`'s counts everywhere (the worker died). */
  zeroColumn(column: number): void {
    for (let i = column; i < this.#cells.length; i += this.#columns) this.#cells[i] = 0;
  }

  /** Zeroes every counter of the cluster in `slot` (its host list changed: positions mean other hosts now). */
  zeroCluster(slot: number): void {
    if (slot >= HostClusterSlots) return;
    const per = HostsPerCluster * Kinds * this.#columns;
    this.#cells.fill(0, slot * per, (slot + 1) * per);
  }
}

/** A cluster's shared host counters: by host position, and a reset for a new host list. */
export interface HostCountsProvider {
  counts(index: number): ConsecutiveCounts | undefined;
  hostsChanged(): void;
}
