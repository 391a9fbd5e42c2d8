/**
 * Every process the benchmark starts, and the guarantee that none outlives it. Each child runs
 * in its own process group (`detached`), so a proxy's workers (nginx) and wrappers are killed
 * together with `kill(-pgid)`. `stopAll()` is the orderly path (SIGTERM, wait, SIGKILL); an
 * `exit` hook and SIGINT/SIGTERM/uncaught-error handlers SIGKILL whatever is left, so Ctrl-C or
 * a crash in the harness leaves no process behind. Output goes to per-process log files.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A started process (the leader of its own process group). */
export interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  readonly log: string;
  /** Resolves with the exit code (or null when killed by a signal). */
  readonly exited: Promise<number | null>;
  exitCode: number | null | undefined;
}

const live = new Set<Proc>();
const everStarted: number[] = [];
let hooked = false;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** Synchronous last resort: SIGKILL every group we started (safe inside an `exit` handler). */
export function killAllNow(): void {
  for (const p of live) killGroup(p.pid, 'SIGKILL');
  live.clear();
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping ${live.size} process group(s)\n`);
      killAllNow();
      process.exit(130);
    });
  }
  process.on('uncaughtException', (err) => {
    process.stderr.write(`bench: uncaught error: ${err.stack ?? String(err)}\n`);
    killAllNow();
    process.exit(1);
  });
}

/** Starts `cmd args` in its own process group, stdout+stderr appended to `<logDir>/<name>.log`. */
export function startProc(name: string, cmd: string, args: readonly string[], opts: { logDir: string; cwd?: string; env?: NodeJS.ProcessEnv }): Proc {
  hook();
  const log = join(opts.logDir, `${name}.log`);
  const fd = openSync(log, 'a');
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`bench: could not start ${name} (${cmd})`);
  let resolveExit!: (code: number | null) => void;
  const exited = new Promise<number | null>((r) => { resolveExit = r; });
  const proc: Proc = { name, pid: child.pid, child, log, exited, exitCode: undefined };
  child.on('exit', (code) => {
    proc.exitCode = code;
    resolveExit(code);
  });
  child.on('error', () => {
    proc.exitCode = -1;
    resolveExit(-1);
  });
  live.add(proc);
  everStarted.push(proc.pid);
  return proc;
}

/** SIGTERM one group, wait up to `graceMs` for the leader, then SIGKILL the group. */
export async function stopProc(p: Proc, graceMs = 3000): Promise<void> {
  if (!live.has(p)) return;
  killGroup(p.pid, 'SIGTERM');
  await Promise.race([p.exited, new Promise((r) => setTimeout(r, graceMs).unref())]);
  killGroup(p.pid, 'SIGKILL');
  live.delete(p);
}

/** Stops every process still running (in parallel). */
export async function stopAll(graceMs = 3000): Promise<void> {
  await Promise.all([...live].map((p) => stopProc(p, graceMs)));
}

/** The last `n` characters of a process's log, for error messages. */
export function logTail(p: Proc, n = 1500): string {
  try {
    const text = readFileSync(p.log, 'utf8');
    return text.slice(-n);
  } catch {
    return '';
  }
}

/** Process ids currently alive in any of our groups (for the "nothing left behind" check). */
export function livePids(): number[] {
  return [...live].map((p) => p.pid);
}

/** Runs a short-lived command to completion (own process group, killed on timeout or Ctrl-C). */
export function runCapture(name: string, cmd: string, args: readonly string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  hook();
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) return Promise.reject(new Error(`bench: could not start ${name} (${cmd})`));
  let resolveExit!: (code: number | null) => void;
  const exited = new Promise<number | null>((r) => { resolveExit = r; });
  const proc: Proc = { name, pid: child.pid, child, log: '', exited, exitCode: undefined };
  live.add(proc);
  everStarted.push(proc.pid);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d.length > 20000 ? d.slice(-20000) : d; if (stderr.length > 40000) stderr = stderr.slice(-20000); });
  const timer = setTimeout(() => killGroup(proc.pid, 'SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      proc.exitCode = code;
      resolveExit(code);
      killGroup(proc.pid, 'SIGKILL');
      live.delete(proc);
      resolve({ code, stdout, stderr });
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      live.delete(proc);
      resolve({ code: -1, stdout, stderr: stderr + String(err) });
    });
  });
}

/** Every process group leader this run started (recorded in the JSON for leak checks). */
export function startedPgids(): number[] {
  return [...everStarted];
}
