/**
 * One replica of a Workload: its sidecar proxy and its application process, started in that
 * order (the app only once the sidecar's `/healthz/ready` answers 200: issue scope 5), stopped in
 * the reverse order (the app first, then the sidecar drains). Every (re)start allocates fresh
 * loopback ports; once the app passes its readiness probes (probe.ts: its ports accept
 * connections, plus `readinessPath` / gRPC health where the spec asks) the replica is registered
 * (a WorkloadEntry file, see registration.ts). HTTP and gRPC probes repeat every 2 s while it
 * runs: three failures in a row unregister it until it passes again, as a Kubernetes readiness
 * probe takes a pod out of its Service's endpoints. It is unregistered as soon as either process
 * exits; after the first successful start, an exit of either process restarts the whole replica
 * with exponential backoff, so a restarted workload gets a new endpoint and the mesh follows.
 * In transparent mode each incarnation gets its own network namespace (netns.ts): the sidecar
 * runs inside it as uid/gid 1337 on Istio's fixed ports, the app inside it on its declared ports
 * with no proxy settings, and the endpoint registered is the namespace's IP and the app's port.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { TrellisError } from '../errors.ts';
import { Child, resolveCommand, trellisBin } from './child.ts';
import { createPodNetwork, inNetns, listensInNetns, removePodNetwork, type PodAddresses, type PodNetwork } from './netns.ts';
import type { WorkloadPlan } from './plan.ts';
import { allocatePorts } from './ports.ts';
import { isContinuous, replicaProbes, runProbe, type Probe } from './probe.ts';
import { register, unregister, type Registration } from './registration.ts';
import type { ProcessRecord } from './state.ts';
import { identityArgs, type WorkloadIdentityContext } from './workload-identity.ts';
import { sleep, waitFor, waitForHttp200 } from './wait.ts';

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
  /** Sidecar worker processes unless the Workload's `proxy.istio.io/config` says otherwise. */
  readonly proxyConcurrency: number;
  /** Istio's metrics merging (MeshConfig enablePrometheusMerge, default on). */
  readonly prometheusMerge: boolean;
  readonly baseEnv: Readonly<Record<string, string>>;
  /** Transparent capture: where pod addresses come from. */
  readonly transparent?: { readonly addresses: PodAddresses };
  /** The mesh CA's token directory and trust domain: each sidecar incarnation gets its own token. */
  readonly identity?: WorkloadIdentityContext;
  /** Called whenever the replica's processes or ports change (the supervisor rewrites state). */
  onChange(): void;
  log(line: string): void;
}

/** Ports one incarnation of a replica uses. */
export interface ReplicaPorts {
  admin: number;
  health: number;
  prometheus: number;
  /** Istio's status port (the merged metrics); 0 when off. */
  status: number;
  httpProxy: number;
  /** Service port -> local outbound port. */
  outbound: Record<string, number>;
  /** App (target) port -> sidecar inbound port. */
  inbound: Record<string, number>;
  /** App (target) port -> port the app really listens on. */
  app: Record<string, number>;
}

const rand = () => randomBytes(4).toString('hex').slice(0, 5);

