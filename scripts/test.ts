/**
 * `npm test`: type-checks the whole project, then runs every `*.test.ts` under src/ and test/ with
 * node's test runner. Unit tests sit next to code; end-to-end tests live under test/.
 * Extra arguments are passed to `node --test` (e.g. `npm test -- --test-name-pattern=store`).
 * TRELLIS_SKIP_TYPECHECK=1 skips the type check for a quick local loop.
 *
 * Two rounds: everything else four files at a time, then the end-to-end files that each run a
 * whole mesh or a load generator two at a time. Four of those at once on a 2-core CI machine
 * (load average 12) starved sidecars past their 15 s readiness wait and the zero-loss test's load
 * generator down to 200 rps.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

function findTests(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const full = join(dir, name);
    if (statSync(full).isDirectory()) findTests(full, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, full));
  }
  return out;
}

if (process.env.TRELLIS_SKIP_TYPECHECK !== '1') {
  const tsc = spawnSync(join(root, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
  if (tsc.status !== 0) {
    process.stderr.write('type check failed\n');
    process.exit(tsc.status ?? 1);
  }
}

/** End-to-end files that run a whole mesh, many processes or a load generator. */
const HEAVY = /^test\/(up-[^/]*|proxy-zero-loss|conformance|bench-quick|proxy-workers)\.test\.ts$/;

function runTests(files: readonly string[], concurrency: number): number {
  const result = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=300000', ...extra, ...files], { cwd: root, stdio: 'inherit' });
  return result.status ?? 1;
}

const extra = process.argv.slice(2);
if (extra.some((a) => !a.startsWith('-'))) process.exit(runTests([], 4)); // files named on the command line
const all = [...findTests(join(root, 'src'), []), ...findTests(join(root, 'test'), [])];
const light = runTests(all.filter((f) => !HEAVY.test(f)), 4);
const heavy = runTests(all.filter((f) => HEAVY.test(f)), 2);
process.exit(light !== 0 ? light : heavy);
