/**
 * Child processes of a conformance run: the control plane, proxies (gateways and sidecars) and
 * echo backends, each a real `trellis` process. This module owns spawning them with a ready
 * file, waiting until they listen, keeping the last lines of their stderr for failure reports,
 * collecting echo log lines (mirror checks read them), and killing every one of them on
 * teardown, whatever happened before (the runner also calls `killAll` from signal handlers).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { freePort } from '../support/processes.ts';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inNetns } from '../../src/runtime/netns.ts';

/** The repository root (two levels above this file). */
export const RepoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const TrellisBin = join(RepoRoot, 'bin', 'trellis.js');

const live = new Set<ChildProcess>();

/** A running child with its recent stderr. */
export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  /** Last ~50 stderr lines (for reports). */
  stderrTail(): string;
  exited(): boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Where a child runs: inside a network namespace, optionally as the proxy's uid/gid 1337. */
export interface Placement {
  readonly netns: string;
  readonly asProxy?: boolean;
}

/** Registers a process started elsewhere so `killAll` and `liveChildren` cover it. */
export function trackChild(proc: ChildProcess): void {
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
}

/** Starts `trellis <args>` (in a network namespace when `placement` says so); stdout lines go to `onLine`. */
export function startTrellis(name: string, args: string[], onLine?: (line: string) => void, placement?: Placement): Child {
  const argv = [process.execPath, TrellisBin, ...args];
  // `ip netns exec` and setpriv exec the command, so the pid we hold (and signal) is node's.
  const cmd = placement ? inNetns(placement.netns, argv, placement.asProxy ?? false) : argv;
  const proc = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: RepoRoot });
  live.add(proc);
  let exited = false;
  proc.once('exit', () => {
    exited = true;
    live.delete(proc);
  });
  const tail: string[] = [];
  let errBuf = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (chunk: string) => {
    errBuf += chunk;
    const lines = errBuf.split('\n');
    errBuf = lines.pop() ?? '';
    for (const l of lines) {
      tail.push(l);
      if (tail.length > 50) tail.shift();
    }
  });
  let outBuf = '';
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (chunk: string) => {
    outBuf += chunk;
    const lines = outBuf.split('\n');
    outBuf = lines.pop() ?? '';
    if (onLine) for (const l of lines) onLine(l);
  });
  return { name, proc, stderrTail: () => tail.join('\n'), exited: () => exited };
}

/** Waits for a JSON ready file written by `--ready-file`; fails if the child exits first. */
export async function waitReadyFile<T>(child: Child, file: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(file)) {
      try {
        return JSON.parse(readFileSync(file, 'utf8')) as T;
      } catch {
        // Written atomically by rename, so a parse error means a partial read; retry.
      }
    }
    if (child.exited()) throw new Error(`${child.name} exited before it was ready:\n${child.stderrTail()}`);
    await sleep(50);
  }
  throw new Error(`${child.name} not ready after ${timeoutMs} ms:\n${child.stderrTail()}`);
}

/** Polls `url` until it answers 200 or the time runs out; returns whether it did. */
export async function waitHttpOk(url: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await r.arrayBuffer();
      if (r.status === 200) return true;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  return false;
}

/** `n` distinct free ports (see test/support/processes.ts's freePort for how they are picked). */
export async function freePorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < n) out.add(await freePort());
  return [...out];
}

/** Stops one child: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(child: Child, graceMs = 3000): Promise<void> {
  if (child.exited()) return;
  const done = new Promise<void>((r) => child.proc.once('exit', () => r()));
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(timer);
}

/** Synchronously SIGKILLs every child still alive (signal handlers, exit). */
export function killAll(): void {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

/** Number of children still alive (tests assert 0 after teardown). */
export const liveChildren = (): number => live.size;
