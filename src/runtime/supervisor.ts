/**
 * The `trellis up` supervisor: from config directories it checks the config (load + analyze; any
 * error stops here with the diagnostics, nothing started), refuses to start over a live run, checks
 * the gateway ports, then starts in order the control plane (watching the config dirs plus the
 * runtime's registration dir), the ingress gateway (its own process, listeners remapped onto local
 * ports through node metadata TRELLIS_GATEWAY_PORTS), the egress gateway when a Gateway selects it
 * (likewise its own process, registered as Istio's `istio-egressgateway` Service so mesh routes can
 * send external traffic through it), and every Workload replica (replica.ts).
 * Any start failure rolls back everything already started. `stop()` goes in reverse: workloads,
 * then their sidecars drain, then the gateway, then the control plane. State is mirrored into
 * `state.json` (state.ts) on every change. Transparent capture (README "Transparent capture")
 * adds the host bridge and the DNS responder before the control plane (which then listens on
 * 0.0.0.0, so sidecars in workload namespaces reach it through the bridge, and auto-allocates
 * Service VIPs) and removes both after it.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TrellisError } from '../errors.ts';
import { loadConfigPaths } from '../config/load.ts';
import { analyzeConfig, compareDiagnostics } from '../config/analyze/index.ts';
import type { Diagnostic } from '../config/resource.ts';
import { alive, Child } from './child.ts';
import { planRuntime, EgressGatewayLabels, EgressGatewayService, IngressGatewayLabels, IngressGatewayNamespace, type RuntimePlan } from './plan.ts';
import { egressGatewayEntryYaml, egressGatewayServiceYaml, registerYaml } from './registration.ts';
import { parseConfigText } from '../config/load.ts';
import { allocatePorts, isPortFree } from './ports.ts';
import { Replica } from './replica.ts';
import { readState, statePaths, writeState, type ProcessRecord, type RuntimeState } from './state.ts';
import { waitForHttp200, waitForJsonFile, waitForTcp } from './wait.ts';
import { waitForEndpointsPushed } from './endpoints-pushed.ts';
import { gatewayRoutes } from './gateway-urls.ts';
import { forgetMesh, recordMesh } from './meshes.ts';
import { readMeshConfig, type MeshConfigSettings } from '../config/mesh-config.ts';
import { identityArgs, type WorkloadIdentityContext } from './workload-identity.ts';
import { findPrometheus, prometheusCommand, writePrometheusFiles } from './prometheus.ts';
import { claimMeshNetwork, PodAddresses, removeBridge, transparentSupport } from './netns.ts';
import { startDnsResponder, type DnsResponder } from './dns/responder.ts';
import { openMeshNames, type MeshNames } from './dns/mesh-names.ts';

export interface UpOptions {
  readonly configDirs: readonly string[];
  readonly stateDir: string;
  /** `--capture`; undefined = each Workload's own captureMode. */
  readonly capture?: 'explicit' | 'transparent';
  /** Local port for the lowest gateway server port: a number (0 = any free); undefined = 8080 when free, else any. */
  readonly gatewayPort?: number;
  readonly startTimeoutMs?: number;
  /** Worker processes of the gateway and of every sidecar whose Workload does not say (default 1). */
  readonly proxyConcurrency?: number;
  readonly log: (line: string) => void;
  /** The text recorded as the run's error (state.json) for a failure; default: the message. */
  readonly describeError?: (err: unknown) => string;
  /** Istio MeshConfig file for the control plane (trust domain, outbound traffic policy, ...). */
  readonly meshConfig?: string;
  /** A plug-in CA directory; default: a self-signed root kept in the state dir (`ca/`). */
  readonly pluginCaDir?: string;
  /** Add-ons to run beside the mesh (`--with prometheus`). */
  readonly addons?: readonly 'prometheus'[];
  /** Prometheus scrape interval in seconds (default 5). */
  readonly scrapeIntervalSeconds?: number;
}

