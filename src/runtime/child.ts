/**
 * One supervised child process: spawned detached (so it leads its own process group and the
 * supervisor, or `trellis down` after a supervisor crash, can signal the whole group: a workload's
 * shell wrapper and its children go together), stdout+stderr appended to its log file, exit
 * recorded. `stopGroup` is SIGTERM, a bounded wait, then SIGKILL — used both here and by `down`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sleep } from './wait.ts';

/** Absolute path of bin/trellis.js (commands starting with `trellis` run our own CLI). */
export const trellisBin = fileURLToPath(new URL('../../bin/trellis.js', import.meta.url));

/** `trellis ...` -> `[node, bin/trellis.js, ...]`; anything else unchanged. */
export function resolveCommand(command: readonly string[]): string[] {
  if (command[0] === 'trellis') return [process.execPath, trellisBin, ...command.slice(1)];
  return [...command];
}

export interface ChildSpec {
  /** Short name for messages (`sidecar web-api-1`). */
  readonly name: string;
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly logFile: string;
  readonly cwd?: string;
}

/** A running (or exited) child. */
export class Child {
  readonly name: string;
  readonly logFile: string;
  readonly proc: ChildProcess;
  exitCode: number | null = null;
  exitSignal: string | null = null;
  exited = false;
  readonly exitPromise: Promise<void>;

  constructor(spec: ChildSpec) {
    this.name = spec.name;
    this.logFile = spec.logFile;
    const fd = openSync(spec.logFile, 'a');
    const [cmd, ...args] = resolveCommand(spec.command);
    try {
      this.proc = spawn(cmd, args, { env: { ...spec.env }, cwd: spec.cwd, detached: true, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    this.exitPromise = new Promise((resolve) => {
      const done = (code: number | null, signal: string | null) => {
        if (this.exited) return;
        this.exited = true;
        this.exitCode = code;
        this.exitSignal = signal;
        resolve();
      };
      this.proc.once('exit', done);
      // spawn failures (ENOENT) arrive as 'error' without 'exit'
      this.proc.once('error', (err) => {
        this.spawnError = err.message;
        done(127, null);
      });
    });
  }

  spawnError: string | undefined;

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  /** "exited with code 1" / "killed by SIGKILL" / "could not start: ..." or undefined while running. */
  exitReason(): string | undefined {
    if (!this.exited) return undefined;
    if (this.spawnError !== undefined) return `could not start: ${this.spawnError}`;
    return this.exitSignal !== null ? `killed by ${this.exitSignal}` : `exited with code ${this.exitCode}`;
  }

  /** The last `n` lines of the log, for error messages. */
  logTail(n = 8): string {
    try {
      const lines = readFileSync(this.logFile, 'utf8').trimEnd().split('\n');
      return lines.slice(-n).join('\n');
    } catch {
      return '';
    }
  }

  /** SIGTERM the group, wait up to `graceMs`, then SIGKILL. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.pid > 0) await stopGroup(this.pid, graceMs, () => this.exited);
    await Promise.race([this.exitPromise, sleep(1000)]);
  }
}

/**
 * `/proc/<pid>/stat` as [state, process group], or undefined when unreadable (gone, or not Linux).
 * The command name may hold spaces and parentheses, so fields are counted after the last ')'.
 */
export function procStat(pid: number | string): [state: string, pgrp: number] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [rest[0], Number(rest[2])];
  } catch {
    return undefined;
  }
}

/**
 * True when process `pid` exists and is not a zombie. A child orphaned by a crashed supervisor is
 * reparented to PID 1, and where PID 1 does not reap (many containers) it stays a zombie after it
 * exits: signal 0 still succeeds, so without this `down` would wait out every grace period.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  return procStat(pid)?.[0] !== 'Z';
}

/** True when some member of process group `pgid` exists and is not a zombie. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return true; // no procfs: trust the signal
  }
  for (const name of names) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    const st = procStat(name);
    if (st !== undefined && st[1] === pgid && st[0] !== 'Z') return true;
  }
  return false;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // group gone; try the leader alone in case it left its group
    try {
      process.kill(pgid, signal);
    } catch {
      // gone
    }
  }
}

/**
 * Stops process group `pgid`: SIGTERM, wait up to `graceMs` for the whole group to go, SIGKILL
 * what is left. `exited` lets a parent that reaps the leader stop waiting on a zombie.
 */
export async function stopGroup(pgid: number, graceMs: number, exited?: () => boolean): Promise<void> {
  if (!groupAlive(pgid) && !alive(pgid)) return;
  signalGroup(pgid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!groupAlive(pgid) && (exited?.() ?? !alive(pgid))) return;
    await sleep(50);
  }
  signalGroup(pgid, 'SIGKILL');
  const killDeadline = Date.now() + 2000;
  while (Date.now() < killDeadline && groupAlive(pgid)) await sleep(25);
}
