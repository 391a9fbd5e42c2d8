// Node/V8 flags a command's process runs with, applied by bin/trellis.js before anything else is
// loaded (plain JavaScript, like entry.js, so that no TypeScript loader runs first).
// `trellis proxy` caps V8's young generation (`--max-semi-space-size`): V8 sizes it by the heap
// limit and, on a machine with a few GB, grows it to 128 MB (two 64 MB semi-spaces) whenever many
// objects survive a scavenge, which is what opening thousands of connections at once does (each
// keeps its socket and parser), and it keeps the pages. 5,000 idle HTTP/1.1 keep-alive connections
// grew a gateway by 176 MB, 96 MB of it this headroom (npm run bench:idle, bench/README.md).
// 4 MB semi-spaces (8 MB of young generation, committed from start-up on): at ~20 KB allocated
// per proxied request 4 MB cost ~6% more CPU per request than 8 (each scavenge copies and
// promotes the requests in flight), so 8 was chosen then; at ~10-12 KB per request the extra
// scavenges no longer show in CPU per request and 4 keeps ~8 MB less resident, idle and at
// 1,000 rps (bench/README.md, "2026-12-07: memory pass" and "2026-12-07 (evening): memory pass").
// Where CPU matters more than memory (a busy gateway), NODE_OPTIONS can set 8 or 16.
// `--no-maglev`: V8's mid-tier compiler (Maglev) optimizes many more functions than the top tier
// (TurboFan) does, each with its code, deoptimization data and compile-time zone memory (malloc
// on V8's helper threads, which glibc keeps): without it a proxy at 1,000 rps stays 15-25 MB
// smaller, and its hot path is TurboFan code either way (bench/README.md, "2026-12-07 (evening):
// memory pass"). `--concurrency` workers inherit the flags. An operator's own
// `--max-semi-space-size` (node flag or NODE_OPTIONS) or `--maglev` / `--no-maglev` (node flag)
// wins.

/** Semi-space size of a proxy process, in MB. */
export const ProxySemiSpaceMb = 4;

/** The flags to add for `args` (the command line after `trellis`) that the process does not already have. */
export function missingNodeFlags(args, execArgv, nodeOptions) {
  if (args[0] !== 'proxy') return [];
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)];
  const add = [];
  if (!given.some((f) => /^--max[-_]semi[-_]space[-_]size(=|$)/.test(f))) add.push(`--max-semi-space-size=${ProxySemiSpaceMb}`);
  if (!given.some((f) => /^--(no[-_])?maglev$/.test(f))) add.push('--no-maglev');
  return add;
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
