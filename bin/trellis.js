#!/usr/bin/env node
// The `trellis` command. It needs Node.js 24, which `npm ci` installs into node_modules (the
// dependency node@24). Run through npm (`npx trellis`), Node 24 is first on PATH; run as an
// installed command (`npm link`, `npm install -g .`, a symlink to this file) the shebang may find
// an older system `node`, so then this shim re-runs itself with the project's own Node 24.
// It runs the JavaScript compiled into dist/ when that matches src/, else the TypeScript sources
// (bin/entry.js), with V8's compile cache on, so repeated starts skip parsing and compiling.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  const pinned = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (process.env.TRELLIS_REEXEC === '1' || !existsSync(pinned)) {
    process.stderr.write(
      `trellis: needs Node.js 24 or newer (this is ${process.version}) and found none in ${pinned}; ` +
        'run `npm ci` in the Trellis checkout first.\n',
    );
    process.exit(2);
  }
  const { spawn } = await import('node:child_process');
  const child = spawn(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, TRELLIS_REEXEC: '1' },
  });
  // Ctrl-C and a closing terminal signal the whole foreground process group, child included:
  // forwarding those too would deliver them twice. A SIGTERM aimed at this pid is passed on.
  for (const sig of ['SIGINT', 'SIGHUP', 'SIGQUIT']) process.on(sig, () => {});
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('error', (err) => {
    process.stderr.write(`trellis: cannot run ${pinned}: ${err.message}\n`);
    process.exit(2);
  });
  child.on('exit', (code, signal) => {
    if (signal !== null) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 1);
  });
} else {
  // Node flags a command needs (bin/node-flags.js): this may replace the process with one that has them.
  (await import('./node-flags.js')).execWithNodeFlags(process.argv.slice(2));
  const { enableCompileCache } = await import('node:module');
  enableCompileCache?.();
  const { chooseEntry } = await import('./entry.js');
  const entry = chooseEntry(fileURLToPath(new URL('..', import.meta.url)));
  const { main } = await import(entry);
  process.exitCode = await main(process.argv.slice(2));
}
