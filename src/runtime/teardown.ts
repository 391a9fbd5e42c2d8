/**
 * `trellis down`'s work, usable without the supervisor: read `state.json`, ask the supervisor to
 * stop (SIGTERM, bounded wait), then stop every recorded process group that is still alive (the
 * supervisor may have crashed), remove the registration dir, and verify every recorded port is
 * free again. Transparent mode: every recorded network namespace (with its veth and /etc/netns
 * dir) and the bridge are removed, and verified gone. Idempotent: no state file, or a state whose
 * processes are all gone, is success.
 */
import { rmSync } from 'node:fs';
import { alive, groupAlive, stopGroup } from './child.ts';
import { isListening } from './ports.ts';
import { leftovers, removeBridge, removePodNetwork } from './netns.ts';
import { readState, recordedPorts, statePaths } from './state.ts';
import { sleep } from './wait.ts';

export interface TeardownResult {
  /** False when there was no state to act on. */
  readonly found: boolean;
  readonly stoppedGroups: number;
  /** Ports still accepting connections after teardown (should be empty). */
  readonly busyPorts: number[];
  /** Network namespaces and interfaces of the run still present after teardown (should be empty). */
  readonly leftovers: string[];
}

/** Stops a run recorded in `stateDir`. */
export async function teardown(stateDir: string, log: (line: string) => void = () => {}): Promise<TeardownResult> {
  const state = readState(stateDir);
  if (state === undefined) return { found: false, stoppedGroups: 0, busyPorts: [], leftovers: [] };
  if (state.supervisorPid !== process.pid && alive(state.supervisorPid)) {
    log(`stopping supervisor (pid ${state.supervisorPid})`);
    try {
      process.kill(state.supervisorPid, 'SIGTERM');
    } catch {
      // gone already
    }
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && alive(state.supervisorPid)) await sleep(50);
    if (alive(state.supervisorPid)) {
      log(`supervisor did not stop in 30 s; killing it`);
      await stopGroup(state.supervisorPid, 0);
    }
  }
  // Re-read: the supervisor rewrote the state while stopping; the old record still lists what
  // might have been left behind by a crash.
  const after = readState(stateDir) ?? state;
  const groups = new Map<number, string>();
  for (const s of [state, after]) for (const p of s.processes) groups.set(p.pid, p.name);
  // workloads before sidecars before gateway and control, as the supervisor does
  const order = (role: string) => ({ workload: 0, sidecar: 1, gateway: 2, control: 3 })[role] ?? 4;
  const recs = [...state.processes, ...after.processes].sort((a, b) => order(a.role) - order(b.role));
  let stopped = 0;
  const done = new Set<number>();
  for (const p of recs) {
    if (done.has(p.pid) || p.pid <= 0) continue;
    done.add(p.pid);
    if (!groupAlive(p.pid) && !alive(p.pid)) continue;
    log(`stopping ${p.name} (pid ${p.pid})`);
    await stopGroup(p.pid, p.role === 'workload' ? 5000 : 8000);
    stopped++;
  }
  rmSync(statePaths(stateDir).registrations, { recursive: true, force: true });
  const pods = new Map<string, { netns: string; hostVeth: string }>();
  for (const s of [state, after]) for (const n of s.netns ?? []) pods.set(n.name, { netns: n.name, hostVeth: n.hostVeth });
  for (const pod of pods.values()) {
    log(`removing network namespace ${pod.netns}`);
    await removePodNetwork(pod);
  }
  const bridge = state.bridge ?? after.bridge;
  if (bridge !== undefined) await removeBridge(bridge);
  const left: string[] = [];
  if (pods.size > 0 || bridge !== undefined) {
    const now = await leftovers();
    left.push(...now.netns.filter((n) => pods.has(n)), ...now.links.filter((l) => l === bridge || [...pods.values()].some((p) => p.hostVeth === l)));
  }
  const busy: number[] = [];
  for (const port of recordedPorts(state)) {
    let open = await isListening(port);
    for (let i = 0; open && i < 40; i++) {
      await sleep(50);
      open = await isListening(port);
    }
    if (open) busy.push(port);
  }
  rmSync(statePaths(stateDir).file, { force: true });
  return { found: true, stoppedGroups: stopped, busyPorts: busy, leftovers: left };
}