/** Thrown when the config has errors; carries the diagnostics for printing. */
export class ConfigRejected extends TrellisError {
  readonly diagnostics: readonly Diagnostic[];
  constructor(diagnostics: readonly Diagnostic[]) {
    super('RUNTIME_CONFIG_INVALID', `the configuration has ${diagnostics.filter((d) => d.severity === 'error').length} error(s); nothing was started`);
    this.diagnostics = diagnostics;
  }
}

/**
 * Loads and analyzes the config dirs; throws ConfigRejected on any error diagnostic. What `up`
 * itself provides is analyzed with the config: the egress gateway's Service, which routes name.
 */
export async function checkConfig(dirs: readonly string[], mesh?: MeshConfigSettings) {
  const loaded = await loadConfigPaths([...dirs]);
  const plan = planRuntime(loaded.resources);
  const provided = plan.egressGatewayPorts.length > 0 && !plan.egressServiceDeclared ? parseConfigText(egressServiceOf(plan), '(trellis up: egress gateway Service)').resources : [];
  const diags = [...loaded.diagnostics, ...analyzeConfig([...loaded.resources, ...provided], mesh === undefined ? {} : { mesh })].sort(compareDiagnostics);
  if (diags.some((d) => d.severity === 'error')) throw new ConfigRejected(diags);
  return { resources: loaded.resources, diagnostics: diags };
}

function egressServiceOf(plan: RuntimePlan): string {
  return egressGatewayServiceYaml({ namespace: EgressGatewayService.namespace, service: EgressGatewayService.name, labels: EgressGatewayLabels, ports: plan.egressGatewayPorts });
}

const sanitizedEnv = (): Record<string, string> => {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (/^(https?_proxy|no_proxy|all_proxy)$/i.test(k)) continue; // the mesh sets these per workload
    env[k] = v;
  }
  return env;
};

export class Supervisor {
  readonly opts: UpOptions;
  readonly paths: ReturnType<typeof statePaths>;
  state: RuntimeState;
  plan: RuntimePlan | undefined;
  control: Child | undefined;
  gateway: Child | undefined;
  egressGateway: Child | undefined;
  replicas: Replica[] = [];
  private stopping = false;
  private gatewayRecord: ProcessRecord | undefined;
  private egressGatewayRecord: ProcessRecord | undefined;
  private dns: DnsResponder | undefined;
  private names: MeshNames | undefined;
  /** Transparent mode: this mesh's bridge and pod addresses, once claimed. */
  private podAddresses: PodAddresses | undefined;
  private controlRecord: ProcessRecord | undefined;
  private identity: WorkloadIdentityContext | undefined;
  private revokeGatewayToken: () => void = () => {};
  private prometheus: Child | undefined;
  private prometheusRecord: ProcessRecord | undefined;
  private revokeEgressGatewayToken: () => void = () => {};
  /** MeshConfig enablePrometheusMerge (Istio's default: on). */
  private prometheusMerge = true;

  constructor(opts: UpOptions) {
    this.opts = opts;
    this.paths = statePaths(opts.stateDir);
    this.state = {
      version: 1, phase: 'starting', supervisorPid: process.pid, stateDir: this.paths.dir,
      configDirs: opts.configDirs.map((d) => resolve(d)), registrationDir: this.paths.registrations,
      capture: 'explicit', gatewayPorts: {}, processes: [], netns: [], startedAt: new Date().toISOString(),
    };
  }

  private save(): void {
    const procs: ProcessRecord[] = [];
    if (this.controlRecord && this.control && !this.control.exited) procs.push(this.controlRecord);
    if (this.gatewayRecord && this.gateway && !this.gateway.exited) procs.push(this.gatewayRecord);
    if (this.egressGatewayRecord && this.egressGateway && !this.egressGateway.exited) procs.push(this.egressGatewayRecord);
    for (const r of this.replicas) procs.push(...r.records());
    if (this.prometheusRecord && this.prometheus && !this.prometheus.exited) procs.push(this.prometheusRecord);
    this.state.processes = procs;
    // Replicas that restart come back on new ports: Prometheus follows through its target files.
    if (this.prometheus !== undefined) writePrometheusFiles(this.state, this.opts.scrapeIntervalSeconds ?? 5, false);
    this.state.netns = this.replicas.flatMap((r) => (r.pod !== undefined ? [{ name: r.pod.netns, hostVeth: r.pod.hostVeth, hostIp: r.pod.hostIp, podIp: r.pod.podIp }] : []));
    writeState(this.state);
  }

