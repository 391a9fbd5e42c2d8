/**
 * `npm test`: type-checks the whole project, then runs every `*.test.ts` under src/ and test/ with
 * node's test runner. Unit tests sit next to code; end-to-end tests live under test/.
 * Extra arguments are passed to `node --test` (e.g. `npm test -- --test-name-pattern=store`).
 * TRELLIS_SKIP_TYPECHECK=1 skips the type check for a quick local loop.
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

const extra = process.argv.slice(2);
const files = extra.some((a) => !a.startsWith('-')) ? [] : [...findTests(join(root, 'src'), []), ...findTests(join(root, 'test'), [])];
const result = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=4', '--test-timeout=300000', ...extra, ...files],
  { cwd: root, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
