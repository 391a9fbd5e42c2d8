/**
 * One profile's running world: the control plane watching a temp config dir, one echo process
 * per Deployment replica (registered behind every Service selecting it), in the mesh profile a
 * sidecar per echo pod (the endpoint is the sidecar's inbound port), and one gateway proxy per
 * Gateway the cases use (listener ports remapped to free local ports). `apply` replaces the
 * case config and waits until it has reached the proxies that matter, using a marker route whose
 * redirect target carries the config generation: seeing the new generation through a proxy
 * proves the whole file (case manifests included) is in that proxy's config.
 */
import { chmodSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { K8sObject, Profile } from './corpus.ts';
import { freePorts, startTrellis, stopChild, waitHttpOk, waitReadyFile, type Child, type Placement } from './processes.ts';
import { endpointObjects, podsOf, servicesFor, servicesOf, type PodSpec, type ServiceSpec } from './workloads.ts';
import { sendHttp, type Reply } from './clients.ts';
import { ClusterNetwork, NodeAddress, PodClient, type PodNet } from './pod-network.ts';
import { allocateVips } from '../../src/registry/vip.ts';

export const MarkerPath = '/__trellis_conformance_marker';
const MarkerService = 'trellis-conformance-marker';
const MeshNamespace = 'gateway-conformance-mesh';

export interface GatewayProxy {
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  /** Gateway listener port -> local port. */
  readonly ports: Record<string, number>;
  /** Listeners of the Gateway as last seen in config (name, port, hostname, protocol). */
  listeners: { name: string; port: number; hostname?: string; protocol: string; from?: string }[];
  readonly child: Child;
}

export interface Sidecar {
  readonly pod: PodSpec;
  /** Explicit capture: service port -> the sidecar's local outbound port (empty in transparent mode). */
  readonly outboundPorts: Record<string, number>;
  readonly child: Child;
}

/** How mesh-profile sidecars capture traffic (the gateway profile is always `explicit`). */
export type Capture = 'explicit' | 'transparent';

/** The port every echo process listens on inside its pod namespace (transparent capture). */
const PodEchoPort = 8080;
/**
 * How long a process of the environment may take to start: generous, because on a loaded 2-core
 * machine a gateway missed a 60 s wait while 22 echo processes and other test runs started.
 */
const StartTimeoutMs = 180_000;

export interface EchoLogLine {
  readonly t: number;
  readonly path: string;
}

export interface EnvironmentOptions {
  profile: Profile;
  /** Base manifests (with the gateway class filled in). */
  base: K8sObject[];
  /** Every object any case of the profile applies (used for port plans and Gateway listeners). */
  allCaseObjects: K8sObject[];
  /** Gateways (`ns/name`) that cases send traffic to. */
  gateways: string[];
  /** Mesh profile: transparent capture (pod namespaces, VIPs, pod IPs) or explicit (loopback ports). */
  capture?: Capture;
  log: (msg: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function toYaml(objs: readonly K8sObject[]): string {
  return objs.map((o) => stringify(o)).join('---\n');
}

function gatewayListeners(o: K8sObject): GatewayProxy['listeners'] {
  const ls = ((o.spec ?? {}) as { listeners?: { name?: string; port?: number; hostname?: string; protocol?: string; allowedRoutes?: { namespaces?: { from?: string } } }[] }).listeners ?? [];
  return ls.map((l) => ({ name: l.name ?? '', port: l.port ?? 0, hostname: l.hostname, protocol: l.protocol ?? 'HTTP', from: l.allowedRoutes?.namespaces?.from }));
}

/** A started profile environment. */
export class Environment {
  readonly profile: Profile;
  readonly dir: string;
  readonly gateways = new Map<string, GatewayProxy>();
  readonly sidecars = new Map<string, Sidecar>();
  readonly pods: PodSpec[];
  readonly services: ServiceSpec[];
  readonly echoLogs = new Map<string, EchoLogLine[]>();
  /** Pod name -> the port its echo process listens on. */
  readonly echoPorts = new Map<string, number>();
  readonly children: Child[] = [];
  /** The gateway-conformance-infra/tls-validity-checks-certificate pair (gateway profile). */
  tls: { cert: string; key: string } | undefined;
  readonly capture: Capture;
  /** Transparent capture: the pod namespaces, pod name -> its namespace, `ns/name` -> Service VIP. */
  network: ClusterNetwork | undefined;
  readonly podNets = new Map<string, PodNet>();
  readonly vips = new Map<string, string>();
  readonly #podClients = new Map<string, PodClient>();
  #control: Child | undefined;
  #generation = 0;
  #log: (msg: string) => void;
  #opts: EnvironmentOptions;

  private constructor(opts: EnvironmentOptions) {
    this.profile = opts.profile;
    this.capture = opts.profile === 'mesh' ? (opts.capture ?? 'explicit') : 'explicit';
    this.#opts = opts;
    this.#log = opts.log;
    this.dir = mkdtempSync(join(tmpdir(), `trellis-conformance-${opts.profile}-`));
    // Sidecars in pod namespaces run as uid 1337 and write their ready files under run/.
    chmodSync(this.dir, 0o711);
    this.pods = podsOf(opts.base).filter((p) => !p.image.includes('coredns'));
    this.services = servicesOf([...opts.base, ...opts.allCaseObjects]);
  }

  /** Starts everything; on failure, stops what was started and rethrows. */
  static async start(opts: EnvironmentOptions): Promise<Environment> {
    const env = new Environment(opts);
    try {
      await env.#start();
      return env;
    } catch (err) {
      await env.close();
      throw err;
    }
  }

  get configDir(): string {
    return join(this.dir, 'config');
  }

  async #start(): Promise<void> {
    const t0 = Date.now();
    // 0. Transparent capture: a network namespace per pod, and a VIP per Service.
    if (this.capture === 'transparent') {
      this.network = await ClusterNetwork.create();
      for (const pod of this.pods) this.podNets.set(pod.name, await this.network.addPod());
      const all = servicesOf([...this.#opts.base, ...this.#opts.allCaseObjects, ...this.#markers(0)]);
      for (const [k, v] of allocateVips(all.map((s) => ({ namespace: s.namespace, name: s.name })))) this.vips.set(k, v);
      this.#log(`created ${this.podNets.size} pod network namespaces in ${Date.now() - t0} ms`);
    }
    // 1. Echo processes, one per replica.
    const echoPorts = this.echoPorts;
    // Bounded start-up concurrency: node start-up is CPU-bound and this machine has 2 cores.
    let nextPod = 0;
    const starter = async () => {
      while (nextPod < this.pods.length) {
        const pod = this.pods[nextPod++];
        echoPorts.set(pod.name, await this.#startEcho(pod));
      }
    };
    await Promise.all(Array.from({ length: 6 }, starter));
    this.#log(`started ${this.pods.length} echo processes in ${Date.now() - t0} ms`);

    // 2. Port plans for sidecars (mesh) and gateways.
    const baseObjs: K8sObject[] = [...this.#opts.base];
    const sidecarPlans: { pod: PodSpec; inbound: Record<string, number>; app: Record<string, number>; outbound: Record<string, number> }[] = [];
    if (this.capture === 'transparent') {
      // Real pod addressing: the EndpointSlice carries the pod IP and the target port; the pod's
      // sidecar captures it (iptables) and forwards to the echo process on PodEchoPort.
      for (const pod of this.pods) {
        const targets = new Set<number>();
        for (const s of servicesFor(pod, this.services)) for (const p of s.ports) targets.add(p.targetPort);
        const app: Record<string, number> = {};
        for (const t of targets) app[t] = PodEchoPort;
        sidecarPlans.push({ pod, inbound: {}, app, outbound: {} });
        baseObjs.push(...endpointObjects(pod, this.services, (t) => t, this.podNets.get(pod.name)!.ip));
      }
    } else if (this.profile === 'mesh') {
      const servicePorts = new Set<number>([80]);
      for (const s of this.services) for (const p of s.ports) servicePorts.add(p.port);
      for (const pod of this.pods) {
        const targets = new Set<number>();
        for (const s of servicesFor(pod, this.services)) for (const p of s.ports) targets.add(p.targetPort);
        const ports = await freePorts(targets.size + servicePorts.size);
        const inbound: Record<string, number> = {};
        const app: Record<string, number> = {};
        const outbound: Record<string, number> = {};
        for (const t of targets) {
          inbound[t] = ports.pop()!;
          app[t] = echoPorts.get(pod.name)!;
        }
        for (const p of servicePorts) outbound[p] = ports.pop()!;
        sidecarPlans.push({ pod, inbound, app, outbound });
        baseObjs.push(...endpointObjects(pod, this.services, (t) => inbound[t]));
      }
    } else {
      for (const pod of this.pods) baseObjs.push(...endpointObjects(pod, this.services, () => echoPorts.get(pod.name)));
    }
    const { mkdirSync, readFileSync } = await import('node:fs');
    if (this.profile === 'gateway') {
      // The Secret the upstream suite creates at run time: self-signed, SANs *, *.org, *.wildcard.org.
      const { execFileSync } = await import('node:child_process');
      const key = join(this.dir, 'tls.key');
      const cert = join(this.dir, 'tls.crt');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=gateway-conformance',
        '-addext', 'subjectAltName=DNS:*,DNS:*.org,DNS:*.wildcard.org'], { stdio: 'ignore' });
      this.tls = { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
      baseObjs.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'tls-validity-checks-certificate', namespace: 'gateway-conformance-infra' }, type: 'kubernetes.io/tls',
        stringData: { 'tls.crt': this.tls.cert, 'tls.key': this.tls.key } });
    }
    mkdirSync(this.configDir, { recursive: true });
    mkdirSync(join(this.dir, 'staging'), { recursive: true });
    mkdirSync(join(this.dir, 'run'), { recursive: true });
    chmodSync(join(this.dir, 'run'), 0o777);
    this.#writeConfig('00-base.yaml', toYaml(this.#withVips(baseObjs)));
    this.#writeConfig('10-case.yaml', toYaml(this.#withVips(this.#markers(0))));

    // 3. Control plane.
    const cpReady = join(this.dir, 'control.ready.json');
    const inNode = this.network ? { netns: this.network.nodeNs } : undefined;
    this.#control = startTrellis('control', ['control', '--config', this.configDir, '--host', inNode ? '0.0.0.0' : '127.0.0.1', '--xds-port', '0', '--debug-port', '0', '--ready-file', cpReady, '--log-level', 'warn'], undefined, inNode);
    this.children.push(this.#control);
    const cp = await waitReadyFile<{ xds: number; debug: number }>(this.#control, cpReady, StartTimeoutMs);
    const xds = `${inNode ? NodeAddress : '127.0.0.1'}:${cp.xds}`;
    this.#log(`control plane up (xds ${cp.xds}, debug ${cp.debug})`);

    // 4. Proxies.
    const waits: Promise<void>[] = [];
    for (const plan of sidecarPlans) {
      const net = this.podNets.get(plan.pod.name);
      const metadata = net
        ? { TRELLIS_CAPTURE_MODE: 'transparent', TRELLIS_APP_PORTS: plan.app, INSTANCE_IPS: net.ip }
        : {
          TRELLIS_INBOUND_ADDRESS: '127.0.0.1',
          TRELLIS_INBOUND_PORTS: plan.inbound,
          TRELLIS_APP_PORTS: plan.app,
          TRELLIS_OUTBOUND_PORTS: plan.outbound,
        };
      waits.push(this.#startProxy(plan.pod.name, xds, 'sidecar', plan.pod.namespace, plan.pod.name, plan.pod.labels, metadata, net).then((child) => {
        this.sidecars.set(plan.pod.name, { pod: plan.pod, outboundPorts: plan.outbound, child });
      }));
    }
    const gatewayObjs = [...this.#opts.base, ...this.#opts.allCaseObjects].filter((o) => o.kind === 'Gateway');
    for (const key of this.#opts.gateways) {
      const [ns, name] = key.split('/');
      const obj = gatewayObjs.find((o) => o.metadata?.namespace === ns && o.metadata?.name === name);
      const listeners = obj ? gatewayListeners(obj) : [];
      const distinct = [...new Set(listeners.map((l) => l.port))];
      const local = await freePorts(distinct.length);
      const ports: Record<string, number> = {};
      distinct.forEach((p, i) => (ports[p] = local[i]));
      const labels = { 'gateway.networking.k8s.io/gateway-name': name };
      waits.push(this.#startProxy(`gateway ${key}`, xds, 'router', ns, `${name}-trellis-gw`, labels, { TRELLIS_GATEWAY_PORTS: ports, TRELLIS_GATEWAY: key }).then((child) => {
        this.gateways.set(key, { key, namespace: ns, name, ports, listeners, child });
      }));
    }
    await Promise.all(waits);
    this.#log(`started ${this.sidecars.size} sidecars and ${this.gateways.size} gateway proxies (${Date.now() - t0} ms in all)`);
  }

  async #startEcho(pod: PodSpec): Promise<number> {
    let resolvePort: (p: number) => void = () => {};
    const port = new Promise<number>((r) => (resolvePort = r));
    const logs: EchoLogLine[] = [];
    this.echoLogs.set(pod.name, logs);
    const net = this.podNets.get(pod.name);
    const child = startTrellis(`echo ${pod.name}`, ['sample', 'echo', '--port', String(net ? PodEchoPort : 0), '--namespace', pod.namespace, '--service', pod.deployment, '--pod', pod.name], (line) => {
      const m = /^echo listening on .*:(\d+)$/.exec(line);
      if (m) {
        resolvePort(Number(m[1]));
        return;
      }
      const e = /^Echoing back request made to (\S*) to client/.exec(line);
      if (e) {
        logs.push({ t: Date.now(), path: e[1] });
        if (logs.length > 20_000) logs.splice(0, 10_000);
      }
    }, net ? { netns: net.netns } : undefined);
    this.children.push(child);
    return new Promise<number>((resolve, reject) => {
      const onExit = () => {
        clearTimeout(timer);
        reject(new Error(`echo ${pod.name} exited:\n${child.stderrTail()}`));
      };
      const timer = setTimeout(() => {
        child.proc.off('exit', onExit);
        reject(new Error(`echo ${pod.name} did not start:\n${child.stderrTail()}`));
      }, StartTimeoutMs);
      child.proc.once('exit', onExit);
      void port.then((p) => {
        clearTimeout(timer);
        child.proc.off('exit', onExit);
        resolve(p);
      });
    });
  }

  async #startProxy(name: string, xds: string, kind: 'sidecar' | 'router', ns: string, workload: string, labels: Record<string, string>, metadata: Record<string, unknown>, net?: PodNet): Promise<Child> {
    const ready = join(this.dir, 'run', `proxy-${workload}.ready.json`);
    const labelText = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
    const args = ['proxy', '--xds', xds, '--kind', kind, '--namespace', ns, '--workload', workload, '--metadata', JSON.stringify(metadata),
      '--admin-port', '0', '--health-port', '0', '--prometheus-port', '0', '--ready-file', ready, '--log-level', 'warn'];
    if (labelText !== '') args.push('--labels', labelText);
    if (net) args.push('--ip', net.ip);
    // In a pod namespace the sidecar runs as uid/gid 1337, which the pod's iptables leave uncaptured.
    const placement: Placement | undefined = net ? { netns: net.netns, asProxy: true } : undefined;
    const child = startTrellis(name, args, undefined, placement);
    this.children.push(child);
    const ports = await waitReadyFile<{ health: number }>(child, ready, StartTimeoutMs);
    // A pod namespace's health port is not reachable from here; the marker probe proves readiness.
    if (!net && !(await waitHttpOk(`http://127.0.0.1:${ports.health}/healthz/ready`, StartTimeoutMs))) this.#log(`warning: ${name} not ready after ${StartTimeoutMs / 1000} s`);
    return child;
  }

  /** Transparent capture: Services get their VIP as `clusterIP` (headless ones stay headless). */
  #withVips(objs: readonly K8sObject[]): K8sObject[] {
    if (this.capture !== 'transparent') return [...objs];
    return objs.map((o) => {
      if (o.kind !== 'Service') return o;
      const spec = (o.spec ?? {}) as { clusterIP?: string };
      const vip = this.vips.get(`${o.metadata?.namespace ?? 'default'}/${o.metadata?.name ?? ''}`);
      if (spec.clusterIP !== undefined || vip === undefined) return o;
      return { ...o, spec: { ...spec, clusterIP: vip } };
    });
  }

  /** The in-pod client of a pod (transparent capture), started on first use. */
  podClient(pod: string): PodClient | undefined {
    const net = this.podNets.get(pod);
    if (net === undefined) return undefined;
    let c = this.#podClients.get(pod);
    if (c === undefined) this.#podClients.set(pod, (c = new PodClient(net.netns)));
    return c;
  }

  /** `name`, `name.ns`, `name.ns.svc...` or an IP -> the address a pod would dial, or undefined. */
  resolve(hostname: string, clientNamespace: string): string | undefined {
    if (/^\d+\.\d+\.\d+\.\d+$/.test(hostname)) return hostname;
    const [name, ns] = hostname.split('.');
    return this.vips.get(`${ns ?? clientNamespace}/${name}`);
  }

  /** The pod IP of the first pod of `deployment` in `namespace` (the `{<deployment>-pod-ip}` placeholder). */
  podIp(namespace: string, deployment: string): string | undefined {
    const pod = this.pods.find((p) => p.namespace === namespace && p.deployment === deployment);
    return pod ? this.podNets.get(pod.name)?.ip : undefined;
  }

  #writeConfig(file: string, text: string): void {
    const staging = join(this.dir, 'staging', file);
    writeFileSync(staging, text);
    renameSync(staging, join(this.configDir, file));
  }

  /** Marker resources for generation `gen` (see the module comment). */
  #markers(gen: number): K8sObject[] {
    const redirect = { type: 'RequestRedirect', requestRedirect: { hostname: `marker-${gen}.invalid`, statusCode: 302 } };
    const rule = { matches: [{ path: { type: 'Exact', value: MarkerPath } }], filters: [redirect] };
    if (this.profile === 'mesh') {
      return [
        { apiVersion: 'v1', kind: 'Service', metadata: { name: MarkerService, namespace: MeshNamespace }, spec: { ports: [{ name: 'http', port: 80, appProtocol: 'http' }] } },
        { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: MarkerService, namespace: MeshNamespace }, spec: { parentRefs: [{ group: '', kind: 'Service', name: MarkerService, port: 80 }], rules: [rule] } },
      ];
    }
    return this.#opts.gateways.map((key) => {
      const [ns, name] = key.split('/');
      return { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: `${MarkerService}-${name}`, namespace: ns }, spec: { parentRefs: [{ name }], rules: [rule] } };
    });
  }

  /** Names of marker routes, which status checks must ignore. */
  static isMarker(o: K8sObject): boolean {
    return (o.metadata?.name ?? '').startsWith(MarkerService);
  }

  /**
   * Replaces the case config with `objects` and waits (up to `timeoutMs`) until the listed
   * gateways / the client pods' sidecars (default all) serve it. Resolves to the names of proxies it could not confirm.
   */
  async apply(objects: readonly K8sObject[], gateways: readonly string[], clientPods?: readonly string[], timeoutMs = 20_000): Promise<string[]> {
    const gen = ++this.#generation;
    const caseGateways = objects.filter((o) => o.kind === 'Gateway');
    for (const g of this.gateways.values()) {
      const o = caseGateways.find((x) => x.metadata?.namespace === g.namespace && x.metadata?.name === g.name)
        ?? this.#opts.base.find((x) => x.kind === 'Gateway' && x.metadata?.namespace === g.namespace && x.metadata?.name === g.name);
      g.listeners = o ? gatewayListeners(o) : [];
    }
    this.#writeConfig('10-case.yaml', toYaml(this.#withVips([...objects, ...this.#markers(gen)])));
    const want = `marker-${gen}.invalid`;
    const probes: { name: string; ok: () => Promise<boolean> }[] = [];
    const hit = (port: number, host: string) => async () => {
      const r = await sendHttp({ port, method: 'GET', path: MarkerPath, host, headers: {}, timeoutMs: 2000 });
      return r.status === 302 && (r.headers.location?.[0] ?? '').includes(want);
    };
    if (this.capture === 'transparent') {
      const vip = this.vips.get(`${MeshNamespace}/${MarkerService}`) ?? '';
      for (const s of this.sidecars.values()) {
        if (clientPods !== undefined && !clientPods.includes(s.pod.name)) continue;
        const client = this.podClient(s.pod.name)!;
        probes.push({ name: `sidecar ${s.pod.name}`, ok: async () => {
          const r: Reply = await client.http({ address: vip, port: 80, method: 'GET', path: MarkerPath, host: MarkerService, headers: {}, timeoutMs: 2000 });
          return r.status === 302 && (r.headers.location?.[0] ?? '').includes(want);
        } });
      }
    } else if (this.profile === 'mesh') {
      for (const s of this.sidecars.values()) if (clientPods === undefined || clientPods.includes(s.pod.name)) probes.push({ name: `sidecar ${s.pod.name}`, ok: hit(s.outboundPorts['80'], MarkerService) });
    } else {
      for (const key of gateways) {
        const g = this.gateways.get(key);
        if (g === undefined) continue;
        const tries = g.listeners
          // A namespace-selector listener may not admit the marker route from the Gateway's namespace.
          .filter((l) => l.protocol === 'HTTP' && l.from !== 'Selector' && g.ports[l.port] !== undefined)
          .map((l) => hit(g.ports[l.port], l.hostname ? l.hostname.replace(/^\*/, 'marker') : 'marker.invalid'));
        // A Gateway without plain HTTP listeners cannot carry the marker: give it a fixed settle time.
        const settle = Date.now() + 1500;
        probes.push({ name: `gateway ${key}`, ok: async () => {
          if (tries.length === 0) return Date.now() >= settle;
          for (const t of tries) if (await t()) return true;
          return false;
        } });
      }
    }
    const deadline = Date.now() + timeoutMs;
    let pending = probes;
    while (pending.length > 0 && Date.now() < deadline) {
      const results = await Promise.all(pending.map((p) => p.ok().catch(() => false)));
      pending = pending.filter((_, i) => !results[i]);
      if (pending.length > 0) await sleep(50);
    }
    return pending.map((p) => p.name);
  }

  /** Echo log lines of the pods behind a Service since `since` (ms epoch). */
  echoLinesFor(namespace: string, service: string, since: number): EchoLogLine[] {
    const svc = this.services.find((s) => s.namespace === namespace && s.name === service);
    const out: EchoLogLine[] = [];
    for (const pod of this.pods) {
      if (pod.namespace !== namespace) continue;
      const selected = svc ? servicesFor(pod, [svc]).length > 0 : pod.deployment === service;
      if (!selected) continue;
      for (const l of this.echoLogs.get(pod.name) ?? []) if (l.t >= since) out.push(l);
    }
    return out;
  }

  /** Stops every process and removes the temp dir. */
  async close(): Promise<void> {
    await Promise.all([...this.#podClients.values()].map((c) => c.close()));
    await Promise.all(this.children.map((c) => stopChild(c)));
    await this.network?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
