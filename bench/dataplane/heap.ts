/**
 * Allocation per proxied request for the Node.js paths (Trellis, naive-node): their processes run
 * with bench/naive/heap-probe.mjs preloaded, which keeps each process's running total of bytes
 * allocated on the V8 heap and of GC pauses and writes it to `<dir>/<pid>.json` on SIGUSR2. The
 * bench asks for the totals before and after a run and divides the difference by its requests.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { groupPids } from './procstat.ts';

/** Heap totals of a set of processes (sums over every pid that ever wrote a file there). */
export interface HeapTotals { allocatedBytes: number; gcs: number; gcMs: number }


/** Node flags and environment that make a Node.js proxy report its allocations into `dir`. */
export function heapProbe(root: string, dir: string): { nodeArgs: string[]; env: NodeJS.ProcessEnv } {
  mkdirSync(dir, { recursive: true });
  return {
    nodeArgs: ['--import', pathToFileURL(join(root, 'bench/naive/heap-probe.mjs')).href],
    env: { ...process.env, TRELLIS_BENCH_HEAP_DIR: dir },
  };
}

/**
 * Asks every live process of `pgids` for its totals (SIGUSR2), waits up to 1 s for each to write
 * them, and sums every probe file under `dirs` (exited workers keep their last totals). Undefined
 * when no probe has written.
 */
export async function heapTotals(pgids: readonly number[], dirs: readonly string[]): Promise<HeapTotals | undefined> {
  const asked = Date.now();
  const pids = groupPids(pgids);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGUSR2');
    } catch {
      // exited meanwhile
    }
  }
  const answered = (pid: number) => dirs.some((d) => {
    try {
      return (JSON.parse(readFileSync(join(d, `${pid}.json`), 'utf8')) as { at?: number }).at! >= asked;
    } catch {
      return false;
    }
  });
  for (let i = 0; i < 50 && !pids.every(answered); i++) await new Promise((r) => setTimeout(r, 20));
  return readHeapTotals(dirs);
}

/** Current totals over every probe file under `dirs` (undefined when no probe has written yet). */
export function readHeapTotals(dirs: readonly string[]): HeapTotals | undefined {
  let seen = false;
  const t: HeapTotals = { allocatedBytes: 0, gcs: 0, gcMs: 0 };
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      if (!name.endsWith('.json')) continue;
      try {
        const s = JSON.parse(readFileSync(join(dir, name), 'utf8')) as Partial<HeapTotals>;
        t.allocatedBytes += s.allocatedBytes ?? 0;
        t.gcs += s.gcs ?? 0;
        t.gcMs += s.gcMs ?? 0;
        seen = true;
      } catch {
        // being replaced right now (the probe writes a temp file and renames it): skip this one
      }
    }
  }
  return seen ? t : undefined;
}

/** After minus before, or undefined when either is missing. */
export function heapDelta(before: HeapTotals | undefined, after: HeapTotals | undefined): HeapTotals | undefined {
  if (before === undefined || after === undefined) return undefined;
  return { allocatedBytes: after.allocatedBytes - before.allocatedBytes, gcs: after.gcs - before.gcs, gcMs: after.gcMs - before.gcMs };
}
