/**
 * Builds the two tiny native addons with node-gyp during `npm ci`: native/original_dst.c
 * (SO_ORIGINAL_DST for transparent capture) and native/shared_memory.c (memory shared by proxy
 * worker processes, for circuit breakers counted across workers). Neither is essential to run
 * Trellis, so on a user's machine a failed build warns and exits 0: transparent capture is then
 * refused with the reason, and workers fall back to per-worker breaker counts (logged). Under
 * CI=true it fails `npm ci` instead: the tests of both would otherwise only skip. node-gyp comes
 * with npm (npm_config_node_gyp); the N-API build works with any Node headers.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isCI } from './ci.ts';

const dir = fileURLToPath(new URL('../native/', import.meta.url));
const gyp = process.env.npm_config_node_gyp;
const cmd = gyp && existsSync(gyp) ? [process.execPath, gyp] : ['npx', '--yes', 'node-gyp'];
const result = spawnSync(cmd[0], [...cmd.slice(1), 'rebuild'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
const built = ['original_dst', 'shared_memory'].map((n) => `${dir}build/Release/${n}.node`);
if (result.status === 0 && built.every((f) => existsSync(f))) {
  process.stdout.write('trellis: built native/build/Release/original_dst.node (SO_ORIGINAL_DST for transparent capture) and shared_memory.node (circuit breakers shared by proxy workers)\n');
} else {
  const why = (result.stderr || result.stdout || result.error?.message || '').split('\n').slice(-12).join('\n');
  const missing = built.filter((f) => !existsSync(f)).join(', ');
  if (isCI()) {
    process.stderr.write(`trellis: error: CI=true and the native addons did not build (node-gyp exit ${result.status}; missing: ${missing || 'none'}); needs a C compiler, make and python3:\n${why}\n`);
    process.exit(1);
  }
  process.stderr.write(
    'trellis: warning: could not build the native addons; transparent capture will be unavailable and proxy workers count circuit breakers each on their own.\n' + why + '\n',
  );
}
