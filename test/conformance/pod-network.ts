/**
 * Pod networking for the mesh profile's transparent capture, made without touching the host's
 * network: a "node" namespace `tcnf-<pid>-<rand>-node` holds a bridge (10.213.0.1/24) and the
 * control plane; every pod gets a namespace `tcnf-<pid>-<rand>-<i>` whose `eth0` is a veth
 * created straight from the node namespace (no interface ever appears on the host), a pod IP
 * 10.213.0.<i+2>, a default route via the bridge, and Istio's nat rules (src/runtime/netns.ts
 * `podIptablesRules`: outbound TCP not owned by uid 1337 -> 15001, inbound -> 15006). The prefix
 * is not `trellis-`, so `trellis up` (which refuses to start next to `trellis-*` namespaces) and
 * its tests running concurrently never see ours. Removing a namespace removes its veth and
 * rules; `close` removes them all, and `create` first removes namespaces left by a dead run
 * (the pid in the name is not alive). Also the in-pod client (netns-agent.ts) handle.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { inNetns, podIptablesRules, run, transparentSupport, which } from '../../src/runtime/netns.ts';
import type { GrpcRequestSpec, HttpRequestSpec, Reply } from './clients.ts';
import { RepoRoot, trackChild } from './processes.ts';

/** Prefix of every namespace this module creates. */
export const NetnsPrefix = 'tcnf-';
/** The bridge address in the node namespace (control plane's xDS address for sidecars). */
export const NodeAddress = '10.213.0.1';