  private describe(err: unknown): string {
    return this.opts.describeError?.(err) ?? (err as Error).message;
  }

  /** Starts everything; on failure stops what was started, records the error and rethrows. */
  async start(): Promise<RuntimeState> {
    try {
      return await this.startInner();
    } catch (err) {
      // A live run's state is not ours to overwrite; any other failure is recorded for `up --detach`.
      if (!(err instanceof TrellisError && err.code === 'RUNTIME_ALREADY_RUNNING') && this.state.phase !== 'failed') {
        this.state.phase = 'failed';
        this.state.error = this.describe(err);
        this.state.processes = [];
        writeState(this.state);
      }
      forgetMesh(this.paths.dir);
      throw err;
    }
  }

  private async startInner(): Promise<RuntimeState> {
    // Read before anything starts: a bad mesh config is a user error reported like bad YAML.
    const meshConfig = this.opts.meshConfig !== undefined ? readMeshConfig(this.opts.meshConfig) : undefined;
    const { resources } = await checkConfig(this.opts.configDirs, meshConfig);
    const previous = readState(this.paths.dir);
    if (previous !== undefined && previous.supervisorPid !== process.pid && alive(previous.supervisorPid) && (previous.phase === 'ready' || previous.phase === 'starting')) {
      throw new TrellisError('RUNTIME_ALREADY_RUNNING', `a mesh is already running from ${this.paths.dir} (supervisor pid ${previous.supervisorPid}); run \`trellis down\` first or use another --state-dir`);
    }
    const plan = (this.plan = planRuntime(resources, this.opts.capture));
    this.prometheusMerge = meshConfig?.enablePrometheusMerge ?? true;
    this.identity = { tokenDir: join(this.paths.run, 'tokens'), trustDomain: meshConfig?.trustDomain ?? 'cluster.local' };
    if (plan.transparent) {
      const why = transparentSupport();
      if (why !== undefined) throw new TrellisError('RUNTIME_TRANSPARENT_UNSUPPORTED', why);
    }
    this.state.capture = plan.transparent ? 'transparent' : 'explicit';

    // Gateway ports first: a port in use is a user error we report before starting anything.
    const gatewayPorts: Record<string, number> = {};
    if (plan.gatewayPorts.length > 0) {
      const [first, ...rest] = plan.gatewayPorts;
      const want = this.opts.gatewayPort;
      if (want !== undefined && want > 0) {
        if (!(await isPortFree(want))) {
          throw new TrellisError('RUNTIME_PORT_IN_USE', `gateway port ${want} (for Istio Gateway server port ${first}) is already in use; free it or choose another with --gateway-port N (0 = any free port)`);
        }
        gatewayPorts[String(first)] = want;
      } else if (want === undefined && (await isPortFree(8080))) {
        gatewayPorts[String(first)] = 8080;
      } else {
        gatewayPorts[String(first)] = (await allocatePorts(1))[0];
      }
      const extra = await allocatePorts(rest.length);
      rest.forEach((p, i) => (gatewayPorts[String(p)] = extra[i]));
    }
    this.state.gatewayPorts = gatewayPorts;
    const firstGw = plan.gatewayPorts[0];
    if (firstGw !== undefined) this.state.gatewayUrl = `http://127.0.0.1:${gatewayPorts[String(firstGw)]}/`;

    rmSync(this.paths.registrations, { recursive: true, force: true });
    rmSync(this.paths.run, { recursive: true, force: true });
    for (const d of [this.paths.logs, this.paths.run, this.paths.registrations]) mkdirSync(d, { recursive: true });
    this.save();
    recordMesh({ stateDir: this.paths.dir, supervisorPid: process.pid, startedAt: this.state.startedAt });

    try {
      if (plan.transparent) await this.startNetwork();
      // Everything starts at once: the proxies' xDS clients connect as soon as the control plane
      // listens on the port chosen here (they retry within 100 ms), so no process waits for
      // another to load its code. Each replica still starts its app only after its sidecar.
      const [xds, debug] = await allocatePorts(2);
      this.state.controlXdsPort = xds;
      this.state.controlDebugPort = debug;
      const starting: Promise<unknown>[] = [this.startControl(xds, debug)];
      if (plan.gatewayPorts.length > 0) starting.push(this.startGateway(gatewayPorts));
      if (plan.egressGatewayPorts.length > 0) starting.push(this.startEgressGateway(plan));
      for (const w of plan.workloads) {
        for (let i = 0; i < w.spec.replicas; i++) {
          const r = new Replica(w, i, this.replicaContext(plan));
          this.replicas.push(r);
          starting.push(r.start());
        }
      }
      await Promise.all(starting);
      await waitForEndpointsPushed(debug, this.paths.registrations, this.opts.log);
      if (this.gatewayRecord?.nodeId !== undefined) this.state.gatewayRoutes = await gatewayRoutes(debug, this.gatewayRecord.nodeId).catch(() => undefined);
      if (this.opts.addons?.includes('prometheus')) await this.startPrometheus();
      this.state.phase = 'ready';
      this.state.readyAt = new Date().toISOString();
      this.save();
      return this.state;
    } catch (err) {
      await this.stop();
      this.state.phase = 'failed';
      this.state.error = this.describe(err);
      writeState(this.state);
      throw err;
    }
  }

