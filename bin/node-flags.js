// Node/V8 flags `trellis proxy` runs with. A proxy is a sidecar: one runs next to every workload,
// so its resident memory counts once per pod. V8's defaults suit one big process: the young
// generation grows to two 32 MB semi-spaces under load (measured: ~50 MB of a proxy's RSS at
// 1,000 rps), and the old generation grows to several times its live size before a full GC.
// Heap sizes can only be set when V8 starts, so bin/trellis.js re-executes itself once
// (process.execve: same pid, same file descriptors) with these flags before any Trellis module
// loads. bench/README.md ("Issue 16: data-plane performance log") has the measurements.
//
// TRELLIS_PROXY_NODE_OPTIONS replaces the list (space-separated; empty for V8's defaults).
// A flag the user already gives in NODE_OPTIONS or on node's command line wins over ours.

/** The default list: 16 MB semi-spaces (a 32 MB young generation; V8's default grows to 64 MB). */
export const DEFAULT_PROXY_NODE_FLAGS = ['--max-semi-space-size=16'];

/** Set in the re-executed process's environment so that it (and its cluster workers) does not re-execute again. */
export const APPLIED_ENV = 'TRELLIS_PROXY_NODE_FLAGS_APPLIED';

function flagName(flag) {
  return flag.replace(/^--/, '').split('=')[0].replace(/_/g, '-');
}

/**
 * The flags to re-execute `trellis proxy` with, or undefined when there is nothing to do (another
 * verb, already applied, or every flag already chosen by the user).
 * @param {string[]} cliArgs the arguments after the script (`proxy`, ...)
 * @param {string[]} execArgv node's own command-line flags
 * @param {Record<string, string | undefined>} env
 * @returns {string[] | undefined}
 */
export function proxyNodeFlags(cliArgs, execArgv, env) {
  if (cliArgs[0] !== 'proxy' || env[APPLIED_ENV] === '1') return undefined;
  const wanted = env.TRELLIS_PROXY_NODE_OPTIONS !== undefined
    ? env.TRELLIS_PROXY_NODE_OPTIONS.split(/\s+/).filter((f) => f !== '')
    : DEFAULT_PROXY_NODE_FLAGS;
  const given = new Set([...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)].filter((f) => f.startsWith('--')).map(flagName));
  const flags = wanted.filter((f) => !given.has(flagName(f)));
  return flags.length > 0 ? flags : undefined;
}
