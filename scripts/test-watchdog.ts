/**
 * Preloaded into every test file's process by `npm test` (scripts/test.ts passes `--import`): once
 * a file's tests have all ended, its process gets a bounded time to finish cleaning up and exit.
 * A test that fails before its cleanup can leave a server or child process open, which keeps the
 * file's process alive; the runner then waits for it forever and a failing run becomes a hung one
 * (CI's time limit, with no summary). The exit keeps the exit code the test runner set.
 */
import { after } from 'node:test';

/** How long a file may take to exit after its last test (its own `after` hooks run in this time). */
export const ExitGraceMs = Number(process.env.TRELLIS_TEST_EXIT_GRACE_MS ?? '') || 60_000;

// Only in a test file's own process (the runner sets NODE_TEST_CONTEXT there), not in the runner.
if (process.env.NODE_TEST_CONTEXT !== undefined) {
  after(() => {
    setTimeout(() => {
      process.stderr.write(`npm test: still running ${ExitGraceMs / 1000} s after its last test ended (an open server, socket or child process?): exiting\n`);
      process.exit();
    }, ExitGraceMs).unref();
  });
}
