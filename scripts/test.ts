/**
 * `npm test`: type-checks the whole project, then runs every `*.test.ts` under src/, test/ and
 * scripts/ with node's test runner. Unit tests sit next to code; end-to-end tests live under test/.
 * Extra arguments are passed to `node --test` (e.g. `npm test -- --test-name-pattern=store`, or
 * files to run just those). TRELLIS_SKIP_TYPECHECK=1 skips the type check for a quick local loop.
 *
 * Two rounds: everything else four files at a time, then the end-to-end files that each run a
 * whole mesh or a load generator two at a time. Four of those at once on a 2-core CI machine
 * (load average 12) starved sidecars past their 15 s readiness wait and the zero-loss test's load
 * generator down to 200 rps.
 *
 * Every Node process of the run (test files, and the trellis processes they start, which inherit
 * the environment) shares an on-disk compile cache (NODE_COMPILE_CACHE): starting a `trellis`
 * process costs ~0.68 s of CPU compiling its TypeScript modules, ~0.27 s with the cache warm, and
 * the suite starts hundreds of them on 2 cores.
 *
 * Skips: tests skip through test/support/skip.ts with a reason id. The run ends with every skip
 * listed and a summary line counting them by reason (scripts/test-summary.ts). With CI=true a skip
 * whose reason is not on test/skip-allowlist.json, or a missing `../shared`, fails the run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isCI } from './ci.ts';
import { loadAllowlist, parseReport, silentFiles, summarize } from './test-summary.ts';
import { sharedDir } from '../test/support/skip.ts';
import { envoyVersion, pinnedVersions } from '../test/support/tools.ts';

const root = new URL('..', import.meta.url).pathname;
const started = Date.now();
const ci = isCI();

function findTests(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const full = join(dir, name);
    if (statSync(full).isDirectory()) findTests(full, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, full));
  }
  return out;
}

// Read first, so a broken allowlist fails before minutes of tests.
const allowlist = loadAllowlist(join(root, 'test/skip-allowlist.json'));
if (ci && !existsSync(sharedDir)) {
  process.stderr.write(`npm test: CI=true and the shared test data is missing: ${sharedDir} (conformance corpus, Istio samples, analyzer cases); check it out next to the repository\n`);
  process.exit(1);
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

const reportDir = mkdtempSync(join(tmpdir(), 'trellis-test-report-'));
let round = 0;

/** Runs one `node --test` round; returns its exit status and the reporter's lines. */
function runTests(files: readonly string[], concurrency: number): { status: number; report: string } {
  const report = join(reportDir, `round-${++round}.jsonl`);
  const reporters = ['--test-reporter=spec', '--test-reporter-destination=stdout', `--test-reporter=${join(root, 'scripts/test-reporter.ts')}`, `--test-reporter-destination=${report}`];
  // Tests run the TypeScript sources, also where they spawn bin/trellis.js (which would otherwise
  // prefer a current dist/); test/cli-dist.test.ts covers the compiled CLI.
  const env = { ...process.env, NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE ?? join(root, 'node_modules/.cache/node-compile-cache'), TRELLIS_FROM_SOURCE: process.env.TRELLIS_FROM_SOURCE ?? '1' };
  const watchdog = ['--import', pathToFileURL(join(root, 'scripts/test-watchdog.ts')).href];
  const result = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=300000', ...watchdog, ...reporters, ...extra, ...files], { cwd: root, stdio: 'inherit', env });
  return { status: result.status ?? 1, report: existsSync(report) ? readFileSync(report, 'utf8') : '' };
}

const extra = process.argv.slice(2);
const named = extra.some((a) => !a.startsWith('-'));
const all = named ? [] : [...findTests(join(root, 'src'), []), ...findTests(join(root, 'test'), []), ...findTests(join(root, 'scripts'), [])];
const rounds = named
  ? [runTests([], 4)] // files named on the command line
  : [runTests(all.filter((f) => !HEAVY.test(f)), 4), runTests(all.filter((f) => HEAVY.test(f)), 2)];
rmSync(reportDir, { recursive: true, force: true });

const reported = rounds.flatMap((r) => parseReport(r.report));
// A test file that ran no test must not hide behind a green run.
const silent = silentFiles(all, reported);
const summary = summarize(reported, allowlist, ci, Date.now() - started);
const envoy = envoyVersion();
// The Envoy the differential and stock-Envoy tests ran against (they skip, as tool:envoy, unless it is the pinned one).
process.stdout.write(`\nenvoy ${envoy === undefined ? 'not installed' : `${envoy.version ?? '(unknown version)'} at ${envoy.path}`}; pinned ${pinnedVersions().ENVOY_VERSION} (scripts/tool-versions.sh)`);
process.stdout.write(summary.text);
const failedRound = rounds.find((r) => r.status !== 0);
if (failedRound !== undefined) process.exit(failedRound.status);
if (silent.length > 0) {
  process.stderr.write(`npm test: ${silent.length} test file(s) reported no test, so they did not run: ${silent.join(', ')}\n`);
  process.exit(1);
}
if (summary.unexpected.length > 0) {
  process.stderr.write(`npm test: ${summary.unexpected.length} test(s) did not run for a reason not on test/skip-allowlist.json (CI=true): ${[...new Set(summary.unexpected.map((s) => s.reason))].join(', ')}\n`);
  process.exit(1);
}
