/**
 * Real processes for end-to-end tests and benchmarks: spawning `trellis control` and stock Envoy
 * on loopback with port 0, collecting their output, bounded polling (`waitFor`), and one cleanup
 * list per test file so `after()` stops everything that was started (children are killed by pid,
 * never by name). Nothing here knows about Istio; mesh YAML lives in mesh-yaml.ts.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTool } from './tools.ts';
import { allocatePorts, isPortFree } from '../../src/runtime/ports.ts';

/** The repository root. */
export const repoRoot = join(import.meta.dirname, '..', '..');
/** The Node 24 binary running this test (the shell's `node` may be older). */
export const nodeBin = process.execPath;

/** Things to undo, newest first; `runCleanups` is meant for `after()`. */
export class Cleanups {
  #fns: Array<() => unknown> = [];
  add(fn: () => unknown): void {
    this.#fns.push(fn);
  }
  async run(): Promise<void> {
    const fns = this.#fns.reverse();
    this.#fns = [];
    for (const fn of fns) {
      try {
        await fn();
      } catch {
        // best effort: one failed cleanup must not leak the rest
      }
    }
  }
}

/** A fresh temp directory removed by `cleanups`. */
export function tempDir(cleanups: Cleanups, prefix = 'trellis-e2e-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.add(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Polls `fn` every `intervalMs` until it returns a value other than undefined/false, or throws
 * after `ms`. The default is generous (a loaded 2-core machine shared by several test runs):
 * waiting long costs nothing when the condition comes true, and a bound tight enough to flake
 * proves nothing.
 */
export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 60_000, intervalMs = 50): Promise<T> {
  const end = Date.now() + ms;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= end) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${lastErr ? `: ${String((lastErr as Error).message ?? lastErr)}` : ''}`);
}

/** A port that was free a moment ago (for tools that cannot be told port 0 and report back). */
export async function freePort(): Promise<number> {
  // Taken from just below the kernel's ephemeral range: a port freed here and bound by a child a
  // moment later cannot meanwhile become the local port of some test's outgoing connection or of
  // another listen(0), which is how parallel test files used to steal each other's ports.
  const low = ephemeralLow();
  for (let tries = 0; low > belowEphemeral + 1024 && tries < 200; tries++) {
    const port = low - belowEphemeral + Math.floor(Math.random() * belowEphemeral);
    if (handedOut.has(port)) continue;
    // Checked on 0.0.0.0: a port bound there by a gateway would refuse 127.0.0.1 later.
    if (await isPortFree(port)) {
      handedOut.add(port);
      return port;
    }
  }
  return (await allocatePorts(1))[0]!;
}

/** How many ports below the ephemeral range `freePort` draws from. */
const belowEphemeral = 10_000;
/** Ports this test process has handed out (a test may hold several before binding any). */
const handedOut = new Set<number>();

/** The first port of the kernel's ephemeral range; 0 off Linux (then the kernel picks). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) ? low : 0;
  } catch {
    return 0;
  }
}

/** A spawned child whose stdout+stderr are collected, killed (by pid) on cleanup. */
export interface Spawned {
  readonly child: ChildProcess;
  /** Everything the child wrote so far (stdout and stderr interleaved). */
  output(): string;
  /** Resolves with the exit code (or signal name) once the child exits. */
  readonly exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Spawns `cmd args`, collecting output; registered with `cleanups`. */
export function spawnTracked(cleanups: Cleanups, cmd: string, args: readonly string[], opts: SpawnOptions = {}): Spawned {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 4_000_000) out = out.slice(-2_000_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  let done = false;
  void exited.then(() => (done = true));
  const stop = async (graceMs = 3000) => {
    if (done) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(t);
  };
  cleanups.add(() => stop());
  return { child, output: () => out, exited, stop };
}

/** A `trellis control` child process. */
export interface ControlProcess extends Spawned {
  readonly xdsPort: number;
  readonly debugPort: number;
  /** http://127.0.0.1:<debugPort> */
  readonly url: string;
}

/** Starts `trellis control --config DIR --xds-port 0 --debug-port 0` and waits for its ready file. */
export async function startControlProcess(cleanups: Cleanups, configDir: string, extraArgs: readonly string[] = []): Promise<ControlProcess> {
  const work = tempDir(cleanups, 'trellis-ctl-');
  const ready = join(work, 'ready.json');
  const p = spawnTracked(cleanups, nodeBin, [join(repoRoot, 'bin', 'trellis.js'), 'control', '--config', configDir, '--xds-port', '0', '--debug-port', '0', '--ready-file', ready, ...extraArgs], { cwd: repoRoot });
  const info = await waitFor('trellis control ready file', async () => {
    const code = await Promise.race([p.exited, new Promise((r) => setTimeout(r, 0, undefined))]);
    if (code !== undefined) throw new Error(`trellis control exited (${String(code)}):\n${p.output()}`);
    return existsSync(ready) ? (JSON.parse(readFileSync(ready, 'utf8')) as { xds: number; debug: number }) : undefined;
  }, 30_000);
  return { ...p, xdsPort: info.xds, debugPort: info.debug, url: `http://127.0.0.1:${info.debug}` };
}

