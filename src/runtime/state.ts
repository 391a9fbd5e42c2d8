/**
 * The runtime's state directory (`.trellis/` by default): `state.json` records every process the
 * supervisor started (pid = process group id, since children lead their own groups), every port
 * it handed out, the gateway URL and admin ports, and transparent-mode network namespaces. It is
 * rewritten (atomically) on every change so that `trellis down` can clean up even after the
 * supervisor crashed, and `trellis status` can report without talking to the supervisor.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { GatewayRoute } from './gateway-urls.ts';

export type ProcessRole = 'control' | 'gateway' | 'sidecar' | 'workload' | 'addon';

/** One process the supervisor runs. */
export interface ProcessRecord {
  readonly role: ProcessRole;
  readonly name: string;
  /** Also the process group id. */
  pid: number;
  readonly log: string;
  /** Ports this process binds, by purpose (admin, health, xds, inbound:8080, app:8080, ...). */
  readonly ports: Record<string, number>;
  /** For sidecars and workloads: which replica. */
  readonly replica?: string;
  readonly workload?: string;
  readonly namespace?: string;
  /** For proxies: the xDS node id. */
  readonly nodeId?: string;
  /** Network namespace (transparent mode). */
  readonly netns?: string;
  /** Where its ports are reachable from the host, when not 127.0.0.1 (transparent mode: the namespace's IP). */
  readonly address?: string;
}

export type Phase = 'starting' | 'ready' | 'failed' | 'stopping' | 'stopped';

/** What `state.json` holds. */
export interface RuntimeState {
  version: 1;
  phase: Phase;
  /** Set when phase is failed: why, for `up --detach` to print. */
  error?: string;
  supervisorPid: number;
  stateDir: string;
  configDirs: string[];
  /** The runtime-owned directory of workload registrations (watched by the control plane). */
  registrationDir: string;
  capture: 'explicit' | 'transparent';
  gatewayUrl?: string;
  /** What the ingress gateway serves once ready (from its xDS routes), as curl commands. */
  gatewayRoutes?: GatewayRoute[];
  /** Istio Gateway server port -> local port. */
  gatewayPorts: Record<string, number>;
  controlDebugPort?: number;
  controlXdsPort?: number;
  /** `--with prometheus`: the Prometheus server scraping the mesh. */
  prometheusUrl?: string;
  processes: ProcessRecord[];
  /** Transparent mode: network namespaces, host veths and the private subnet used. */
  netns: { name: string; hostVeth: string; hostIp: string; podIp: string }[];
  /** Transparent mode: this mesh's host bridge, its subnet and the DNS responder's address. */
  bridge?: string;
  subnet?: string;
  dns?: string;
  startedAt: string;
  readyAt?: string;
}

/** Resolved paths of a state dir. */
export function statePaths(stateDir: string) {
  const dir = resolve(stateDir);
  return {
    dir,
    file: join(dir, 'state.json'),
    logs: join(dir, 'logs'),
    run: join(dir, 'run'),
    registrations: join(dir, 'registrations'),
  };
}

/** Reads the state file, or undefined when absent or unreadable. */
export function readState(stateDir: string): RuntimeState | undefined {
  try {
    const v = JSON.parse(readFileSync(statePaths(stateDir).file, 'utf8')) as RuntimeState;
    return v !== null && typeof v === 'object' && v.version === 1 ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the state file atomically. */
export function writeState(state: RuntimeState): void {
  const p = statePaths(state.stateDir);
  mkdirSync(p.dir, { recursive: true });
  const tmp = `${p.file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  renameSync(tmp, p.file);
}

/** Every host-loopback port recorded in a state (for `down`'s "ports are free" check); ports inside a workload namespace go with it. */
export function recordedPorts(state: RuntimeState): number[] {
  const out = new Set<number>();
  for (const p of state.processes) if (p.netns === undefined) for (const v of Object.values(p.ports)) if (v > 0) out.add(v);
  for (const v of Object.values(state.gatewayPorts)) out.add(v);
  return [...out].sort((a, b) => a - b);
}
