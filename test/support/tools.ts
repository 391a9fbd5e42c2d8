/**
 * Finding the outside tools end-to-end tests and benchmarks run against (envoy, fortio, nginx,
 * haproxy, prometheus, chromium, h2load, wrk, curl, openssl). `scripts/install-tools.sh`
 * installs them; a test that needs one that is missing skips with a message naming it.
 */
import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

const extraDirs = [
  '/usr/sbin',
  '/usr/local/sbin',
  join(homedir(), 'go', 'bin'),
  '/usr/local/go/bin',
  join(homedir(), '.pyenv', 'shims'),
  join(homedir(), '.local', 'bin'),
];

const cache = new Map<string, string | undefined>();

/** Absolute path of an executable, searching PATH then the usual install places; undefined if absent. */
export function findTool(name: string): string | undefined {
  if (cache.has(name)) return cache.get(name);
  let found: string | undefined;
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), ...extraDirs]) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      found = candidate;
      break;
    } catch {
      // not here
    }
  }
  cache.set(name, found);
  return found;
}

/**
 * For `test(name, { skip: skipUnlessTools('envoy') }, ...)`: false when every tool is present,
 * otherwise the skip message naming what is missing and how CI installs it.
 */
export function skipUnlessTools(...names: string[]): false | string {
  const missing = names.filter((n) => findTool(n) === undefined);
  return missing.length === 0 ? false : `needs ${missing.join(', ')} on PATH (installed by scripts/install-tools.sh)`;
}
