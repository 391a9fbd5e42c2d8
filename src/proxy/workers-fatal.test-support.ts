/**
 * For workers-fatal.test.ts: a process running the real WorkerPool with one worker whose code throws an uncaught
 * error shortly after it starts (what containment exists to prevent), so the test can see the
 * primary log the worker's error and restart it with backoff. Run by workers-fatal.test.ts; prints
 * the primary's log lines as JSON on stdout and exits after `CRASHES` deaths.
 */
import cluster from 'node:cluster';
import { WorkerPool, runWorker } from './workers.ts';

if (cluster.isWorker) {
  void runWorker({ log: () => {} });
  setTimeout(() => {
    throw new Error('boom from a worker');
  }, 50);
} else {
  const want = Number(process.env.CRASHES ?? 3);
  let deaths = 0;
  const pool = await WorkerPool.start(1, (level, msg, fields) => {
    process.stdout.write(`${JSON.stringify({ level, msg, ...fields })}\n`);
    if (msg.startsWith('proxy worker died') && ++deaths >= want) void pool.shutdown(100).then(() => process.exit(0));
  }).catch((err: Error) => {
    process.stdout.write(`${JSON.stringify({ level: 'error', msg: `start failed: ${err.message}` })}\n`);
    process.exit(1);
  });
}
