/**
 * Builds the two tiny native addons with node-gyp during `npm ci`: native/original_dst.c
 * (SO_ORIGINAL_DST for transparent capture) and native/shared_memory.c (memory shared by proxy
 * worker processes, for circuit breakers counted across workers). Neither is essential, so a failed
 * build warns and exits 0: transparent capture is then refused with the reason, and workers fall
 * back to per-worker breaker counts (logged). node-gyp comes with npm (npm_config_node_gyp); the
 * N-API build works with any Node headers.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../native/', import.meta.url));
const gyp = process.env.npm_config_node_gyp;
const cmd = gyp && existsSync(gyp) ? [process.execPath, gyp] : ['npx', '--yes', 'node-gyp'];
const result = spawnSync(cmd[0], [...cmd.slice(1), 'rebuild'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
if (result.status === 0 && existsSync(`${dir}build/Release/original_dst.node`) && existsSync(`${dir}build/Release/shared_memory.node`)) {
  process.stdout.write('trellis: built native/build/Release/original_dst.node (SO_ORIGINAL_DST for transparent capture) and shared_memory.node (circuit breakers shared by proxy workers)\n');
} else {
  process.stderr.write(
    'trellis: warning: could not build the native addons; transparent capture will be unavailable and proxy workers count circuit breakers each on their own.\n' +
      (result.stderr || result.error?.message || '').split('\n').slice(-8).join('\n') + '\n',
  );
}
