/**
 * Helpers for the `trellis up` end-to-end tests: run the CLI as a real process, curl through the
 * mesh with the system curl, copy the demo config into a temp dir (steps rewrite routing.yaml),
 * and check that a state dir's processes and ports are really gone.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTool } from './tools.ts';
import { alive } from '../../src/runtime/child.ts';
import { isListening } from '../../src/runtime/ports.ts';
import type { RuntimeState } from '../../src/runtime/state.ts';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const bin = join(root, 'bin/trellis.js');

export interface Run { code: number; stdout: string; stderr: string; ms: number }

/** Runs `trellis ...args` to completion (bounded). */
export function trellis(args: string[], opts: { cwd?: string; timeoutMs?: number; uid?: number; gid?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd: opts.cwd ?? root, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 90_000, maxBuffer: 16 << 20, uid: opts.uid, gid: opts.gid }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

export interface CurlResult { status: number; body: string; ms: number }

/** One curl GET; never throws (status 0 on connection failure). */
export function curl(url: string, headers: Record<string, string> = {}, maxTimeS = 10): Promise<CurlResult> {
  const tool = findTool('curl')!;
  const args = ['-s', '-m', String(maxTimeS), '-o', '-', '-w', '\n%{http_code}'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  args.push(url);
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(tool, args, { timeout: (maxTimeS + 5) * 1000 }, (_err, stdout) => {
      const i = stdout.lastIndexOf('\n');
      resolve({ status: Number(stdout.slice(i + 1)) || 0, body: stdout.slice(0, Math.max(0, i)), ms: Date.now() - t0 });
    });
  });
}

/** A fresh temp copy of examples/demo/mesh. */
export function demoCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-demo-'));
  cpSync(join(root, 'examples/demo/mesh'), dir, { recursive: true });
  return dir;
}

export function readStateFile(stateDir: string): RuntimeState {
  return JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')) as RuntimeState;
}

/** The last lines of every log in a state dir's logs/ (for the message of an `up` that failed). */
export function logTails(stateDir: string, lines = 15): string {
  const dir = join(stateDir, 'logs');
  if (!existsSync(dir)) return '(no logs)';
  return readdirSync(dir).sort().map((f) => `--- ${f}\n${readFileSync(join(dir, f), 'utf8').trimEnd().split('\n').slice(-lines).join('\n')}`).join('\n');
}

/** Pids (of `pids`) that still run (zombies left unreaped by a non-reaping PID 1 do not count). */
export function livePids(pids: number[]): number[] {
  return pids.filter(alive);
}

/** Ports (of `ports`) that still accept connections on 127.0.0.1. */
export async function openPorts(ports: number[]): Promise<number[]> {
  const out: number[] = [];
  for (const p of ports) if (await isListening(p)) out.push(p);
  return out;
}

/**
 * Readiness waits in the `up` tests, generous for a loaded 2-core machine that several test runs
 * share: each process's start (`up --start-timeout`, default 15 s) and a change becoming visible.
 * Idle, the ingress gateway is ready ~1.5 s after it starts and a routing change shows in ~0.5 s;
 * the 15 s default flaked ("ingress gateway: not ready after 15.0 s") when a second transparent
 * mesh started beside the conformance run: every `trellis` process spends ~0.8 s of CPU compiling
 * its ~220 TypeScript modules at start, and a mesh starts ten of them. Failing slowly costs
 * nothing when the test passes; the `up` times are printed.
 */
export const StartTimeoutS = 120;
export const VisibleWithinMs = 60_000;

/** Polls `check` every 100 ms until it returns true `consecutive` times in a row or `ms` passes; returns the last result. */
export async function eventually(ms: number, check: () => Promise<boolean>, consecutive = 1): Promise<boolean> {
  const deadline = Date.now() + ms;
  let streak = 0;
  for (;;) {
    streak = (await check()) ? streak + 1 : 0;
    if (streak >= consecutive) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}
