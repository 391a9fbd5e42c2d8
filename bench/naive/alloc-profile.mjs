// `npm run bench -- --profile`: preloaded (`node --import`) into the Trellis proxies when
// TRELLIS_BENCH_ALLOC_PROFILE_DIR is set. Runs V8's sampling heap profiler over the whole life of
// the process, counting objects that GCs already collected too (Node's own --heap-prof keeps only
// what is still alive at exit, which says nothing about per-request garbage), and writes
// <dir>/<pid>.heapprofile on exit (open in Chrome DevTools, Memory tab). Plain JavaScript: a .ts
// preload would pull in Node's TypeScript stripper.
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.TRELLIS_BENCH_ALLOC_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.enable');
  session.post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  let written = false;
  const write = () => {
    if (written) return;
    written = true;
    // An in-process session answers synchronously, so this works inside an 'exit' handler.
    session.post('HeapProfiler.stopSampling', (err, res) => {
      if (err || !res) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `${process.pid}.heapprofile`), JSON.stringify(res.profile));
    });
  };
  process.on('exit', write);
}
