/**
 * Node/V8 flags a command's process should run with, applied before anything else is loaded.
 * `trellis proxy` caps V8's young generation (`--max-semi-space-size`): on a machine with a few
 * GB of memory V8 lets it grow to 128 MB (two 64 MB semi-spaces) whenever many objects survive a
 * scavenge, which is what opening thousands of connections at once does (each keeps its socket and
 * parser), and it does not give the pages back. 5,000 idle keep-alive connections grew a gateway
 * by 179 MB, 96 MB of it this headroom (bench/idle-connections.ts). 16 MB semi-spaces (V8's
 * default before the heap-size-based sizing) keep the young generation at 32 MB per process (each
 * `--concurrency` worker inherits the flags). An operator's own `--max-semi-space-size` (node flag
 * or NODE_OPTIONS) wins.
 */

/** Semi-space size of a proxy process, in MB. */
export const ProxySemiSpaceMb = 16;

/** The flags to add for `args` (the command line after `trellis`) that the process does not already have. */
export function missingNodeFlags(args: readonly string[], execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  if (args[0] !== 'proxy') return [];
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)];
  if (given.some((f) => /^--max[-_]semi[-_]space[-_]size(=|$)/.test(f))) return [];
  return [`--max-semi-space-size=${ProxySemiSpaceMb}`];
}

/**
 * Replaces this process (same pid, same stdio) with one that has the flags the command needs,
 * when it lacks them and the platform can (`process.execve`, Node 23.11+ on POSIX).
 */
export function execWithNodeFlags(args: readonly string[]): void {
  const add = missingNodeFlags(args, process.execArgv, process.env.NODE_OPTIONS);
  const execve = (process as { execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => never }).execve;
  if (add.length === 0 || typeof execve !== 'function' || process.platform === 'win32') return;
  execve(process.execPath, [process.execPath, ...add, ...process.execArgv, ...process.argv.slice(1)], process.env);
}
