/**
 * Builds the one native addon (native/original_dst.c: SO_ORIGINAL_DST for transparent capture)
 * with node-gyp during `npm ci`. Only transparent capture needs it, so a failed build warns and
 * exits 0: everything else works, and `trellis up --capture transparent` says what is missing.
 * node-gyp comes with npm (npm_config_node_gyp); the N-API build works with any Node headers.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../native/', import.meta.url));
const gyp = process.env.npm_config_node_gyp;
const cmd = gyp && existsSync(gyp) ? [process.execPath, gyp] : ['npx', '--yes', 'node-gyp'];
const result = spawnSync(cmd[0], [...cmd.slice(1), 'rebuild'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
if (result.status === 0 && existsSync(`${dir}build/Release/original_dst.node`)) {
  process.stdout.write('trellis: built native/build/Release/original_dst.node (SO_ORIGINAL_DST for transparent capture)\n');
} else {
  process.stderr.write(
    'trellis: warning: could not build the SO_ORIGINAL_DST addon; transparent capture will be unavailable.\n' +
      (result.stderr || result.error?.message || '').split('\n').slice(-8).join('\n') + '\n',
  );
}
