// Loaded into the bench's Node.js proxies with `node --import` (plain JavaScript: a .ts preload
// would pull in Node's TypeScript stripper and its memory). When TRELLIS_BENCH_HEAP_DIR is set,
// it keeps a running total of bytes allocated on the V8 heap (live heap now - live heap at start
// + every byte a GC freed, from v8.GCProfiler) and of GC pauses, and on SIGUSR2 folds in what the
// running profiler saw, starts the next one and writes the totals to <dir>/<pid>.json, so the
// bench can take before/after deltas around a run, as it does for CPU from /proc. One profiler
// per signal, not per second: a stopped GCProfiler keeps its native buffers until a full GC
// collects its wrapper, and one a second grew a proxy at 1,000 rps by ~0.7 MB/s (91 -> 120 MB
// in 40 s) until a mark-compact, which the bench read as the proxy's RSS; with one per signal it
// stays flat (bench/README.md, "the heap probe's own memory"). Writing only when asked keeps file I/O out of the measured
// CPU (a 200 ms timer showed up as 2% of a proxy's profile). Cluster workers inherit the flag and
// the variable and answer for themselves. Buffers' backing stores live outside the V8 heap and
// are not counted.
import v8 from 'node:v8';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.TRELLIS_BENCH_HEAP_DIR;
if (dir) {
  const file = join(dir, `${process.pid}.json`);
  const start = v8.getHeapStatistics().used_heap_size;
  let freed = 0;
  let gcs = 0;
  let gcMicros = 0;
  let profiler = new v8.GCProfiler();
  profiler.start();
  const fold = () => {
    const r = profiler.stop();
    profiler = new v8.GCProfiler();
    profiler.start();
    for (const s of r?.statistics ?? []) {
      freed += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize);
      gcs++;
      gcMicros += s.cost;
    }
  };
  const write = () => {
    fold();
    const h = v8.getHeapStatistics();
    const sample = { pid: process.pid, at: Date.now(), allocatedBytes: h.used_heap_size - start + freed, gcs, gcMs: gcMicros / 1000, usedHeapBytes: h.used_heap_size, heapBytes: h.total_heap_size, externalBytes: h.external_memory, rssBytes: process.memoryUsage.rss() };
    try {
      writeFileSync(`${file}.tmp`, JSON.stringify(sample));
      renameSync(`${file}.tmp`, file);
    } catch {
      // the bench removed its work directory: nothing left to report to
    }
  };
  process.on('SIGUSR2', write);
  write();
}