/** How often running replicas are probed, and how many failures in a row unregister one (Kubernetes' failureThreshold). */
const PROBE_PERIOD_MS = 2000;
const PROBE_FAILURES = 3;

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
  private readonly probes: readonly Probe[];
  /** This incarnation's endpoint, registered while it passes its probes. */
  private registration: Registration | undefined;
  private registered = false;
  private stopping = false;
  private watching: Promise<void> | undefined;
  private starting: Promise<void> | undefined;

  constructor(plan: WorkloadPlan, index: number, ctx: ReplicaContext) {
    this.plan = plan;
    this.index = index;
    this.ctx = ctx;
    this.id = `${plan.name}-${rand()}`;
    this.probes = replicaProbes(plan.spec, plan.appPorts);
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

  private proxyArgs(identity: readonly string[]): string[] {
    const p = this.plan;
    const labels = Object.entries(p.labels).map(([k, v]) => `${k}=${v}`).join(',');
    return ['proxy', ...identity, '--xds', this.ctx.xdsAddress, '--node-id', this.nodeId, '--kind', 'sidecar', '--namespace', p.namespace,
      ...(labels ? ['--labels', labels] : []), '--service-account', p.spec.serviceAccount,
      '--concurrency', String(p.proxyConcurrency ?? this.ctx.proxyConcurrency), '--drain-timeout', this.ctx.drainTimeout];
  }

  /** Environment both capture modes give the app: `defaults` and the first two may be overridden by the spec's env, `forced` not. */
  private appEnv(forced: Record<string, string>, defaults: Record<string, string> = {}): Record<string, string> {
    const p = this.plan;
    return {
      ...this.ctx.baseEnv,
      SERVICE_NAME: p.services[0] ?? p.name,
      ...(p.labels.version !== undefined ? { SERVICE_VERSION: p.labels.version } : {}),
      ...defaults,
      ...p.spec.env,
      POD_NAME: this.id,
      NAMESPACE: p.namespace,
      ...forced,
    };
  }

  /** Why the app (or its sidecar) is gone, or undefined while both run. */
  private goneCheck(app: Child, sidecar: Child): () => string | undefined {
    return () => {
      if (this.stopping) return 'stopped';
      if (app.exitReason() !== undefined) {
        const tail = app.logTail();
        return `command \`${this.plan.spec.command.join(' ')}\` ${app.exitReason()}${tail ? `; last output:\n${tail}` : ' (no output)'}`;
      }
      return sidecar.exitReason() !== undefined ? `sidecar ${sidecar.exitReason()}\n${sidecar.logTail()}` : undefined;
    };
  }

  /** Where the app really listens for declared port `port`, and from which host it is probed. */
  private appTarget(port: number): { port: number; host: string } {
    return this.pod !== undefined ? { port, host: this.pod.podIp } : { port: this.ports!.app[String(port)], host: '127.0.0.1' };
  }

  /** Waits until every probe passes (transparent TCP probes look inside the namespace). */
  private async waitForProbes(gone: () => string | undefined): Promise<void> {
    const p = this.plan;
    await Promise.all(this.probes.map((probe) => {
      const t = this.appTarget(probe.port);
      const check = this.pod !== undefined && probe.kind === 'tcp'
        ? () => listensInNetns(this.pod!.netns, probe.port)
        : async () => (await runProbe(probe, t.port, t.host)) === undefined;
      return waitFor(`workload ${p.name} on port ${t.port}${probe.kind === 'tcp' ? '' : ` (${probe.kind} readiness probe)`}`, this.ctx.startTimeoutMs, check, gone);
    }));
    if (p.appPorts.length === 0) {
      await sleep(300);
      const why = gone();
      if (why !== undefined) throw new TrellisError('RUNTIME_START', why);
    }
  }

  /** Registers this incarnation as an endpoint of the Services that select it. */
  private registerEndpoint(address: string, portOf: (targetPort: number) => number): void {
    const p = this.plan;
    if (p.selectedPorts.length === 0) return;
    const byName: Record<string, number> = {};
    for (const sp of p.selectedPorts) byName[sp.name] = portOf(sp.targetPort);
    this.registration = {
      id: this.id, workload: p.name, namespace: p.namespace, labels: p.labels,
      serviceAccount: p.spec.serviceAccount, address, ports: byName,
    };
    register(this.ctx.registrationDir, this.registration);
    this.registered = true;
  }

  private async startOnce(): Promise<void> {
    this.registration = undefined;
    this.registered = false;
    if (this.ctx.transparent !== undefined) return this.startTransparent(this.ctx.transparent.addresses);
    const p = this.plan;
    this.id = `${p.name}-${rand()}`;
    const n = 5 + this.ctx.servicePorts.length + 2 * p.appPorts.length;
    const free = await allocatePorts(n);
    const merge = this.#mergesMetrics();
    const ports: ReplicaPorts = { admin: free[0], health: free[1], prometheus: free[2], httpProxy: free[3], status: merge ? free[4] : 0, outbound: {}, inbound: {}, app: {} };
    let k = 5;
    for (const sp of this.ctx.servicePorts) ports.outbound[String(sp)] = free[k++];
    for (const ap of p.appPorts) {
      ports.inbound[String(ap)] = free[k++];
      ports.app[String(ap)] = free[k++];
    }
    this.ports = ports;
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
    const ident = this.#identity();
    const sidecar = (this.sidecar = new Child({
      name: `sidecar ${this.id}`,
      logFile: join(this.ctx.logsDir, `${this.id}.sidecar.log`),
      env: this.ctx.baseEnv,
      command: ['trellis', ...this.proxyArgs(ident.args), '--metadata', JSON.stringify(metadata), '--admin-port', String(ports.admin),
        '--health-port', String(ports.health), '--prometheus-port', String(ports.prometheus), '--ready-file', join(this.ctx.runDir, `${this.id}.sidecar.json`),
        ...this.#appMetricsArgs(ports)],
    }));
    this.ctx.onChange();
    const sidecarGone = () => sidecar.exitReason() !== undefined ? `sidecar ${sidecar.exitReason()}\n${sidecar.logTail()}` : undefined;
    await waitForHttp200(`sidecar of ${p.name}`, ports.health, '/healthz/ready', this.ctx.startTimeoutMs, () => (this.stopping ? 'stopped' : sidecarGone()));
    if (this.stopping) throw new TrellisError('RUNTIME_STOPPED', 'stopped while starting');

    const firstApp = p.appPorts[0];
    const proxyUrl = `http://127.0.0.1:${ports.httpProxy}`;
    this.app = new Child({
      name: `workload ${this.id}`,
      logFile: join(this.ctx.logsDir, `${this.id}.log`),
      cwd: p.workingDir,
      // Every common HTTP client finds the sidecar: curl, Python requests and Go's net/http read
      // HTTP_PROXY or http_proxy; Node's http module is given no default agent, and its fetch
      // honours them with NODE_USE_ENV_PROXY=1 (Node 24). NO_PROXY keeps loopback calls direct.
      env: this.appEnv({
        HTTP_PROXY: proxyUrl,
        http_proxy: proxyUrl,
        TRELLIS_OUTBOUND_PORTS: JSON.stringify(ports.outbound),
        TRELLIS_APP_PORTS: JSON.stringify(ports.app),
        ...(firstApp !== undefined ? { PORT: String(ports.app[String(firstApp)]) } : {}),
      }, { NO_PROXY: 'localhost,127.0.0.1,::1', no_proxy: 'localhost,127.0.0.1,::1', NODE_USE_ENV_PROXY: '1' }),
      command: p.spec.command,
    });
    this.ctx.onChange();
    await this.waitForProbes(this.goneCheck(this.app, sidecar));
    this.registerEndpoint('127.0.0.1', (targetPort) => ports.inbound[String(targetPort)]);
  }

  /** After the first start: restart the whole replica when either process exits. */
  private async watch(): Promise<void> {
    let backoff = 500;
    while (!this.stopping) {
      const started = Date.now();
      const probing = this.probeWhileRunning();
      await Promise.race([this.app!.exitPromise, this.sidecar!.exitPromise]);
      if (this.stopping) return;
      await probing.catch(() => undefined);
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

  /**
   * Repeats the HTTP and gRPC probes of this incarnation every PROBE_PERIOD_MS until either
   * process exits: PROBE_FAILURES failures in a row unregister it, a pass registers it again.
   */
  private async probeWhileRunning(): Promise<void> {
    const probes = this.probes.filter(isContinuous);
    const app = this.app;
    const sidecar = this.sidecar;
    if (probes.length === 0 || app === undefined || sidecar === undefined || this.registration === undefined) return;
    const registration = this.registration;
    let failures = 0;
    while (!this.stopping && !app.exited && !sidecar.exited) {
      await Promise.race([sleep(PROBE_PERIOD_MS), app.exitPromise, sidecar.exitPromise]);
      if (this.stopping || app.exited || sidecar.exited) return;
      const why = (await Promise.all(probes.map((probe) => {
        const t = this.appTarget(probe.port);
        return runProbe(probe, t.port, t.host);
      }))).find((w) => w !== undefined);
      if (this.stopping || app.exited || sidecar.exited) return;
      if (why === undefined) {
        failures = 0;
        if (!this.registered) {
          register(this.ctx.registrationDir, registration);
          this.registered = true;
          this.ctx.log(`replica ${this.id} passes its readiness probe again; back in the endpoints`);
        }
      } else if (++failures === PROBE_FAILURES && this.registered) {
        unregister(this.ctx.registrationDir, this.id, this.plan.namespace);
        this.registered = false;
        this.ctx.log(`replica ${this.id} failed its readiness probe ${PROBE_FAILURES} times (${why}); out of the endpoints until it passes`);
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
    this.registered = false;
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
    const ports: ReplicaPorts = { admin: 15000, health: 15021, prometheus: 15090, status: this.#mergesMetrics() ? 15020 : 0, httpProxy: 0, outbound: {}, inbound: {}, app: {} };
    for (const ap of p.appPorts) {
      ports.inbound[String(ap)] = 15006;
      ports.app[String(ap)] = ap;
    }
    this.ports = ports;
    this.ctx.onChange(); // recorded before it exists, so `down` after a crash finds it
    await createPodNetwork(pod, p.namespace, addresses.net);
    if (this.stopping) throw new TrellisError('RUNTIME_STOPPED', 'stopped while starting');
    const metadata = { TRELLIS_CAPTURE_MODE: 'transparent', WORKLOAD_NAME: p.name, INSTANCE_IPS: pod.podIp };
    const ident = this.#identity(true);
    const sidecar = (this.sidecar = new Child({
      name: `sidecar ${this.id}`,
      logFile: join(this.ctx.logsDir, `${this.id}.sidecar.log`),
      env: { ...this.ctx.baseEnv, ...ident.env },
      command: inNetns(pod.netns, [process.execPath, trellisBin, ...this.proxyArgs(ident.args), '--ip', pod.podIp,
        '--metadata', JSON.stringify(metadata), '--admin-address', '0.0.0.0', '--admin-port', String(ports.admin), '--health-port', String(ports.health),
        '--prometheus-port', String(ports.prometheus), ...this.#appMetricsArgs(ports)], true),
    }));
    this.ctx.onChange();
    const sidecarGone = () => sidecar.exitReason() !== undefined ? `sidecar ${sidecar.exitReason()}\n${sidecar.logTail()}` : undefined;
    await waitForHttp200(`sidecar of ${p.name}`, ports.health, '/healthz/ready', this.ctx.startTimeoutMs, () => (this.stopping ? 'stopped' : sidecarGone()), pod.podIp);
    if (this.stopping) throw new TrellisError('RUNTIME_STOPPED', 'stopped while starting');

    this.app = new Child({
      name: `workload ${this.id}`,
      logFile: join(this.ctx.logsDir, `${this.id}.log`),
      env: this.appEnv({ INSTANCE_IP: pod.podIp, ...(p.appPorts[0] !== undefined ? { PORT: String(p.appPorts[0]) } : {}) }),
      cwd: p.workingDir,
      command: inNetns(pod.netns, resolveCommand(p.spec.command)),
    });
    this.ctx.onChange();
    await this.waitForProbes(this.goneCheck(this.app, sidecar));
    this.registerEndpoint(pod.podIp, (targetPort) => targetPort);
  }

  /** True when this Workload's app metrics are merged into its sidecar's status port. */
  #mergesMetrics(): boolean {
    return this.ctx.prometheusMerge && this.plan.appMetrics !== undefined;
  }

  /** The sidecar's status port and the app's metrics URL (the port the app really listens on). */
  #appMetricsArgs(ports: ReplicaPorts): string[] {
    const m = this.plan.appMetrics;
    if (!this.#mergesMetrics() || m === undefined) return [];
    return ['--status-port', String(ports.status), '--app-metrics-url', `http://127.0.0.1:${ports.app[String(m.port)]}${m.path}`];
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
      const pr: Record<string, number> = { admin: ports.admin, health: ports.health, prometheus: ports.prometheus, ...(ports.status > 0 ? { status: ports.status } : {}), ...(ports.httpProxy > 0 ? { httpProxy: ports.httpProxy } : {}) };
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
