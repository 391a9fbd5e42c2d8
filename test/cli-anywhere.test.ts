/**
 * Running `trellis` from any directory, the two ways the README documents: installed with
 * `npm install -g --ignore-scripts .` (here into a temp prefix) and a symlink to bin/trellis.js on
 * PATH. Both must work from another directory with the machine's own (possibly older) `node`
 * first on PATH: bin/trellis.js then re-runs itself with the checkout's Node 24, passing a SIGTERM
 * on to it. (`npx trellis` outside the checkout asks the npm registry for a package of that name,
 * which is why the README does not suggest it.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTool } from './support/tools.ts';
import { skipBecause, skipUnlessTools } from './support/skip.ts';

const root = join(import.meta.dirname, '..');

function run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { ...opts, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

/** PATH as on a machine where only the system's node is installed (no node_modules/.bin). */
function plainPath(...first: string[]): string {
  return [...first, ...(process.env.PATH ?? '').split(':').filter((d) => d !== '' && !d.includes('node_modules'))].join(':');
}

/** The machine's own `node` (not the project's), when there is one. */
const systemNode = plainPath().split(':').map((d) => join(d, 'node')).find((f) => existsSync(f));

test('installed with npm install -g, or linked onto PATH, trellis runs from any directory', { skip: skipUnlessTools('npm'), timeout: 180_000 }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'trellis-anywhere-'));
  try {
    const prefix = join(tmp, 'prefix');
    execFileSync(findTool('npm')!, ['install', '-g', '--ignore-scripts', '--offline', '--no-audit', '--no-fund', '--prefix', prefix, root], { cwd: tmp, stdio: 'pipe', timeout: 120_000 });
    symlinkSync(join(root, 'bin/trellis.js'), join(tmp, 'trellis'));
    for (const dir of [join(prefix, 'bin'), tmp]) {
      const env: NodeJS.ProcessEnv = { ...process.env, PATH: plainPath(dir), TRELLIS_FROM_SOURCE: '1' };
      delete env.npm_config_prefix;
      const v = await run('trellis', ['--version'], { cwd: tmp, env });
      assert.equal(v.code, 0, v.stderr);
      assert.match(v.stdout, /^trellis 0\.1\.0 \(node 24\./);
      const a = await run('trellis', ['analyze', join(root, 'examples/demo/mesh')], { cwd: tmp, env });
      assert.equal(a.code, 0, a.stdout + a.stderr);
      assert.match(a.stdout, /no problems/);
      const h = await run('trellis', ['explain', 'workload.spec.readinessPath'], { cwd: tmp, env });
      assert.match(h.stdout, /FIELD: {4}spec\.readinessPath <string>/);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('started by an older node, bin/trellis.js re-runs itself with Node 24 and passes SIGTERM on', { skip: systemNode === undefined || Number(execFileSync(systemNode, ['-p', 'process.versions.node.split(".")[0]']).toString()) >= 24 ? skipBecause('tool:node-older-than-24', 'no system node older than 24 on PATH') : false, timeout: 60_000 }, async () => {
  const v = await run(systemNode!, [join(root, 'bin/trellis.js'), '--version'], { cwd: tmpdir(), env: process.env });
  assert.match(v.stdout, /\(node 24\./);
  // A long-running verb stops when the outer (old-node) process is sent SIGTERM.
  const child = spawn(systemNode!, [join(root, 'bin/trellis.js'), 'sample', 'echo', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on [\d.]+:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', () => reject(new Error(`exited early: ${out}`)));
  });
  assert.ok(port > 0);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});
