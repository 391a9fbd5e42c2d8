/**
 * One replica of a Workload: its sidecar proxy and its application process, started in that
 * order (the app only once the sidecar's `/healthz/ready` answers 200: issue scope 5), stopped in
 * the reverse order (the app first, then the sidecar drains). Every (re)start allocates fresh
 * loopback ports; once the app accepts connections on its ports the replica is registered (a
 * WorkloadEntry file, see registration.ts), and unregistered as soon as either process exits.
 * After the first successful start, an exit of either process restarts the whole replica with
 * exponential backoff, so a restarted workload gets a new endpoint and the mesh follows.
 * In transparent mode each incarnation gets its own network namespace (netns.ts): the sidecar
 * runs inside it as uid/gid 1337 on Istio's fixed ports, the app inside it on its declared ports
 * with no proxy settings, and the endpoint registered is the namespace's IP and the app's port.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { rmSync, writeFileSync } from 'node:fs';
import { issueToken, revokeToken, type TokenIdentity } from '../control/ca/tokens.ts';
import { TrellisError } from '../errors.ts';
import { Child, resolveCommand, trellisBin } from './child.ts';
import { createPodNetwork, inNetns, listensInNetns, removePodNetwork, type PodAddresses, type PodNetwork } from './netns.ts';
import type { WorkloadPlan } from './plan.ts';
import { allocatePorts } from './ports.ts';
import { register, unregister } from './registration.ts';
import type { ProcessRecord } from './state.ts';
import { sleep, waitFor, waitForHttp200, waitForTcp } from './wait.ts';

/** Everything a replica needs from the supervisor. */
export interface ReplicaContext {
  readonly xdsAddress: string;
  readonly logsDir: string;
  readonly runDir: string;
  readonly registrationDir: string;
  /** Every Service port in the mesh (explicit mode: one local outbound port each). */
  readonly servicePorts: readonly number[];
  readonly startTimeoutMs: number;
  readonly drainTimeout: string;
  readonly baseEnv: Readonly<Record<string, string>>;
  /** Transparent capture: where pod addresses come from. */
  readonly transparent?: { readonly addresses: PodAddresses };
  /** The mesh CA's token directory and trust domain: each sidecar incarnation gets its own token. */
  readonly identity?: WorkloadIdentityContext;
  /** Called whenever the replica's processes or ports change (the supervisor rewrites state). */
  onChange(): void;
  log(line: string): void;
}

/** How `up` gives a proxy its mesh identity. */
export interface WorkloadIdentityContext {
  readonly tokenDir: string;
  readonly trustDomain: string;
}

/**
 * Issues a token for one proxy incarnation: in a 0600 file (explicit capture), or, with `viaEnv`,
 * in the environment (transparent capture: the sidecar runs as uid 1337, which cannot enter the
 * state dir). Returns the proxy flags, the environment to add, and the revocation.
 */
export function identityArgs(id: WorkloadIdentityContext | undefined, runDir: string, name: string, identity: TokenIdentity, viaEnv = false): { args: string[]; env: Record<string, string>; revoke: () => void } {
  if (id === undefined) return { args: [], env: {}, revoke: () => {} };
  const token = issueToken(id.tokenDir, identity);
  const file = join(runDir, `${name}.token`);
  if (!viaEnv) writeFileSync(file, token, { mode: 0o600 });
  return {
    args: [...(viaEnv ? [] : ['--ca-token-file', file]), '--trust-domain', id.trustDomain],
    env: viaEnv ? { TRELLIS_CA_TOKEN: token } : {},
    revoke: () => {
      revokeToken(id.tokenDir, token);
      rmSync(file, { force: true });
    },
  };
}

/** Ports one incarnation of a replica uses. */
export interface ReplicaPorts {
  admin: number;
  health: number;
  prometheus: number;
  httpProxy: number;
  /** Service port -> local outbound port. */
  outbound: Record<string, number>;
  /** App (target) port -> sidecar inbound port. */
  inbound: Record<string, number>;
  /** App (target) port -> port the app really listens on. */
  app: Record<string, number>;
}

