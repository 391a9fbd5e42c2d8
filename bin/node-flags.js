// Node/V8 flags a command's process runs with, applied by bin/trellis.js before anything else is
// loaded (plain JavaScript, like entry.js, so that no TypeScript loader runs first).
// `trellis proxy` caps V8's young generation (`--max-semi-space-size`): V8 sizes it by the heap
// limit and, on a machine with a few GB, grows it to 128 MB (two 64 MB semi-spaces) whenever many
// objects survive a scavenge, which is what opening thousands of connections at once does (each
// keeps its socket and parser), and it keeps the pages. 5,000 idle HTTP/1.1 keep-alive connections
// grew a gateway by 176 MB, 96 MB of it this headroom (npm run bench:idle, bench/README.md).
// 8 MB semi-spaces: at ~20 KB allocated per proxied request a proxy at 1,000 rps scavenges about
// 4 times a second instead of 2, and its RSS at that rate is ~20 MB lower than with 16 MB
// semi-spaces for ~2% more CPU per request; 4 MB saved ~10 MB more but cost ~6% more CPU per
// request, since each scavenge copies and promotes the requests in flight (bench/README.md,
// "2026-12-07: memory pass"). Where memory matters more than CPU, NODE_OPTIONS can set 4.
// `--concurrency` workers inherit the flag. An operator's own `--max-semi-space-size` (node flag
// or NODE_OPTIONS) wins.

/** Semi-space size of a proxy process, in MB. */
export const ProxySemiSpaceMb = 8;

/** The flags to add for `args` (the command line after `trellis`) that the process does not already have. */
export function missingNodeFlags(args, execArgv, nodeOptions) {
  if (args[0] !== 'proxy') return [];
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)];
  if (given.some((f) => /^--max[-_]semi[-_]space[-_]size(=|$)/.test(f))) return [];
  return [`--max-semi-space-size=${ProxySemiSpaceMb}`];
}

/**
 * Replaces this process (same pid, same stdio) with one that has the flags the command needs,
 * when it lacks them and the platform can (`process.execve`, Node 23.11+ on POSIX).
 */
export function execWithNodeFlags(args) {
  const add = missingNodeFlags(args, process.execArgv, process.env.NODE_OPTIONS);
  if (add.length === 0 || typeof process.execve !== 'function' || process.platform === 'win32') return;
  process.execve(process.execPath, [process.execPath, ...add, ...process.execArgv, ...process.argv.slice(1)], process.env);
}