/** GET a URL as JSON (or text when not JSON), bounded. */
export async function getJson<T = unknown>(url: string, timeoutMs = 5000): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${url} -> ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/** A stock Envoy child bootstrapped against an ADS server. */
export interface EnvoyProcess extends Spawned {
  readonly adminPort: number;
  readonly admin: string;
  readonly nodeId: string;
}

export interface EnvoyOptions {
  xdsPort: number;
  nodeId: string;
  /** Node metadata (NAMESPACE, LABELS, TRELLIS_* keys). */
  metadata: Record<string, unknown>;
  dir: string;
  logLevel?: string;
  /** Runtime keys of the bootstrap's static layer; default Istio's (IstioBootstrapRuntime). */
  runtime?: Record<string, string | boolean>;
  /** Unix socket of a workload SDS server (`trellis sds-agent`): Envoy's `sds-grpc` cluster, as Istio's bootstrap has it. */
  sdsSocket?: string;
}

/** A static HTTP/2 cluster of one address (gRPC to the control plane, or to an SDS socket). */
function h2Cluster(name: string, address: Record<string, unknown>): Record<string, unknown> {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] },
  };
}

/**
 * The runtime keys Istio's bootstrap gives every Envoy that change request handling: a `#fragment`
 * in the path is stripped instead of rejected with 400. Trellis proxy behaves that way, so a stock
 * Envoy compared with it gets the same bootstrap Istio would give it.
 */
export const IstioBootstrapRuntime: Readonly<Record<string, string | boolean>> = Object.freeze({
  'envoy.reloadable_features.http_reject_path_with_fragment': false,
});

/** Starts Envoy with dynamic ADS (LDS + CDS), admin on a free port, a unique base id, no hot restart. */
export async function startEnvoy(cleanups: Cleanups, o: EnvoyOptions): Promise<EnvoyProcess> {
  const envoy = findTool('envoy');
  if (envoy === undefined) throw new Error('envoy not found on PATH');
  const bootstrap = {
    node: { id: o.nodeId, cluster: 'trellis-e2e', metadata: o.metadata },
    dynamic_resources: {
      ads_config: {
        api_type: 'GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }],
        set_node_on_first_message_only: true,
      },
      cds_config: { ads: {}, resource_api_version: 'V3' },
      lds_config: { ads: {}, resource_api_version: 'V3' },
    },
    static_resources: {
      clusters: [
        h2Cluster('xds-grpc', { socket_address: { address: '127.0.0.1', port_value: o.xdsPort } }),
        ...(o.sdsSocket !== undefined ? [h2Cluster('sds-grpc', { pipe: { path: o.sdsSocket } })] : []),
      ],
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    layered_runtime: { layers: [{ name: 'global config', static_layer: o.runtime ?? IstioBootstrapRuntime }, { name: 'admin', admin_layer: {} }] },
  };
  const safe = o.nodeId.replace(/[^a-zA-Z0-9.-]/g, '_');
  const config = join(o.dir, `envoy-${safe}.json`);
  const adminPath = join(o.dir, `admin-${safe}.txt`);
  writeFileSync(config, JSON.stringify(bootstrap));
  const baseId = 20_000 + Math.floor(Math.random() * 1_000_000);
  const p = spawnTracked(cleanups, envoy, ['-c', config, '--base-id', String(baseId), '--admin-address-path', adminPath, '--log-level', o.logLevel ?? 'warn', '--disable-hot-restart', '--concurrency', '1']);
  const adminPort = await waitFor('envoy admin address', async () => {
    const code = await Promise.race([p.exited, new Promise((r) => setTimeout(r, 0, undefined))]);
    if (code !== undefined) throw new Error(`envoy exited (${String(code)}):\n${p.output()}`);
    if (!existsSync(adminPath)) return undefined;
    const text = readFileSync(adminPath, 'utf8').trim();
    const port = Number(text.slice(text.lastIndexOf(':') + 1));
    return port > 0 ? port : undefined;
  }, 30_000);
  return { ...p, adminPort, admin: `http://127.0.0.1:${adminPort}`, nodeId: o.nodeId };
}
