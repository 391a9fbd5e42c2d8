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
// memory pass").
// `--no-memory-reducer-favors-memory`: about a minute and a half after a proxy goes idle, V8's
// memory reducer runs a full GC, by default in "reduce memory footprint" mode, which stops keeping
// alive hidden classes (maps) that have no object left; while idle every per-request object is
// gone, so each optimized function embedding such a map is thrown away (~190 on a 2-hop mTLS
// sidecar, `--trace-deopt`). The first requests after the lull then run unoptimized while V8
// compiles it all again: a 2-hop mTLS path after 120 s idle ran at p99 35 ms against Envoy's
// 2.8 ms and 1.6x the CPU per request; with the flag 3.2 ms and its steady CPU (bench/README.md,
// "2-hop mTLS tail after idle"). The reducer still collects an idle proxy, as an ordinary full
// GC that keeps the maps, and keeps its free young-generation pages (at most the 8 MB above):
// memory the proxy used under load anyway, ~3-5 MB more resident after the lull.
// `--concurrency` workers inherit the flags. An operator's own `--max-semi-space-size` (node flag
// or NODE_OPTIONS), `--maglev` / `--no-maglev` or `--(no-)memory-reducer-favors-memory` (node
// flags) wins.

/** Semi-space size of a proxy process, in MB. */
export const ProxySemiSpaceMb = 4;

/** Each flag a proxy runs with, and how to tell that the operator already chose that setting. */
const ProxyFlags = [
  { flag: `--max-semi-space-size=${ProxySemiSpaceMb}`, given: /^--max[-_]semi[-_]space[-_]size(=|$)/ },
  { flag: '--no-maglev', given: /^--(no[-_])?maglev$/ },
  { flag: '--no-memory-reducer-favors-memory', given: /^--(no[-_])?memory[-_]reducer[-_]favors[-_]memory$/ },
];

/** The flags to add for `args` (the command line after `trellis`) that the process does not already have. */
export function missingNodeFlags(args, execArgv, nodeOptions) {
  if (args[0] !== 'proxy') return [];
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)];
  return ProxyFlags.filter((p) => !given.some((f) => p.given.test(f))).map((p) => p.flag);
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