  /** Transparent mode: this mesh's own bridge and /24, then the DNS responder on the bridge address. */
  private async startNetwork(): Promise<void> {
    const net = await claimMeshNetwork((claimed) => {
      this.state.bridge = claimed.bridge;
      this.state.subnet = claimed.subnet;
      this.save(); // recorded as soon as it exists, so `down` after a crash removes it
    });
    this.podAddresses = new PodAddresses(net);
    const byIp = () => new Map(this.replicas.flatMap((r) => (r.pod !== undefined ? [[r.pod.podIp, r.plan.namespace] as const] : [])));
    this.names = await openMeshNames(this.state.configDirs, (ip) => byIp().get(ip));
    this.dns = await startDnsResponder({ host: net.address, port: 53, resolve: this.names.resolve, log: this.opts.log });
    this.state.dns = `${net.address}:53`;
    this.save();
  }

  private replicaContext(plan: RuntimePlan) {
    return {
      xdsAddress: `${this.podAddresses?.net.address ?? '127.0.0.1'}:${this.state.controlXdsPort}`,
      ...(this.podAddresses !== undefined ? { transparent: { addresses: this.podAddresses } } : {}),
      logsDir: this.paths.logs,
      runDir: this.paths.run,
      registrationDir: this.paths.registrations,
      servicePorts: plan.servicePorts,
      startTimeoutMs: this.opts.startTimeoutMs ?? 15_000,
      drainTimeout: '1s',
      proxyConcurrency: this.opts.proxyConcurrency ?? 1,
      prometheusMerge: this.prometheusMerge,
      baseEnv: sanitizedEnv(),
      ...(this.identity !== undefined ? { identity: this.identity } : {}),
      onChange: () => {
        if (!this.stopping) this.save();
      },
      log: this.opts.log,
    };
  }

