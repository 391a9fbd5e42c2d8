/**
 * Real processes for end-to-end tests: a control plane (`trellis control`) watching a temp config
 * directory, proxies (`trellis proxy`) connected to it, and helpers to wait for readiness and
 * sync. Everything binds port 0 / free loopback ports and is killed by `stopAll()`; logs are kept
 * in memory and printed when a test fails, so a failure says what the processes said.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, renameSync, existsSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitFor } from './processes.ts';

export { freePort };

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const bin = join(repoRoot, 'bin/trellis.js');

export interface Proc {
  readonly child: ChildProcess;
  readonly output: () => string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const running = new Set<Proc>();
const tempDirs: string[] = [];

/** Spawns `trellis <args>` with Node 24 (the test runner's own node). */
export function spawnTrellis(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const proc: Proc = {
    child,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      running.delete(proc);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
  running.add(proc);
  return proc;
}

/** Kills every process started by this module. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Polling with a generous bound: the one `waitFor` of the tests (test/support/processes.ts). */
export { waitFor };

function readJson<T>(file: string): T | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** A free TCP port on 127.0.0.1 (for configs that must name a port up front). */

export interface ControlPlaneProc extends Proc {
  readonly xdsPort: number;
  readonly debugPort: number;
  readonly configDir: string;
  /** Writes (atomically) a config file into the watched directory. */
  write(name: string, yaml: string): void;
  remove(name: string): void;
  syncz(): Promise<SynczEntry[]>;
  /** Kills the control plane and starts a new one on the same config dir and xDS port. */
  restart(): Promise<void>;
}

export interface SynczEntry {
  id: string;
  types: Record<string, { state: string; sentVersion?: string; ackedVersion?: string; nackError?: string }>;
}

/** Starts `trellis control` on a fresh temp config dir seeded with `files`. */
export async function startControlPlane(files: Record<string, string> = {}, extraArgs: string[] = []): Promise<ControlPlaneProc> {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-e2e-'));
  tempDirs.push(dir);
  const configDir = join(dir, 'config');
  const write = (name: string, yaml: string) => {
    const tmp = join(dir, `.${name}.tmp`);
    writeFileSync(tmp, yaml);
    renameSync(tmp, join(configDir, name));
  };
  rmSync(configDir, { recursive: true, force: true });
  (await import('node:fs')).mkdirSync(configDir);
  for (const [name, yaml] of Object.entries(files)) write(name, yaml);
  let readyFile = join(dir, 'control.ready');
  const launch = async (xdsPort: number) => {
    const proc = spawnTrellis(['control', '--config', configDir, '--xds-port', String(xdsPort), '--debug-port', '0', '--ready-file', readyFile, '--log-level', 'warn', ...extraArgs]);
    const ready = await waitFor('control plane ready file', () => {
      if (proc.child.exitCode !== null) throw new Error(`control plane exited: ${proc.output()}`);
      return readJson<{ xds: number; debug: number }>(readyFile);
    }, 60_000);
    return { proc, ready };
  };
  let current = await launch(0);
  const xdsPort = current.ready.xds;
  const cp: ControlPlaneProc = {
    get child() {
      return current.proc.child;
    },
    output: () => current.proc.output(),
    stop: async (s) => {
      await current.proc.stop(s);
      rmSync(dir, { recursive: true, force: true });
    },
    xdsPort,
    get debugPort() {
      return current.ready.debug;
    },
    configDir,
    write,
    remove: (name) => rmSync(join(configDir, name), { force: true }),
    async syncz() {
      const res = await fetch(`http://127.0.0.1:${current.ready.debug}/debug/syncz`);
      return (await res.json()) as SynczEntry[];
    },
    async restart() {
      await current.proc.stop();
      rmSync(readyFile, { force: true });
      readyFile = join(dir, `control-${Date.now()}.ready`);
      current = await launch(xdsPort);
    },
  };
  return cp;
}

export interface ProxyProc extends Proc {
  readonly ports: { admin: number; health: number; prometheus: number };
  readonly nodeId: string;
  isReady(): Promise<boolean>;
}

export interface ProxySpec {
  kind?: 'sidecar' | 'router';
  namespace?: string;
  workload: string;
  labels?: Record<string, string>;
  metadata?: Record<string, unknown>;
  extraArgs?: string[];
}

/** Starts `trellis proxy` against a control plane and waits until it reports ready. */
export async function startProxy(cp: { xdsPort: number }, spec: ProxySpec, opts: { waitReady?: boolean } = {}): Promise<ProxyProc> {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-proxy-'));
  tempDirs.push(dir);
  const readyFile = join(dir, 'proxy.ready');
  const kind = spec.kind ?? 'sidecar';
  const ns = spec.namespace ?? 'default';
  const nodeId = `${kind}~127.0.0.1~${spec.workload}.${ns}~${ns}.svc.cluster.local`;
  const labels = Object.entries(spec.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
  const args = ['proxy', '--xds', `127.0.0.1:${cp.xdsPort}`, '--kind', kind, '--namespace', ns, '--workload', spec.workload, '--node-id', nodeId,
    '--admin-port', '0', '--health-port', '0', '--prometheus-port', '0', '--ready-file', readyFile, '--log-level', 'warn', '--drain-timeout', '1s'];
  if (labels) args.push('--labels', labels);
  if (spec.metadata) args.push('--metadata', JSON.stringify(spec.metadata));
  // One process per proxy unless a test asks for workers: e2e suites start many proxies on 2 cores.
  if (!(spec.extraArgs ?? []).includes('--concurrency')) args.push('--concurrency', '1');
  args.push(...(spec.extraArgs ?? []));
  const proc = spawnTrellis(args);
  // Generous: on a loaded 2-core CI machine a Node process start alone can take seconds.
  const ports = await waitFor('proxy ready file', () => {
    if (proc.child.exitCode !== null) throw new Error(`proxy exited: ${proc.output()}`);
    return readJson<{ admin: number; health: number; prometheus: number }>(readyFile);
  }, 60_000);
  const isReady = async () => (await fetch(`http://127.0.0.1:${ports.health}/healthz/ready`)).status === 200;
  if (opts.waitReady !== false) await waitFor(`proxy ${spec.workload} ready (${proc.output().slice(-500)})`, isReady, 60_000, 100);
  return {
    ...proc,
    stop: async (s) => {
      await proc.stop(s);
      rmSync(dir, { recursive: true, force: true });
    },
    ports,
    nodeId,
    isReady,
  };
}
