import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ReportLine } from './test-reporter.ts';
import { loadAllowlist, parseReport, silentFiles, summarize } from './test-summary.ts';
import { parseSkip, skipBecause } from '../test/support/skip.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

const lines: ReportLine[] = [
  { kind: 'test', outcome: 'pass', type: 'test', file: 'src/a.test.ts', name: 'a' },
  { kind: 'test', outcome: 'pass', type: 'suite', file: 'src/a.test.ts', name: 'suite a' },
  { kind: 'test', outcome: 'fail', type: 'test', file: 'src/b.test.ts', name: 'b' },
  { kind: 'test', outcome: 'skip', type: 'test', file: 'test/x.test.ts', line: 3, name: 'x', message: skipBecause('tool:envoy', 'needs envoy') },
  { kind: 'test', outcome: 'skip', type: 'suite', file: 'test/y.test.ts', name: 'y', message: skipBecause('root', 'needs root (netns)') },
  { kind: 'test', outcome: 'skip', type: 'test', file: 'test/z.test.ts', name: 'z', message: 'no reason id' },
  { kind: 'test', outcome: 'todo', type: 'test', file: 'test/z.test.ts', name: 'later', message: 'one day' },
  { kind: 'summary', file: 'test/c.test.ts', text: 'conformance: 72 passed, 0 failed, 0 skipped' },
];

test('reason ids parse out of skip messages; a bare skip is untagged', () => {
  assert.deepEqual(parseSkip(skipBecause('tool:fortio,wrk', 'needs fortio, wrk')), { reason: 'tool:fortio,wrk', message: 'needs fortio, wrk' });
  assert.deepEqual(parseSkip('[shared-data] needs ../shared'), { reason: 'shared-data', message: 'needs ../shared' });
  assert.deepEqual(parseSkip('needs root'), { reason: 'untagged', message: 'needs root' });
  assert.deepEqual(parseSkip(true), { reason: 'untagged', message: '(no message)' });
});

test('without CI every skip is listed and allowed; the summary counts them by reason', () => {
  const s = summarize(lines, [], false, 125_000);
  assert.equal(s.passed, 1);
  assert.equal(s.failed, 1);
  assert.equal(s.skips.length, 4);
  assert.deepEqual(s.unexpected, []);
  assert.match(s.text, /\[tool:envoy\] test\/x\.test\.ts:3: x: needs envoy\n/);
  assert.match(s.text, /\[root\] test\/y\.test\.ts: suite y: needs root \(netns\)\n/);
  assert.match(s.text, /\nconformance: 72 passed, 0 failed, 0 skipped\n/);
  assert.match(s.text, /npm test: 1 passed, 1 failed, 4 skipped \(root 1, todo 1, tool:envoy 1, untagged 1\), skips allowed \(CI not set\), 2m05s\n$/);
});

test('with CI only allowlisted skips pass: by reason, by reason prefix, narrowed to a test', () => {
  const allow = [
    { reason: 'tool:*', why: 'w' },
    { reason: 'root', test: 'test/other.test.ts', why: 'w' },
  ];
  const s = summarize(lines, allow, true, 1000);
  assert.deepEqual(s.unexpected.map((u) => u.reason), ['root', 'untagged', 'todo']);
  assert.match(s.text, /\[tool:envoy\] .* \(allowed in CI\)/);
  assert.match(s.text, /\[root\] .* UNEXPECTED: not on test\/skip-allowlist\.json/);
  assert.match(s.text, /3 unexpected \(CI=true\)/);
});

test('an allowlist entry must say why', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-allow-'));
  try {
    const file = join(dir, 'a.json');
    writeFileSync(file, JSON.stringify({ allowed: [{ reason: 'root', why: ' ' }] }));
    assert.throws(() => loadAllowlist(file), /allowed\[0\] \(root\) must say why/);
    writeFileSync(file, JSON.stringify({ allowed: [{ why: 'x' }] }));
    assert.throws(() => loadAllowlist(file), /allowed\[0\]\.reason/);
    assert.ok(Array.isArray(loadAllowlist(join(root, 'test/skip-allowlist.json'))), 'the repository allowlist loads');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a test file is credited with the tests it runs from a support module; a file with none is silent', () => {
  const { NODE_TEST_CONTEXT: _, ...outer } = process.env;
  const dir = mkdtempSync(join(tmpdir(), 'trellis-report-'));
  try {
    const report = join(dir, 'report.jsonl');
    const files = ['scripts/testdata/shared-suite.fixture.ts', 'scripts/testdata/empty.fixture.ts'];
    const r = spawnSync(process.execPath, ['--test', '--test-reporter=./scripts/test-reporter.ts', `--test-reporter-destination=${report}`, ...files], {
      cwd: root, encoding: 'utf8', timeout: 60_000, env: outer,
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const lines = parseReport(readFileSync(report, 'utf8'));
    assert.ok(lines.some((l) => l.kind === 'test' && l.file === 'scripts/testdata/shared-suite.ts'), 'the test itself names the module that defines it');
    // A file with no test may report no summary at all: either way it is silent.
    assert.deepEqual(lines.flatMap((l) => (l.kind === 'file' && l.tests > 0 ? [[l.file, l.tests]] : [])), [['scripts/testdata/shared-suite.fixture.ts', 1]]);
    assert.deepEqual(silentFiles(files, lines), ['scripts/testdata/empty.fixture.ts']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function npmTest(env: Record<string, string>, fixture = 'scripts/testdata/skips.fixture.ts') {
  // NODE_TEST_CONTEXT would make the inner `node --test` report to this runner instead of printing.
  const { NODE_TEST_CONTEXT: _, ...outer } = process.env;
  const r = spawnSync(process.execPath, ['scripts/test.ts', fixture], {
    cwd: root, encoding: 'utf8', timeout: 120_000, env: { ...outer, TRELLIS_SKIP_TYPECHECK: '1', ...env },
  });
  // A run killed by the timeout has no exit code: `code` is null then.
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('npm test with CI=true fails on a skip off the allowlist, naming the reason', () => {
  const r = npmTest({ CI: 'true' });
  assert.equal(r.code, 1, r.out + r.err);
  assert.match(r.out, /\nfixture: headline line\n/);
  assert.match(r.out, /npm test: 1 passed, 0 failed, 2 skipped \(tool:no-such-tool 1, untagged 1\), 2 unexpected \(CI=true\)/);
  assert.match(r.err, /2 test\(s\) did not run for a reason not on test\/skip-allowlist\.json \(CI=true\): tool:no-such-tool, untagged/);
});

test('npm test without CI passes and lists what did not run', () => {
  const r = npmTest({ CI: '' });
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /did not run \(2\):\n {2}\[tool:no-such-tool\] scripts\/testdata\/skips\.fixture\.ts:\d+: needs a tool nobody has: needs no-such-tool on PATH\n {2}\[untagged\] scripts\/testdata\/skips\.fixture\.ts:\d+: suite a suite skipped without a reason id: just because\n/);
  assert.match(r.out, /skips allowed \(CI not set\)/);
});

test('a test file that fails and leaves a server open does not hang the run: it exits after the grace time, failed', () => {
  const started = Date.now();
  const r = npmTest({ CI: '', TRELLIS_TEST_EXIT_GRACE_MS: '1000' }, 'scripts/testdata/leaks-a-server.fixture.ts');
  assert.equal(r.code, 1, `the run ended by itself, failed (after ${Date.now() - started} ms): ${r.out}${r.err}`);
  assert.match(r.out, /npm test: 0 passed, 1 failed/);
});