  private async startControl(xds: number, debug: number): Promise<void> {
    const readyFile = join(this.paths.run, 'control.json');
    const log = join(this.paths.logs, 'control.log');
    const child = (this.control = new Child({
      name: 'control plane',
      logFile: log,
      env: sanitizedEnv(),
      command: ['trellis', 'control', ...this.state.configDirs.flatMap((d) => ['--config', d]), '--config', this.paths.registrations,
        ...(this.plan?.transparent ? ['--host', '0.0.0.0', '--auto-allocate-vips'] : ['--host', '127.0.0.1']), '--xds-port', String(xds), '--debug-port', String(debug), '--ready-file', readyFile,
        // The mesh CA: its root persists in the state dir across runs; tokens live for this run only.
        ...(this.opts.pluginCaDir !== undefined ? ['--plugin-ca-dir', resolve(this.opts.pluginCaDir)] : ['--ca-dir', join(this.paths.dir, 'ca')]),
        '--ca-token-dir', this.identity!.tokenDir,
        ...(this.opts.meshConfig !== undefined ? ['--mesh-config', resolve(this.opts.meshConfig)] : [])],
    }));
    this.controlRecord = { role: 'control', name: 'control plane', pid: child.pid, log, ports: { xds, debug } };
    this.save();
    const gone = () => (child.exitReason() !== undefined ? `${child.exitReason()}\n${child.logTail()}` : undefined);
    const ready = await waitForJsonFile('control plane', readyFile, this.opts.startTimeoutMs ?? 15_000, gone);
    if (typeof ready.xds === 'number') this.state.controlXdsPort = this.controlRecord.ports.xds = ready.xds;
    if (typeof ready.debug === 'number') this.state.controlDebugPort = this.controlRecord.ports.debug = ready.debug;
    this.save();
  }

  private async startGateway(gatewayPorts: Record<string, number>): Promise<void> {
    const g = await this.startGatewayProcess({ role: 'ingress', labels: IngressGatewayLabels, namespace: IngressGatewayNamespace, ports: gatewayPorts });
    this.gateway = g.child;
    this.gatewayRecord = g.record;
    this.revokeGatewayToken = g.revoke;
    this.save();
    await g.ready;
  }

  /**
   * The egress gateway: a gateway process like the ingress one (any free local port per server
   * port, listeners on 0.0.0.0 so transparent-mode pods reach it over the bridge), registered once
   * ready as the `istio-egressgateway` Service's endpoint.
   */
  private async startEgressGateway(plan: RuntimePlan): Promise<void> {
    const local = await allocatePorts(plan.egressGatewayPorts.length);
    const ports = Object.fromEntries(plan.egressGatewayPorts.map((p, i) => [String(p.port), local[i]]));
    const ns = EgressGatewayService.namespace;
    const g = await this.startGatewayProcess({ role: 'egress', labels: EgressGatewayLabels, namespace: ns, ports });
    this.egressGateway = g.child;
    this.egressGatewayRecord = g.record;
    this.revokeEgressGatewayToken = g.revoke;
    this.save();
    await g.ready;
    const entry = egressGatewayEntryYaml({
      id: g.id, namespace: ns, labels: EgressGatewayLabels, serviceAccount: g.serviceAccount,
      address: this.podAddresses?.net.address ?? '127.0.0.1',
      ports: plan.egressGatewayPorts.map((p, i) => ({ name: p.name, port: p.port, local: local[i] })),
    });
    registerYaml(this.paths.registrations, g.id, ns, plan.egressServiceDeclared ? entry : `${egressServiceOf(plan)}---\n${entry}`);
  }

