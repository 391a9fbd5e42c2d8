/**
 * The live counts a cluster's circuit breaker guards (requests in flight, retries in flight), kept
 * either in the worker itself or in memory shared by every worker process of the proxy
 * (`--concurrency N`), so a limit holds for the whole proxy as Envoy's resource manager does across
 * its worker threads rather than once per worker.
 *
 * Shared layout: an Int32Array of `SlotCount` cluster slots x 2 kinds x `columns` workers. Each
 * worker writes only its own column (no lost updates between processes), and a limit check sums
 * the columns. The primary names a slot for every cluster (same name, same slot in every worker)
 * and, when a worker dies, zeroes its column: its requests died with it.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Which count: requests in flight, or retries in flight. */
export type CountKind = 0 | 1;
export const Requests: CountKind = 0;
export const Retries: CountKind = 1;
const Kinds = 2;

/** Cluster slots in the shared table; clusters beyond it keep per-worker counts. */
export const SlotCount = 16_384;

/** One cluster's counts. */
export interface BreakerCounts {
  /** The count over the whole proxy (every worker). */
  total(kind: CountKind): number;
  /** This worker's share (what its stats report: the primary sums worker stats). */
  own(kind: CountKind): number;
  add(kind: CountKind, delta: number): void;
}

/** Counts held by this process alone (one worker, or no shared memory). */
export class LocalCounts implements BreakerCounts {
  readonly #n = [0, 0];

  total(kind: CountKind): number {
    return this.#n[kind];
  }

  own(kind: CountKind): number {
    return this.#n[kind];
  }

  add(kind: CountKind, delta: number): void {
    this.#n[kind] = Math.max(0, this.#n[kind] + delta);
  }
}

/** Sum of `count` cells from `start`: a count over every worker's column. */
export function sumCells(cells: Int32Array, start: number, count: number): number {
  let sum = 0;
  for (let i = start, end = start + count; i < end; i++) sum += Atomics.load(cells, i);
  return sum;
}

class SharedCounts implements BreakerCounts {
  readonly #cells: Int32Array;
  readonly #base: number;
  readonly #columns: number;
  readonly #column: number;

  constructor(cells: Int32Array, slot: number, columns: number, column: number) {
    this.#cells = cells;
    this.#base = slot * Kinds * columns;
    this.#columns = columns;
    this.#column = column;
  }

  total(kind: CountKind): number {
    return sumCells(this.#cells, this.#base + kind * this.#columns, this.#columns);
  }

  own(kind: CountKind): number {
    return Atomics.load(this.#cells, this.#base + kind * this.#columns + this.#column);
  }

  add(kind: CountKind, delta: number): void {
    const i = this.#base + kind * this.#columns + this.#column;
    // Only this worker writes its column; the floor guards a release after the primary zeroed it.
    Atomics.store(this.#cells, i, Math.max(0, Atomics.load(this.#cells, i) + delta));
  }
}

/** The shared table as one process sees it. */
export class SharedCountTable {
  readonly cells: Int32Array;
  readonly columns: number;

  constructor(buffer: ArrayBuffer, columns: number) {
    this.cells = new Int32Array(buffer, 0, SlotCount * Kinds * columns);
    this.columns = columns;
  }

  static bytes(columns: number): number {
    return SlotCount * Kinds * columns * 4;
  }

  /** Counts of `slot` as written by worker `column`. */
  counts(slot: number, column: number): BreakerCounts {
    return new SharedCounts(this.cells, slot, this.columns, column);
  }

  /** Sum of every kind and worker of `slot` (0 = nothing in flight: the slot may be reused). */
  slotTotal(slot: number): number {
    return sumCells(this.cells, slot * Kinds * this.columns, Kinds * this.columns);
  }

  /** Forgets worker `column`'s counts in `slots` (the worker died with its requests). */
  zeroColumn(column: number, slots: Iterable<number>): void {
    for (const slot of slots) for (let k = 0; k < Kinds; k++) Atomics.store(this.cells, (slot * Kinds + k) * this.columns + column, 0);
  }
}

/**
 * The primary's map of cluster names to slots. A name keeps its slot while it exists; a removed
 * name's slot is reused only once nothing is counted in it any more (requests to a removed cluster
 * drain after it is gone).
 */
export class SlotAssigner {
  readonly #byName = new Map<string, number>();
  readonly #retired: number[] = [];
  #next = 0;
  readonly table: SharedCountTable;

  constructor(table: SharedCountTable) {
    this.table = table;
  }

  /** Slots for exactly `names` (the current CDS set); names beyond the table get none. */
  assign(names: Iterable<string>): [string, number][] {
    const want = new Set(names);
    for (const [name, slot] of this.#byName) {
      if (!want.has(name)) {
        this.#byName.delete(name);
        this.#retired.push(slot);
      }
    }
    for (const name of want) {
      if (this.#byName.has(name)) continue;
      const slot = this.#take();
      if (slot !== undefined) this.#byName.set(name, slot);
    }
    return [...this.#byName];
  }

  /** Every slot ever handed out and still possibly counted (for zeroing a dead worker's column). */
  inUse(): number[] {
    return [...this.#byName.values(), ...this.#retired];
  }

  #take(): number | undefined {
    if (this.#next < SlotCount) return this.#next++;
    const i = this.#retired.findIndex((s) => this.table.slotTotal(s) === 0);
    if (i < 0) return undefined;
    return this.#retired.splice(i, 1)[0];
  }
}

interface SharedMemoryAddon {
  createSharedFd(bytes: number): number;
  mapShared(fd: number, bytes: number): ArrayBuffer;
}

let addon: SharedMemoryAddon | undefined;
let addonError: string | undefined;

/** The shared-memory addon, or the reason it cannot be used here. */
export function sharedMemory(): SharedMemoryAddon | string {
  if (addon !== undefined) return addon;
  if (addonError !== undefined) return addonError;
  if (process.platform !== 'linux') return (addonError = 'shared memory between workers needs Linux (memfd)');
  try {
    const require = createRequire(import.meta.url);
    addon = require(fileURLToPath(new URL('../../../native/build/Release/shared_memory.node', import.meta.url))) as SharedMemoryAddon;
    return addon;
  } catch (err) {
    return (addonError = `the shared-memory addon is not built (${(err as Error).message.split('\n')[0]}); run \`npm rebuild\` or \`node scripts/build-native.ts\``);
  }
}