const rand = () => randomBytes(4).toString('hex').slice(0, 5);

export type ReplicaPhase = 'starting' | 'ready' | 'restarting' | 'stopped';

export class Replica {
  readonly plan: WorkloadPlan;
  readonly index: number;
  readonly ctx: ReplicaContext;
  id: string;
  ports: ReplicaPorts | undefined;
  sidecar: Child | undefined;
  app: Child | undefined;
  /** Transparent mode: this incarnation's network namespace. */
  pod: PodNetwork | undefined;
  phase: ReplicaPhase = 'starting';
  restarts = 0;
  private stopping = false;
  private watching: Promise<void> | undefined;
  private starting: Promise<void> | undefined;

  constructor(plan: WorkloadPlan, index: number, ctx: ReplicaContext) {
    this.plan = plan;
    this.index = index;
    this.ctx = ctx;
    this.id = `${plan.name}-${rand()}`;
  }

  get nodeId(): string {
    return `sidecar~${this.pod?.podIp ?? '127.0.0.1'}~${this.id}.${this.plan.namespace}~${this.plan.namespace}.svc.cluster.local`;
  }

  /** First start: up to `attempts` tries; throws a message naming the workload and its log tail. */
  start(attempts = 3): Promise<void> {
    this.starting = this.startLoop(attempts);
    return this.starting;
  }