/** Why the mesh profile cannot use transparent capture here, or undefined. */
export function transparentUnavailable(): string | undefined {
  return transparentSupport();
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** One pod's namespace. */
export interface PodNet {
  readonly netns: string;
  readonly ip: string;
}

/** The node namespace, its bridge and the pod namespaces joined to it. */
export class ClusterNetwork {
  readonly prefix: string;
  readonly nodeNs: string;
  readonly pods: PodNet[] = [];
  #created: string[] = [];

  private constructor() {
    this.prefix = `${NetnsPrefix}${process.pid}-${randomBytes(2).toString('hex')}`;
    this.nodeNs = `${this.prefix}-node`;
  }

  /** Creates the node namespace with its bridge; on failure removes what it made. */
  static async create(): Promise<ClusterNetwork> {
    await removeStale();
    const net = new ClusterNetwork();
    try {
      await net.#addNs(net.nodeNs);
      await run('ip', ['-n', net.nodeNs, 'link', 'set', 'lo', 'up']);
      await run('ip', ['-n', net.nodeNs, 'link', 'add', 'br0', 'type', 'bridge']);
      await run('ip', ['-n', net.nodeNs, 'addr', 'add', `${NodeAddress}/24`, 'dev', 'br0']);
      await run('ip', ['-n', net.nodeNs, 'link', 'set', 'br0', 'up']);
      return net;
    } catch (err) {
      await net.close();
      throw err;
    }
  }

  async #addNs(name: string): Promise<void> {
    this.#created.push(name); // recorded first: a half-made namespace is removed too
    liveNamespaces.add(name);
    await run('ip', ['netns', 'add', name]);
  }

  /** A new pod namespace with its address and capture rules. */
  async addPod(): Promise<PodNet> {
    const i = this.pods.length;
    if (i > 250) throw new Error('pod-network: at most 251 pods');
    const pod: PodNet = { netns: `${this.prefix}-${i}`, ip: `10.213.0.${i + 2}` };
    await this.#addNs(pod.netns);
    await run('ip', ['-n', this.nodeNs, 'link', 'add', `v${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.netns]);
    await run('ip', ['-n', this.nodeNs, 'link', 'set', `v${i}`, 'master', 'br0', 'up']);
    await run('ip', ['-n', pod.netns, 'addr', 'add', `${pod.ip}/24`, 'dev', 'eth0']);
    await run('ip', ['-n', pod.netns, 'link', 'set', 'eth0', 'up']);
    await run('ip', ['-n', pod.netns, 'link', 'set', 'lo', 'up']);
    await run('ip', ['-n', pod.netns, 'route', 'add', 'default', 'via', NodeAddress]);
    await run('ip', ['netns', 'exec', pod.netns, which('iptables-restore') ?? 'iptables-restore'], { input: podIptablesRules() });
    this.pods.push(pod);
    return pod;
  }

  /** Removes every namespace made (veths and rules go with them); tolerates absence. */
  async close(): Promise<void> {
    for (const ns of this.#created.reverse()) {
      await run('ip', ['netns', 'delete', ns]).catch(() => undefined);
      liveNamespaces.delete(ns);
    }
    this.#created = [];
  }
}

const liveNamespaces = new Set<string>();

/** Synchronously deletes every namespace this process still has (signal handlers, after killAll). */
export function removeNamespacesSync(): void {
  for (const ns of liveNamespaces) {
    try {
      execFileSync(which('ip') ?? 'ip', ['netns', 'delete', ns], { stdio: 'ignore', timeout: 5000 });
    } catch {
      // gone already
    }
  }
  liveNamespaces.clear();
}

/** Removes `tcnf-<pid>-*` namespaces whose run (pid) is gone. */
async function removeStale(): Promise<void> {
  const list = await run('ip', ['netns', 'list']).catch(() => '');
  for (const name of list.split('\n').map((l) => l.split(' ')[0])) {
    const m = /^tcnf-(\d+)-/.exec(name);
    if (m && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) await run('ip', ['netns', 'delete', name]).catch(() => undefined);
  }
}

/** The in-pod client (netns-agent.ts): requests sent from inside a pod namespace. */
export class PodClient {
  readonly proc: ChildProcess;
  #next = 0;
  #pending = new Map<number, (r: Reply) => void>();
  #ready: Promise<void>;
  #stderr: string[] = [];

  constructor(netns: string) {
    const cmd = inNetns(netns, [process.execPath, join(RepoRoot, 'test/conformance/netns-agent.ts')]);
    this.proc = spawn(cmd[0], cmd.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], cwd: RepoRoot });
    trackChild(this.proc);
    let markReady: () => void = () => {};
    let fail: (e: Error) => void = () => {};
    this.#ready = new Promise<void>((res, rej) => ((markReady = res), (fail = rej)));
    this.#ready.catch(() => undefined);
    this.proc.stderr!.setEncoding('utf8').on('data', (c: string) => {
      this.#stderr.push(c);
      if (this.#stderr.length > 20) this.#stderr.shift();
    });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      if (line === 'ready') return markReady();
      try {
        const m = JSON.parse(line) as { id: number; reply: Reply };
        this.#pending.get(m.id)?.(m.reply);
        this.#pending.delete(m.id);
      } catch {
        // not ours
      }
    });
    this.proc.once('exit', () => {
      fail(new Error(`pod client in ${netns} exited: ${this.#stderr.join('')}`));
      for (const r of this.#pending.values()) r({ status: 0, headers: {}, error: 'pod client exited' });
      this.#pending.clear();
    });
  }

  async #send(msg: { http?: HttpRequestSpec; grpc?: GrpcRequestSpec }): Promise<Reply> {
    await this.#ready;
    const id = this.#next++;
    return new Promise<Reply>((resolve) => {
      this.#pending.set(id, resolve);
      this.proc.stdin!.write(JSON.stringify({ id, ...msg }) + '\n');
    });
  }

  http(spec: HttpRequestSpec): Promise<Reply> {
    return this.#send({ http: spec });
  }

  grpc(spec: GrpcRequestSpec): Promise<Reply> {
    return this.#send({ grpc: spec });
  }

  /** Ends the agent (stdin closed, then SIGKILL after a grace period). */
  async close(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const done = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.stdin!.end();
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 2000);
    await done;
    clearTimeout(t);
  }
}
