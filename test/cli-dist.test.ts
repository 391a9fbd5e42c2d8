/**
 * The compiled CLI (scripts/build-dist.ts, run by `npm ci`): in a copy of the checkout, the build
 * writes dist/ with the parsed xDS protos; bin/trellis.js then runs dist/ and prints the same as
 * the sources do; an edited source file, or TRELLIS_FROM_SOURCE=1, makes it run the sources
 * again; without dist/ it runs the sources. Real processes, the project's own Node.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');

function run(cwd: string, args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const e: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined) e[k] = v;
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd, env: e, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

test('bin/trellis.js runs the compiled dist/ while it matches src/, the sources otherwise', { timeout: 180_000 }, async () => {
  const tree = mkdtempSync(join(tmpdir(), 'trellis-dist-'));
  try {
    for (const p of ['src', 'bin', 'scripts', 'examples', 'package.json', 'tsconfig.json', 'tsconfig.dist.json']) cpSync(join(root, p), join(tree, p), { recursive: true });
    symlinkSync(join(root, 'node_modules'), join(tree, 'node_modules'));
    const fromDist = { TRELLIS_FROM_SOURCE: undefined };

    assert.match((await run(tree, ['bin/trellis.js', '--version'], fromDist)).stdout, /TypeScript sources/, 'no dist/ yet: sources');
    const build = await run(tree, ['scripts/build-dist.ts']);
    assert.equal(build.code, 0, build.stderr);
    assert.match(build.stdout, /compiled src\/ to dist\//);
    assert.ok(existsSync(join(tree, 'dist/cli/main.js')) && existsSync(join(tree, 'dist/samples/grpc-echo.proto')));
    assert.equal(JSON.parse(readFileSync(join(tree, 'dist/xds/proto-root.json'), 'utf8')).key.includes('envoy/service/discovery/v3/ads.proto'), true);

    assert.match((await run(tree, ['bin/trellis.js', '--version'], fromDist)).stdout, /compiled dist\//);
    const compiled = await run(tree, ['bin/trellis.js', 'analyze', 'examples/'], fromDist);
    const sources = await run(tree, ['bin/trellis.js', 'analyze', 'examples/'], { TRELLIS_FROM_SOURCE: '1' });
    assert.equal(compiled.code, 0, compiled.stderr);
    assert.equal(compiled.stdout, sources.stdout);
    assert.equal((await run(tree, ['bin/trellis.js', '--help'], fromDist)).stdout, (await run(tree, ['bin/trellis.js', '--help'], { TRELLIS_FROM_SOURCE: '1' })).stdout);
    assert.match((await run(tree, ['bin/trellis.js', '--version'], { TRELLIS_FROM_SOURCE: '1' })).stdout, /TypeScript sources/);

    // An edit (a new mtime is enough) makes dist/ stale: the sources run until the next build.
    const later = new Date(Date.now() + 5000);
    utimesSync(join(tree, 'src/cli/status.ts'), later, later);
    assert.match((await run(tree, ['bin/trellis.js', '--version'], fromDist)).stdout, /TypeScript sources/);
    assert.equal((await run(tree, ['scripts/build-dist.ts'])).code, 0);
    assert.match((await run(tree, ['bin/trellis.js', '--version'], fromDist)).stdout, /compiled dist\//);
  } finally {
    rmSync(tree, { recursive: true, force: true });
  }
});