  /** Starts a gateway proxy (Istio's ingress or egress gateway); `ready` settles when it serves every port. */
  private async startGatewayProcess(o: { role: 'ingress' | 'egress'; labels: Readonly<Record<string, string>>; namespace: string; ports: Record<string, number> }) {
    const [admin, health, prometheus] = await allocatePorts(3);
    const workload = `istio-${o.role}gateway`;
    const id = `${workload}-${randomBytes(3).toString('hex')}`;
    const ns = o.namespace;
    const serviceAccount = `${workload}-service-account`;
    const nodeId = `router~127.0.0.1~${id}.${ns}~${ns}.svc.cluster.local`;
    const log = join(this.paths.logs, `${o.role}gateway.log`);
    const labels = Object.entries(o.labels).map(([k, v]) => `${k}=${v}`).join(',');
    const ident = identityArgs(this.identity, this.paths.run, `${o.role}gateway`, { namespace: ns, serviceAccount, workload: id });
    const name = `${o.role} gateway`;
    const child = new Child({
      name,
      logFile: log,
      env: sanitizedEnv(),
      command: ['trellis', 'proxy', ...ident.args, '--xds', `127.0.0.1:${this.state.controlXdsPort}`, '--node-id', nodeId, '--kind', 'router',
        '--namespace', ns, '--labels', labels, '--service-account', serviceAccount,
        '--metadata', JSON.stringify({ TRELLIS_GATEWAY_PORTS: o.ports, WORKLOAD_NAME: workload }),
        '--admin-port', String(admin), '--health-port', String(health), '--prometheus-port', String(prometheus),
        '--concurrency', String(this.opts.proxyConcurrency ?? 1), '--drain-timeout', '1s', '--ready-file', join(this.paths.run, `${o.role}gateway.json`)],
    });
    const ports: Record<string, number> = { admin, health, prometheus };
    for (const [k, v] of Object.entries(o.ports)) ports[`gateway:${k}`] = v;
    const record: ProcessRecord = { role: 'gateway', name, pid: child.pid, log, ports, nodeId, namespace: ns };
    const gone = () => (child.exitReason() !== undefined ? `${child.exitReason()}\n${child.logTail()}` : undefined);
    const timeout = this.opts.startTimeoutMs ?? 15_000;
    const ready = (async () => {
      await waitForHttp200(name, health, '/healthz/ready', timeout, gone);
      for (const p of Object.values(o.ports)) await waitForTcp(`${name} listener on port ${p}`, p, timeout, gone);
    })();
    return { child, record, id, serviceAccount, revoke: ident.revoke, ready };
  }

  /** `--with prometheus`: the real Prometheus, scraping every proxy and the control plane. */
  private async startPrometheus(): Promise<void> {
    const binary = findPrometheus();
    const [port] = await allocatePorts(1);
    const paths = writePrometheusFiles(this.state, this.opts.scrapeIntervalSeconds ?? 5, true);
    const log = join(this.paths.logs, 'prometheus.log');
    const child = (this.prometheus = new Child({ name: 'prometheus', logFile: log, env: sanitizedEnv(), command: prometheusCommand(binary, paths, port) }));
    this.prometheusRecord = { role: 'addon', name: 'prometheus', pid: child.pid, log, ports: { http: port } };
    this.state.prometheusUrl = `http://127.0.0.1:${port}/`;
    this.save();
    const gone = () => (child.exitReason() !== undefined ? `${child.exitReason()}\n${child.logTail()}` : undefined);
    await waitForHttp200('prometheus', port, '/-/ready', this.opts.startTimeoutMs ?? 15_000, gone);
  }

  /** Stops everything in reverse start order; safe to call more than once. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.state.phase = 'stopping';
    writeState(this.state);
    await this.prometheus?.stop(5000);
    this.prometheus = this.prometheusRecord = undefined;
    this.state.prometheusUrl = undefined;
    await Promise.all(this.replicas.map((r) => r.stop()));
    await Promise.all([this.gateway?.stop(5000), this.egressGateway?.stop(5000)]);
    this.revokeGatewayToken();
    this.revokeEgressGatewayToken();
    await this.control?.stop(5000);
    await this.dns?.close().catch(() => undefined);
    await this.names?.close().catch(() => undefined);
    this.dns = this.names = undefined;
    if (this.state.bridge !== undefined) {
      await removeBridge(this.state.bridge);
      this.state.bridge = this.state.subnet = undefined;
      this.state.dns = undefined;
    }
    rmSync(this.paths.registrations, { recursive: true, force: true });
    this.stopping = false;
    this.state.phase = 'stopped';
    this.save();
    forgetMesh(this.paths.dir);
  }
}