  private async startLoop(attempts: number): Promise<void> {
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      if (this.stopping) return;
      try {
        await this.startOnce();
        this.phase = 'ready';
        this.ctx.onChange();
        this.watching = this.watch();
        return;
      } catch (err) {
        last = err;
        await this.stopProcesses();
        if (i + 1 < attempts) await sleep(200 * 2 ** i);
      }
    }
    throw new TrellisError('RUNTIME_WORKLOAD_FAILED', `workload ${this.plan.namespace}/${this.plan.name} (replica ${this.index + 1}) failed to start after ${attempts} attempts: ${(last as Error).message}`, { cause: last });
  }

  private async startOnce(): Promise<void> {
    if (this.ctx.transparent !== undefined) return this.startTransparent(this.ctx.transparent.addresses);
    const p = this.plan;
    this.id = `${p.name}-${rand()}`;
    const n = 4 + this.ctx.servicePorts.length + 2 * p.appPorts.length;
    const free = await allocatePorts(n);
    const ports: ReplicaPorts = { admin: free[0], health: free[1], prometheus: free[2], httpProxy: free[3], outbound: {}, inbound: {}, app: {} };
    let k = 4;
    for (const sp of this.ctx.servicePorts) ports.outbound[String(sp)] = free[k++];
    for (const ap of p.appPorts) {
      ports.inbound[String(ap)] = free[k++];
      ports.app[String(ap)] = free[k++];
    }
    this.ports = ports;
    const readyFile = join(this.ctx.runDir, `${this.id}.sidecar.json`);
    const metadata = {
      TRELLIS_OUTBOUND_ADDRESS: '127.0.0.1',
      TRELLIS_OUTBOUND_PORTS: ports.outbound,
      TRELLIS_HTTP_PROXY_PORT: ports.httpProxy,
      TRELLIS_INBOUND_ADDRESS: '127.0.0.1',
      TRELLIS_INBOUND_PORTS: ports.inbound,
      TRELLIS_APP_PORTS: ports.app,
      TRELLIS_CAPTURE_MODE: 'explicit',
      WORKLOAD_NAME: p.name,
      INSTANCE_IPS: '127.0.0.1',
    };
    const labels = Object.entries(p.labels).map(([k2, v]) => `${k2}=${v}`).join(',');
    const ident = this.#identity();
    this.sidecar = new Child({
      name: `sidecar ${this.id}`,
      logFile: join(this.ctx.logsDir, `${this.id}.sidecar.log`),
      env: this.ctx.baseEnv,
      command: ['trellis', 'proxy', ...ident.args, '--xds', this.ctx.xdsAddress, '--node-id', this.nodeId, '--kind', 'sidecar',
        '--namespace', p.namespace, ...(labels ? ['--labels', labels] : []), '--service-account', p.spec.serviceAccount,
        '--metadata', JSON.stringify(metadata), '--admin-port', String(ports.admin), '--health-port', String(ports.health),
        '--prometheus-port', String(ports.prometheus), '--drain-timeout', this.ctx.drainTimeout, '--ready-file', readyFile],
    });
    this.ctx.onChange();
    const sidecar = this.sidecar;
    const sidecarGone = () => sidecar.exitReason() !== undefined ? `sidecar ${sidecar.exitReason()}\n${sidecar.logTail()}` : undefined;
    await waitForHttp200(`sidecar of ${p.name}`, ports.health, '/healthz/ready', this.ctx.startTimeoutMs, () => (this.stopping ? 'stopped' : sidecarGone()));
    if (this.stopping) throw new TrellisError('RUNTIME_STOPPED', 'stopped while starting');

    const firstApp = p.appPorts[0];
    const env: Record<string, string> = {
      ...this.ctx.baseEnv,
      SERVICE_NAME: p.services[0] ?? p.name,
      ...(p.labels.version !== undefined ? { SERVICE_VERSION: p.labels.version } : {}),
      ...p.spec.env,
      POD_NAME: this.id,
      NAMESPACE: p.namespace,
      HTTP_PROXY: `http://127.0.0.1:${ports.httpProxy}`,
      http_proxy: `http://127.0.0.1:${ports.httpProxy}`,
      TRELLIS_OUTBOUND_PORTS: JSON.stringify(ports.outbound),
      TRELLIS_APP_PORTS: JSON.stringify(ports.app),
      ...(firstApp !== undefined ? { PORT: String(ports.app[String(firstApp)]) } : {}),
    };
    this.app = new Child({
      name: `workload ${this.id}`,
      logFile: join(this.ctx.logsDir, `${this.id}.log`),
      env,
      cwd: p.spec.workingDir,
      command: p.spec.command,
    });
    this.ctx.onChange();
    const app = this.app;
    const appGone = () => {
      if (this.stopping) return 'stopped';
      if (app.exitReason() !== undefined) {
        const tail = app.logTail();
        return `command \`${p.spec.command.join(' ')}\` ${app.exitReason()}${tail ? `; last output:\n${tail}` : ' (no output)'}`;
      }
      return sidecarGone();
    };
    for (const ap of p.appPorts) {
      await waitForTcp(`workload ${p.name} on port ${ports.app[String(ap)]}`, ports.app[String(ap)], this.ctx.startTimeoutMs, appGone);
    }
    if (p.appPorts.length === 0) {
      await sleep(300);
      const why = appGone();
      if (why !== undefined) throw new TrellisError('RUNTIME_START', why);
    }
    if (p.selectedPorts.length > 0) {
      const byName: Record<string, number> = {};
      for (const sp of p.selectedPorts) byName[sp.name] = ports.inbound[String(sp.targetPort)];
      register(this.ctx.registrationDir, {
        id: this.id, workload: p.name, namespace: p.namespace, labels: p.labels,
        serviceAccount: p.spec.serviceAccount, address: '127.0.0.1', ports: byName,
      });
    }
  }

  /** After the first start: restart the whole replica when either process exits. */
  private async watch(): Promise<void> {
    let backoff = 500;
    while (!this.stopping) {
      const started = Date.now();
      await Promise.race([this.app!.exitPromise, this.sidecar!.exitPromise]);
      if (this.stopping) return;
      const who = this.app!.exited ? this.app! : this.sidecar!;
      this.ctx.log(`${who.name} ${who.exitReason()}; restarting replica ${this.plan.name} #${this.index + 1}`);
      this.phase = 'restarting';
      unregister(this.ctx.registrationDir, this.id, this.plan.namespace);
      await this.stopProcesses();
      this.ctx.onChange();
      if (Date.now() - started > 30_000) backoff = 500;
      for (;;) {
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 10_000);
        if (this.stopping) return;
        try {
          this.restarts++;
          await this.startOnce();
          this.phase = 'ready';
          this.ctx.onChange();
          break;
        } catch (err) {
          this.ctx.log(`replica ${this.plan.name} #${this.index + 1}: restart failed: ${(err as Error).message}`);
          await this.stopProcesses();
        }
      }
    }
  }

  #revokeToken: () => void = () => {};

  /** A token for this incarnation's sidecar (the previous one revoked): proxy flags and environment. */
  #identity(viaEnv = false): { args: string[]; env: Record<string, string> } {
    this.#revokeToken();
    const t = identityArgs(this.ctx.identity, this.ctx.runDir, `${this.id}.sidecar`, { namespace: this.plan.namespace, serviceAccount: this.plan.spec.serviceAccount, workload: this.id }, viaEnv);
    this.#revokeToken = t.revoke;
    return t;
  }

  /** App first (SIGTERM, 5 s grace), then the sidecar drains. */
  private async stopProcesses(): Promise<void> {
    unregister(this.ctx.registrationDir, this.id, this.plan.namespace);
    await this.app?.stop(5000);
    await this.sidecar?.stop(8000);
    this.#revokeToken();
    this.#revokeToken = () => {};
    const pod = this.pod;
    if (pod !== undefined) {
      await removePodNetwork(pod);
      this.ctx.transparent?.addresses.release(pod.podIp);
      this.pod = undefined;
      this.ctx.onChange();
    }
  }

  /** One transparent-mode incarnation: namespace, sidecar (uid 1337) inside it, then the app. */
  private async startTransparent(addresses: PodAddresses): Promise<void> {
    const p = this.plan;
    this.id = `${p.name}-${rand()}`;
    const pod: PodNetwork = { netns: `trellis-${this.id}`, hostVeth: `tv${randomBytes(3).toString('hex')}`, podIp: addresses.take(), hostIp: addresses.net.address };
    this.pod = pod;
    const ports: ReplicaPorts = { admin: 15000, health: 15021, prometheus: 15090, httpProxy: 0, outbound: {}, inbound: {}, app: {} };
    for (const ap of p.appPorts) {
      ports.inbound[String(ap)] = 15006;
      ports.app[String(ap)] = ap;
    }
    this.ports = ports;
    this.ctx.onChange(); // recorded before it exists, so `down` after a crash finds it
    await createPodNetwork(pod, p.namespace, addresses.net);
    if (this.stopping) throw new TrellisError('RUNTIME_STOPPED', 'stopped while starting');
    const metadata = { TRELLIS_CAPTURE_MODE: 'transparent', WORKLOAD_NAME: p.name, INSTANCE_IPS: pod.podIp };
    const labels = Object.entries(p.labels).map(([k2, v]) => `${k2}=${v}`).join(',');
    const ident = this.#identity(true);
    this.sidecar = new Child({
      name: `sidecar ${this.id}`,
      logFile: join(this.ctx.logsDir, `${this.id}.sidecar.log`),
      env: { ...this.ctx.baseEnv, ...ident.env },
      command: inNetns(pod.netns, [process.execPath, trellisBin, 'proxy', ...ident.args, '--xds', this.ctx.xdsAddress, '--node-id', this.nodeId, '--kind', 'sidecar',
        '--namespace', p.namespace, ...(labels ? ['--labels', labels] : []), '--service-account', p.spec.serviceAccount, '--ip', pod.podIp,
        '--metadata', JSON.stringify(metadata), '--admin-address', '0.0.0.0', '--admin-port', String(ports.admin), '--health-port', String(ports.health),
        '--prometheus-port', String(ports.prometheus), '--drain-timeout', this.ctx.drainTimeout], true),
    });
    this.ctx.onChange();
    const sidecar = this.sidecar;
    const sidecarGone = () => sidecar.exitReason() !== undefined ? `sidecar ${sidecar.exitReason()}\n${sidecar.logTail()}` : undefined;
    await waitForHttp200(`sidecar of ${p.name}`, ports.health, '/healthz/ready', this.ctx.startTimeoutMs, () => (this.stopping ? 'stopped' : sidecarGone()), pod.podIp);
    if (this.stopping) throw new TrellisError('RUNTIME_STOPPED', 'stopped while starting');

    const env: Record<string, string> = {
      ...this.ctx.baseEnv,
      SERVICE_NAME: p.services[0] ?? p.name,
      ...(p.labels.version !== undefined ? { SERVICE_VERSION: p.labels.version } : {}),
      ...p.spec.env,
      POD_NAME: this.id,
      NAMESPACE: p.namespace,
      INSTANCE_IP: pod.podIp,
      ...(p.appPorts[0] !== undefined ? { PORT: String(p.appPorts[0]) } : {}),
    };
    this.app = new Child({
      name: `workload ${this.id}`,
      logFile: join(this.ctx.logsDir, `${this.id}.log`),
      env,
      cwd: p.spec.workingDir,
      command: inNetns(pod.netns, resolveCommand(p.spec.command)),
    });
    this.ctx.onChange();
    const app = this.app;
    const appGone = () => {
      if (this.stopping) return 'stopped';
      if (app.exitReason() !== undefined) {
        const tail = app.logTail();
        return `command \`${p.spec.command.join(' ')}\` ${app.exitReason()}${tail ? `; last output:\n${tail}` : ' (no output)'}`;
      }
      return sidecarGone();
    };
    for (const ap of p.appPorts) await waitFor(`workload ${p.name} on port ${ap} in ${pod.netns}`, this.ctx.startTimeoutMs, () => listensInNetns(pod.netns, ap), appGone);
    if (p.appPorts.length === 0) {
      await sleep(300);
      const why = appGone();
      if (why !== undefined) throw new TrellisError('RUNTIME_START', why);
    }
    if (p.selectedPorts.length > 0) {
      const byName: Record<string, number> = {};
      for (const sp of p.selectedPorts) byName[sp.name] = sp.targetPort;
      register(this.ctx.registrationDir, {
        id: this.id, workload: p.name, namespace: p.namespace, labels: p.labels,
        serviceAccount: p.spec.serviceAccount, address: pod.podIp, ports: byName,
      });
    }
  }

  /** Stops the replica for good. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.starting?.catch(() => undefined);
    await this.stopProcesses();
    this.phase = 'stopped';
    await this.watching?.catch(() => undefined);
  }

  private where(): { netns?: string; address?: string } {
    return this.pod !== undefined ? { netns: this.pod.netns, address: this.pod.podIp } : {};
  }

  /** State records of this replica's live processes. */
  records(): ProcessRecord[] {
    const out: ProcessRecord[] = [];
    const ports = this.ports;
    if (this.sidecar !== undefined && !this.sidecar.exited && ports !== undefined) {
      const pr: Record<string, number> = { admin: ports.admin, health: ports.health, prometheus: ports.prometheus, ...(ports.httpProxy > 0 ? { httpProxy: ports.httpProxy } : {}) };
      for (const [k, v] of Object.entries(ports.outbound)) pr[`outbound:${k}`] = v;
      for (const [k, v] of Object.entries(ports.inbound)) pr[`inbound:${k}`] = v;
      out.push({ role: 'sidecar', name: this.sidecar.name, pid: this.sidecar.pid, log: this.sidecar.logFile, ports: pr, replica: this.id, workload: this.plan.name, namespace: this.plan.namespace, nodeId: this.nodeId, ...this.where() });
    }
    if (this.app !== undefined && !this.app.exited && ports !== undefined) {
      const pr: Record<string, number> = {};
      for (const [k, v] of Object.entries(ports.app)) pr[`app:${k}`] = v;
      out.push({ role: 'workload', name: this.app.name, pid: this.app.pid, log: this.app.logFile, ports: pr, replica: this.id, workload: this.plan.name, namespace: this.plan.namespace, ...this.where() });
    }
    return out;
  }
}
