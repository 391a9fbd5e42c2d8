/**
 * Which mesh a command means when the user names none. `trellis up` records every mesh it runs
 * in a per-user list (one small file per state dir in `$XDG_STATE_HOME/trellis/meshes/`, default
 * `~/.local/state/trellis/meshes/`), removed when the mesh stops; `status`, `down`,
 * `proxy-status` and `proxy-config` then find it from any directory, as `kubectl` finds its
 * current cluster. Order: `--state-dir`, then `$TRELLIS_STATE_DIR`, then `./.trellis` when a mesh
 * runs from it, then the only running mesh of this user; several running meshes and no hint is
 * an error that lists them. Entries of meshes whose supervisor is gone are pruned on read.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { TrellisError } from '../errors.ts';
import { alive } from './child.ts';
import { readState, statePaths, type RuntimeState } from './state.ts';

/** The default state dir, relative to the working directory. */
export const DEFAULT_STATE_DIR = '.trellis';

/** One entry of the list. */
export interface MeshEntry {
  readonly stateDir: string;
  readonly supervisorPid: number;
  readonly startedAt: string;
}

/** Where the list lives. */
export function meshListDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME !== undefined && env.XDG_STATE_HOME !== '' ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state');
  return join(base, 'trellis', 'meshes');
}

function entryFile(stateDir: string, env: NodeJS.ProcessEnv): string {
  return join(meshListDir(env), `${createHash('sha256').update(statePaths(stateDir).dir).digest('hex').slice(0, 16)}.json`);
}

/** Records a running mesh; failures only lose the convenience, so they are ignored. */
export function recordMesh(entry: MeshEntry, env: NodeJS.ProcessEnv = process.env): void {
  try {
    const file = entryFile(entry.stateDir, env);
    mkdirSync(meshListDir(env), { recursive: true });
    writeFileSync(`${file}.${process.pid}.tmp`, JSON.stringify(entry) + '\n');
    renameSync(`${file}.${process.pid}.tmp`, file);
  } catch {
    // a read-only home: commands still work with --state-dir
  }
}

/** Removes a mesh's entry (when its supervisor stops). */
export function forgetMesh(stateDir: string, env: NodeJS.ProcessEnv = process.env): void {
  rmSync(entryFile(stateDir, env), { force: true });
}

/** Running meshes of this user, oldest first; entries of dead supervisors are removed. */
export function runningMeshes(env: NodeJS.ProcessEnv = process.env): MeshEntry[] {
  const dir = meshListDir(env);
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  const out: MeshEntry[] = [];
  for (const n of names) {
    try {
      const e = JSON.parse(readFileSync(join(dir, n), 'utf8')) as MeshEntry;
      const st = readState(e.stateDir);
      if (alive(e.supervisorPid) && st !== undefined && st.supervisorPid === e.supervisorPid && st.phase !== 'stopped') out.push(e);
      else rmSync(join(dir, n), { force: true });
    } catch {
      // half-written by a starting mesh: skip this time
    }
  }
  return out.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
}

/** The state when its supervisor is alive and has not stopped, else undefined. */
export function runningState(state: RuntimeState | undefined): RuntimeState | undefined {
  return state !== undefined && alive(state.supervisorPid) && state.phase !== 'stopped' ? state : undefined;
}

/** How the state dir was chosen, for messages. */
export type MeshSource = 'flag' | 'env' | 'cwd' | 'list' | 'default';

/**
 * The state dir a command should use. `requireLive`: prefer meshes that run (status,
 * proxy-status); otherwise (down) an existing ./.trellis counts even after a crash.
 * Throws MESH_AMBIGUOUS when several meshes run and nothing says which.
 */
export function resolveStateDir(flag: string | undefined, opts: { requireLive: boolean; env?: NodeJS.ProcessEnv; cwd?: string }): { stateDir: string; source: MeshSource } {
  const env = opts.env ?? process.env;
  if (flag !== undefined) return { stateDir: flag, source: 'flag' };
  if (env.TRELLIS_STATE_DIR !== undefined && env.TRELLIS_STATE_DIR !== '') return { stateDir: env.TRELLIS_STATE_DIR, source: 'env' };
  const here = readState(opts.cwd !== undefined ? join(opts.cwd, DEFAULT_STATE_DIR) : DEFAULT_STATE_DIR);
  if (runningState(here) !== undefined || (!opts.requireLive && here !== undefined && here.phase !== 'stopped')) return { stateDir: DEFAULT_STATE_DIR, source: 'cwd' };
  const running = runningMeshes(env);
  if (running.length === 1) return { stateDir: running[0].stateDir, source: 'list' };
  if (running.length > 1) {
    throw new TrellisError('MESH_AMBIGUOUS', `${running.length} meshes are running: ${running.map((m) => `${m.stateDir} (started ${m.startedAt})`).join(', ')}; choose one with --state-dir DIR or TRELLIS_STATE_DIR`);
  }
  return { stateDir: DEFAULT_STATE_DIR, source: 'default' };
}
