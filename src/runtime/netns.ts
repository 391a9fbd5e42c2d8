/**
 * Network plumbing for transparent capture, done with `ip` and `iptables` as Istio's CNI / init
 * container does for a pod. Each running mesh owns one Linux bridge `trellis<K>` in the host
 * namespace holding 10.212.K.1/24 (the host side: DNS responder, control plane, ingress gateway
 * reach workloads through it), K being the first slot free when the mesh starts, so several meshes
 * (several state dirs, or CI jobs sharing a machine) run side by side. Each workload replica gets a
 * network namespace `trellis-<replica id>` joined to its mesh's bridge by a veth pair (`eth0`
 * inside, address 10.212.K.N/24, default route via 10.212.K.1, lo up) and Istio's nat
 * rules inside it: outbound TCP not owned by the proxy (uid/gid 1337) and not to 127.0.0.1 is
 * REDIRECTed to 15001, inbound TCP except the proxy's own ports to 15006, and the proxy's own
 * connections to its pod IP (over lo) to 15006 too. Namespace-local rules
 * vanish with the namespace; the host's iptables are never touched. `/etc/netns/<ns>/resolv.conf`
 * (bind-mounted by `ip netns exec`) points the namespace at the runtime's DNS responder with the
 * Kubernetes search path. Everything created is removable by name alone (`down` after a crash).
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, mkdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { TrellisError } from '../errors.ts';
import { originalDstSupport } from '../proxy/listener/original-dst.ts';

/** Bridges are `trellis<slot>`; slot K holds 10.212.K.0/24. */
const BridgePrefix = 'trellis';
const SlotCount = 256;
export const SubnetPrefix = 24;
/** Prefix of every namespace this runtime creates. */
export const NetnsPrefix = 'trellis-';
/** The proxy's uid/gid, excluded from outbound capture (Istio's 1337). */
export const ProxyUid = 1337;
/** Ports the proxy itself serves inside a namespace (admin, health, merged metrics, Prometheus): never redirected. */
export const ProxyOwnPorts = Object.freeze([15000, 15020, 15021, 15090]);

/** Absolute path of an executable on PATH or in the sbin dirs; undefined when absent. */
export function which(name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/local/sbin']) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Outside tools transparent capture runs (packages iproute2, iptables, util-linux). */
export const TransparentTools = Object.freeze(['ip', 'iptables', 'iptables-restore', 'setpriv', 'ss']);

/** Why transparent capture cannot run here (not root, a tool or the addon missing), or undefined. */
export function transparentSupport(): string | undefined {
  if (process.platform !== 'linux') return 'transparent capture needs Linux (network namespaces, iptables REDIRECT, SO_ORIGINAL_DST)';
  if (process.getuid?.() !== 0) return 'transparent capture needs root (it creates network namespaces, veth pairs and iptables rules); run with sudo, or use --capture explicit';
  const missing = TransparentTools.filter((t) => which(t) === undefined);
  if (missing.length > 0) return `transparent capture needs ${missing.join(', ')} on PATH (packages iproute2, iptables, util-linux)`;
  return originalDstSupport();
}

/** Runs a command (bounded); rejects with its stderr. */
export function run(cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(which(cmd) ?? cmd, [...args], { timeout: opts.timeoutMs ?? 10_000, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new TrellisError('RUNTIME_NET', `\`${cmd} ${args.join(' ')}\` failed: ${(stderr || err.message).trim()}`, { cause: err }));
      else resolve(stdout);
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

async function quiet(cmd: string, args: readonly string[]): Promise<void> {
  await run(cmd, args).catch(() => undefined);
}

/** One mesh's share of the host network: its bridge, the bridge's address, its /24. */
export interface MeshNetwork {
  readonly bridge: string;
  /** Host side of the bridge (x.x.x.1): DNS responder and control plane listen here for the workloads. */
  readonly address: string;
  /** `10.212.K.0/24` */
  readonly subnet: string;
}

/** The network of slot `k` (0-255). */
export function slotNetwork(k: number): MeshNetwork {
  return { bridge: `${BridgePrefix}${k}`, address: `10.212.${k}.1`, subnet: `10.212.${k}.0/${SubnetPrefix}` };
}

/** The slot's network when `bridge` is one of ours (`trellis<K>`), else undefined. */
export function networkOfBridge(bridge: string): MeshNetwork | undefined {
  const m = new RegExp(`^${BridgePrefix}(\\d{1,3})$`).exec(bridge);
  return m !== null && Number(m[1]) < SlotCount ? slotNetwork(Number(m[1])) : undefined;
}

/**
 * Creates and claims the first free slot's bridge. `ip link add` is the claim: it fails when another
 * mesh (running, or crashed and not yet taken down) holds that name, and we move on, so two meshes
 * starting at once never share a bridge. Slots whose /24 another interface already uses are skipped.
 */
export async function claimMeshNetwork(onClaimed?: (net: MeshNetwork) => void): Promise<MeshNetwork> {
  const used = await run('ip', ['-o', '-4', 'addr', 'show']);
  for (let k = 0; k < SlotCount; k++) {
    const net = slotNetwork(k);
    if (new RegExp(`\\b10\\.212\\.${k}\\.\\d+/`).test(used)) continue;
    try {
      await run('ip', ['link', 'add', net.bridge, 'type', 'bridge']);
    } catch {
      continue; // taken
    }
    onClaimed?.(net); // recorded before anything else can fail, so `down` after a crash removes it
    try {
      await run('ip', ['addr', 'add', `${net.address}/${SubnetPrefix}`, 'dev', net.bridge]);
      await run('ip', ['link', 'set', net.bridge, 'up']);
    } catch (err) {
      await removeBridge(net.bridge);
      throw err;
    }
    return net;
  }
  throw new TrellisError('RUNTIME_NET', `no free network for transparent capture: every bridge ${BridgePrefix}0-${SlotCount - 1} exists or its 10.212.K.0/24 is in use; \`trellis down\` the meshes you no longer need`);
}

/** Deletes a mesh's bridge (no error when absent). */
export async function removeBridge(bridge: string): Promise<void> {
  await quiet('ip', ['link', 'delete', bridge]);
}

/** One workload namespace. */
export interface PodNetwork {
  readonly netns: string;
  readonly hostVeth: string;
  readonly podIp: string;
  readonly hostIp: string;
}

/** Extra exclusions, as Istio's `traffic.sidecar.istio.io/exclude{Inbound,Outbound}Ports` annotations give them. */
export interface CaptureExclusions {
  readonly excludeInboundPorts?: readonly number[];
  readonly excludeOutboundPorts?: readonly number[];
}

/**
 * Istio's nat table for a pod (istio-iptables), as iptables-restore input. `trellis up --capture
 * transparent` and `trellis capture` (the injected init container) both apply exactly this.
 */
export function podIptablesRules(ex: CaptureExclusions = {}): string {
  return [
    '*nat',
    ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
    ':ISTIO_INBOUND - [0:0]', ':ISTIO_IN_REDIRECT - [0:0]', ':ISTIO_OUTPUT - [0:0]', ':ISTIO_REDIRECT - [0:0]',
    '-A PREROUTING -p tcp -j ISTIO_INBOUND',
    ...[...ProxyOwnPorts, ...(ex.excludeInboundPorts ?? [])].map((p) => `-A ISTIO_INBOUND -p tcp --dport ${p} -j RETURN`),
    '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT',
    '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
    '-A OUTPUT -p tcp -j ISTIO_OUTPUT',
    ...(ex.excludeOutboundPorts ?? []).map((p) => `-A ISTIO_OUTPUT -p tcp --dport ${p} -j RETURN`),
    // The proxy dialing its own pod IP (a service whose endpoint is this pod) goes over lo and
    // never meets PREROUTING: send it to inbound, as istio-iptables does.
    `-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner ${ProxyUid} -j ISTIO_IN_REDIRECT`,
    `-A ISTIO_OUTPUT -m owner --uid-owner ${ProxyUid} -j RETURN`,
    `-A ISTIO_OUTPUT -m owner --gid-owner ${ProxyUid} -j RETURN`,
    '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
    '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
    '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
    'COMMIT',
    '',
  ].join('\n');
}

/** resolv.conf for a namespace: the runtime's responder at `nameserver` and Kubernetes' search path for `namespace`. */
export function resolvConf(namespace: string, nameserver: string, domainSuffix = 'cluster.local'): string {
  return `# written by trellis up (transparent capture)\nnameserver ${nameserver}\nsearch ${namespace}.svc.${domainSuffix} svc.${domainSuffix} ${domainSuffix}\noptions ndots:5\n`;
}

/** Creates a workload namespace wired to its mesh's bridge with capture rules. On failure removes what it made. */
export async function createPodNetwork(pod: PodNetwork, namespace: string, net: MeshNetwork): Promise<void> {
  const { netns: ns, hostVeth, podIp } = pod;
  const peer = `${hostVeth}p`;
  try {
    mkdirSync(`/etc/netns/${ns}`, { recursive: true });
    writeFileSync(`/etc/netns/${ns}/resolv.conf`, resolvConf(namespace, net.address));
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', peer]);
    await run('ip', ['link', 'set', peer, 'netns', ns]);
    await run('ip', ['link', 'set', hostVeth, 'master', net.bridge, 'up']);
    await run('ip', ['-n', ns, 'link', 'set', peer, 'name', 'eth0']);
    await run('ip', ['-n', ns, 'addr', 'add', `${podIp}/${SubnetPrefix}`, 'dev', 'eth0']);
    await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await run('ip', ['-n', ns, 'route', 'add', 'default', 'via', net.address]);
    await run('ip', ['netns', 'exec', ns, which('iptables-restore') ?? 'iptables-restore'], { input: podIptablesRules() });
  } catch (err) {
    await removePodNetwork(pod);
    throw err;
  }
}

/** Removes a workload namespace, its veth and its /etc/netns dir (each step tolerates absence). */
export async function removePodNetwork(pod: Pick<PodNetwork, 'netns' | 'hostVeth'>): Promise<void> {
  await quiet('ip', ['link', 'delete', pod.hostVeth]);
  await quiet('ip', ['netns', 'delete', pod.netns]);
  rmSync(`/etc/netns/${pod.netns}`, { recursive: true, force: true });
  try {
    rmdirSync('/etc/netns'); // only when empty: other namespaces' config stays
  } catch {
    // not empty, or gone
  }
}

/** `cmd...` run inside `netns` (resolv.conf bind-mounted), optionally as the proxy's uid/gid. */
export function inNetns(netns: string, command: readonly string[], asProxy = false): string[] {
  const ip = which('ip') ?? 'ip';
  const drop = asProxy ? [which('setpriv') ?? 'setpriv', `--reuid=${ProxyUid}`, `--regid=${ProxyUid}`, '--clear-groups'] : [];
  return [ip, 'netns', 'exec', netns, ...drop, ...command];
}

/** True when something listens on TCP `port` inside `netns`. */
export async function listensInNetns(netns: string, port: number): Promise<boolean> {
  try {
    const out = await run('ip', ['netns', 'exec', netns, which('ss') ?? 'ss', '-Hltn', `sport = :${port}`], { timeoutMs: 3000 });
    return out.trim() !== '';
  } catch {
    return false;
  }
}

/** Names of existing namespaces, interfaces (host) and /etc/netns dirs with our prefixes: what `down` must leave empty. */
export async function leftovers(): Promise<{ netns: string[]; links: string[] }> {
  const ns = (await run('ip', ['netns', 'list']).catch(() => '')).split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(NetnsPrefix));
  const links = (await run('ip', ['-o', 'link', 'show']).catch(() => ''))
    .split('\n').map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? '').filter((n) => networkOfBridge(n) !== undefined || /^tv[0-9a-f]{6}$/.test(n));
  return { netns: ns, links };
}

/** Hands out a mesh's pod addresses, .2 - .254 of its /24. */
export class PodAddresses {
  readonly #used = new Set<string>();
  readonly #base: string;
  readonly net: MeshNetwork;

  constructor(net: MeshNetwork) {
    this.net = net;
    this.#base = net.address.slice(0, net.address.lastIndexOf('.') + 1);
  }

  take(): string {
    for (let i = 2; i < 255; i++) {
      const ip = `${this.#base}${i}`;
      if (!this.#used.has(ip)) {
        this.#used.add(ip);
        return ip;
      }
    }
    throw new TrellisError('RUNTIME_NET', `no free workload address left in ${this.net.subnet} (at most 253 replicas per mesh in transparent mode)`);
  }

  release(ip: string): void {
    this.#used.delete(ip);
  }
}
