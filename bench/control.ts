/**
 * Control-plane benchmark (`npm run bench:control [-- --quick]`). For each mesh size (default
 * 1,000 and 10,000 services, 3 endpoints each, a DestinationRule + VirtualService for every 10th):
 *   1. translate: time to build the full config of one sidecar (in-process, warm, median of runs);
 *   2. starts `trellis control` as a child on that directory and connects the simulated ADS
 *      clients (bench/control-clients.ts processes, SotW, ACKing like Envoy);
 *   3. several times: rewrites one VirtualService file and measures, from the write, until every
 *      client has ACKed the new RDS version (p50/p99 over changes; also per-client ACK latency);
 *   4. the control plane's RSS (from /proc) with all clients connected.
 * Prints a table and writes bench/results/<date>-control.json. Options: --quick (fewer changes,
 * 100 clients at 10,000 services), --services 1000,10000, --clients N, --changes N,
 * --namespaces K (client sidecars spread over K namespaces = K distinct translations),
 * --procs P (client processes), --cpu-prof (profile the control plane into bench/results/prof),
 * --client-prof (profile the client processes there too).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { changeEndpointsFile, changeFile, configureEndpoints, endpointsFileText, changeFileText, Namespaces, writeMesh } from './control-config.ts';
import { kubeUnavailable, startKubeBench, type KubeBench } from './control-kube.ts';

const root = join(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    services: { type: 'string' },
    clients: { type: 'string' },
    changes: { type: 'string' },
    namespaces: { type: 'string', default: '1' },
    procs: { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    'client-prof': { type: 'boolean', default: false },
    out: { type: 'string' },
    store: { type: 'string', default: 'file' },
    change: { type: 'string', default: 'routes' },
    endpoints: { type: 'string', default: '3' },
  },
});
const stores = (values.store ?? 'file').split(',') as ('file' | 'kubernetes')[];
if (stores.some((x) => x !== 'file' && x !== 'kubernetes')) throw new Error(`--store takes file and/or kubernetes, got ${values.store}`);
const changeKind = values.change === 'endpoints' ? 'endpoints' : 'routes';
/** The xDS type whose ACKs mark a change as arrived: routes change RDS, endpoints EDS. */
const ackType = changeKind === 'endpoints' ? 'EDS' : 'RDS';
configureEndpoints(Number(values.endpoints));
const quick = values.quick === true;
const sizes = (values.services ?? '1000,10000').split(',').map(Number);
const changes = Number(values.changes ?? (quick ? 5 : 10));
const nsCount = Math.min(Number(values.namespaces), Namespaces);

function clientsFor(services: number): number {
  if (values.clients !== undefined) return Number(values.clients);
  return services >= 10_000 && quick ? 100 : 1000;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}
function hwmMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** CPU seconds (user + system) a process has used so far, from /proc/PID/stat (clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** In-process: load the mesh like the control plane does and time translate() for one sidecar. */
async function timeTranslate(dir: string): Promise<{ coldMs: number; warmMedianMs: number; resources: Record<string, number>; loadMs: number }> {
  const { startControlPlane } = await import('../src/control/control-plane.ts');
  const { translate } = await import('../src/control/translate/index.ts');
  const { proxyNodeFromXds } = await import('../src/control/proxy-node.ts');
  const t0 = performance.now();
  const cp = await startControlPlane({ configPaths: [dir], xdsPort: 0, debugPort: 0 });
  const loadMs = performance.now() - t0;
  try {
    const node = proxyNodeFromXds({ id: 'sidecar~10.0.0.1~probe.ns-0~ns-0.svc.cluster.local', metadata: { NAMESPACE: 'ns-0' } });
    let t = performance.now();
    const set = translate(cp.snapshot(), node);
    const coldMs = performance.now() - t;
    const runs: number[] = [];
    for (let i = 0; i < 7; i++) {
      t = performance.now();
      translate(cp.snapshot(), node);
      runs.push(performance.now() - t);
    }
    const resources: Record<string, number> = {};
    for (const [type, m] of set) resources[type.slice(type.lastIndexOf('.') + 1)] = m.size;
    return { coldMs, warmMedianMs: pct(runs, 50), resources, loadMs };
  } finally {
    await cp.close();
  }
}

interface ClientProc {
  child: ChildProcess;
  ready: Promise<void>;
}

interface Run {
  store: 'file' | 'kubernetes';
  change: 'routes' | 'endpoints';
  endpoints: number;
  services: number;
  clients: number;
  namespaces: number;
  translate: Awaited<ReturnType<typeof timeTranslate>>;
  controlStartMs: number;
  connectAllAckedMs: number;
  changeToAllAckedMs: number[];
  /** CPU seconds used per change (write until all ACKed) by the control plane and by all client processes. */
  cpuPerChange: { control: number[]; clients: number[] };
  allAcked: { p50: number; p99: number; max: number };
  perClientAck: { p50: number; p99: number };
  rssMb: { idle: number; connected: number; afterChanges: number; peak: number };
}

async function runSize(services: number, store: 'file' | 'kubernetes'): Promise<Run> {
  const clients = clientsFor(services);
  let kube: KubeBench | undefined;
  const dir = mkdtempSync(join(tmpdir(), `trellis-bench-${services}-`));
  const work = mkdtempSync(join(tmpdir(), 'trellis-bench-work-'));
  const children: ChildProcess[] = [];
  try {
    writeMesh(dir, services);
    process.stderr.write(`[${services} services] translate...\n`);
    const tr = await timeTranslate(dir);

    process.stderr.write(`[${services} services] starting trellis control...\n`);
    const ready = join(work, 'ready.json');
    const args = [];
    if (values['cpu-prof']) {
      const profDir = join(root, 'bench/results/prof');
      mkdirSync(profDir, { recursive: true });
      args.push('--cpu-prof', `--cpu-prof-dir=${profDir}`, `--cpu-prof-name=control-${services}.cpuprofile`);
    }
    if (store === 'kubernetes') {
      process.stderr.write(`[${services} services] starting kube-apiserver + etcd and writing the mesh through the API...\n`);
      const tk = performance.now();
      kube = await startKubeBench(dir);
      process.stderr.write(`[${services} services] API server holds the mesh after ${(performance.now() - tk).toFixed(0)} ms\n`);
    }
    const source = kube ? ['--kubeconfig', kube.kubeconfigPath, '--no-webhook', '--no-status', '--no-ca'] : ['--config', dir];
    const t0 = performance.now();
    const control = spawn(process.execPath, [...args, join(root, 'bin/trellis.js'), 'control', ...source, '--xds-port', '0', '--debug-port', '0', '--ready-file', ready, '--log-level', process.env.BENCH_CONTROL_LOG ?? 'warn'], { stdio: ['ignore', process.env.BENCH_CONTROL_LOG ? 'inherit' : 'ignore', process.env.BENCH_CONTROL_LOG ? 'inherit' : 'pipe'] });
    children.push(control);
    let controlErr = '';
    control.stderr?.on('data', (d: Buffer) => (controlErr = (controlErr + d.toString()).slice(-20_000)));
    const deadline = Date.now() + 300_000;
    while (!existsSync(ready)) {
      if (control.exitCode !== null || Date.now() > deadline) throw new Error(`trellis control did not start:\n${controlErr}`);
      await sleep(50);
    }
    const controlStartMs = performance.now() - t0;
    const { xds } = JSON.parse(readFileSync(ready, 'utf8')) as { xds: number };
    const idle = rssMb(control.pid!);

    // Per stream: latest RDS version acked and when.
    const latest = new Map<string, { version: string; t: number; count: number }>();
    const procs = Number(values.procs ?? Math.max(1, Math.min(4, Math.ceil(clients / 250))));
    const per = Math.ceil(clients / procs);
    const cps: ClientProc[] = [];
    const tc = performance.now();
    for (let p = 0; p < procs; p++) {
      const n = Math.min(per, clients - p * per);
      if (n <= 0) break;
      const profArgs = values['client-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${join(root, 'bench/results/prof')}`, `--cpu-prof-name=clients-${services}-${p}.cpuprofile`] : [];
      const child = spawn(process.execPath, [...profArgs, join(root, 'bench/control-clients.ts'), '--xds', `127.0.0.1:${xds}`, '--streams', String(n), '--channels', String(Math.max(1, Math.ceil(n / 50))), '--proc', String(p), '--namespaces', String(nsCount)], { stdio: ['pipe', 'pipe', 'inherit'] });
      children.push(child);
      const readyP = new Promise<void>((resolve, reject) => {
        child.once('exit', (code) => reject(new Error(`client process ${p} exited ${code}`)));
        createInterface({ input: child.stdout! }).on('line', (line) => {
          const msg = JSON.parse(line) as { ev: string; acks?: [number, string, string, number][] };
          if (msg.ev === 'ready') resolve();
          else if (msg.ev === 'acks') {
            for (const [s, type, version, t] of msg.acks!) {
              if (type !== ackType) continue;
              const key = `${p}/${s}`;
              const prev = latest.get(key);
              latest.set(key, { version, t, count: (prev?.count ?? 0) + 1 });
            }
          }
        });
      });
      cps.push({ child, ready: readyP });
    }
    await Promise.race([Promise.all(cps.map((c) => c.ready)), sleep(600_000).then(() => Promise.reject(new Error('clients not ready in 10 min')))]);
    const connectAllAckedMs = performance.now() - tc;
    await sleep(1000);
    const connected = rssMb(control.pid!);
    process.stderr.write(`[${services} services] ${clients} clients connected and ACKed in ${connectAllAckedMs.toFixed(0)} ms; RSS ${connected.toFixed(0)} MB\n`);

    const allAckedMs: number[] = [];
    const perClient: number[] = [];
    const cpuPerChange = { control: [] as number[], clients: [] as number[] };
    const clientCpu = () => cps.reduce((sum, c) => sum + cpuSeconds(c.child.pid!), 0);
    for (let c = 0; c < changes; c++) {
      const cpu0 = { control: cpuSeconds(control.pid!), clients: clientCpu() };
      const before = new Map([...latest].map(([k, v]) => [k, v.version]));
      const weight = c % 2 === 0 ? 70 : 80;
      const wall = Date.now();
      if (process.env.BENCH_CONTROL_LOG) process.stderr.write(`change written at ${wall}\n`);
      if (kube) {
        await kube.apply(changeKind === 'endpoints' ? endpointsFileText(services, c + 1) : changeFileText(services, weight));
        process.stderr.write(`  change ${c + 1}: the API server took the writes in ${Date.now() - wall} ms\n`);
      }
      else if (changeKind === 'endpoints') changeEndpointsFile(dir, services, c + 1);
      else changeFile(dir, services, weight);
      const end = Date.now() + 120_000;
      for (;;) {
        // Converged: every client ACKed a new version, one version per namespace (clients in
        // different namespaces get different route configurations).
        const versions = new Map<number, Set<string>>();
        for (const [k, v] of latest) {
          const ns = Number(k.slice(k.indexOf('/') + 1)) % nsCount;
          versions.set(ns, (versions.get(ns) ?? new Set()).add(v.version));
        }
        const allNew = latest.size === clients && [...latest].every(([k, v]) => v.version !== before.get(k) && v.t >= wall);
        if (allNew && [...versions.values()].every((vs) => vs.size === 1)) break;
        if (Date.now() > end) throw new Error(`change ${c}: not all clients ACKed within 120 s (${[...latest].filter(([k, v]) => v.version !== before.get(k)).length}/${clients})`);
        await sleep(10);
      }
      const times = [...latest.values()].map((v) => v.t - wall);
      allAckedMs.push(Math.max(...times));
      perClient.push(...times);
      const cpuControl = cpuSeconds(control.pid!) - cpu0.control;
      const cpuClients = clientCpu() - cpu0.clients;
      cpuPerChange.control.push(cpuControl);
      cpuPerChange.clients.push(cpuClients);
      process.stderr.write(`  change ${c + 1}/${changes}: all ${clients} ACKed after ${Math.max(...times)} ms (first ${Math.min(...times)}, median client ${pct(times, 50)} ms; CPU s control ${cpuControl.toFixed(2)}, clients ${cpuClients.toFixed(2)})\n`);
      await sleep(500);
    }
    const afterChanges = rssMb(control.pid!);
    const peak = hwmMb(control.pid!);
    for (const c of cps) c.child.stdin?.end();
    control.kill('SIGINT');
    await new Promise((r) => control.once('exit', r));
    return {
      store,
      change: changeKind,
      endpoints: Number(values.endpoints),
      services,
      clients,
      namespaces: nsCount,
      translate: tr,
      controlStartMs,
      connectAllAckedMs,
      changeToAllAckedMs: allAckedMs,
      cpuPerChange,
      allAcked: { p50: pct(allAckedMs, 50), p99: pct(allAckedMs, 99), max: Math.max(...allAckedMs) },
      perClientAck: { p50: pct(perClient, 50), p99: pct(perClient, 99) },
      rssMb: { idle, connected, afterChanges, peak },
    };
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
    await kube?.stop();
  }
}

const runs: Run[] = [];
for (const n of sizes) {
  for (const store of stores) {
    const why = store === 'kubernetes' ? kubeUnavailable() : undefined;
    if (why !== undefined) {
      process.stderr.write(`skipping the Kubernetes store: ${why}\n`);
      continue;
    }
    runs.push(await runSize(n, store));
  }
}

const f = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');
const lines = [
  `control-plane benchmark (${quick ? 'quick' : 'full'}; ${cpus().length} CPUs, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version})`,
  '',
  `changes: ${changeKind === 'endpoints' ? `EndpointSlices of 100 services move (${Number(values.endpoints) * 100} endpoints), until every client ACKed EDS` : 'one file of VirtualServices, until every client ACKed RDS'}; ${values.endpoints} endpoints per service`,
  '',
  '| store | services | clients | translate 1 proxy (warm / cold ms) | control start ms | connect+all ACKed ms | change->all ACKed p50 / p99 / max ms | per-client ACK p50 / p99 ms | RSS connected / peak MB |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...runs.map((r) => `| ${r.store} | ${r.services} | ${r.clients} | ${r.translate.warmMedianMs.toFixed(1)} / ${f(r.translate.coldMs)} | ${f(r.controlStartMs)} | ${f(r.connectAllAckedMs)} | ${f(r.allAcked.p50)} / ${f(r.allAcked.p99)} / ${f(r.allAcked.max)} | ${f(r.perClientAck.p50)} / ${f(r.perClientAck.p99)} | ${f(r.rssMb.connected)} / ${f(r.rssMb.peak)} |`),
  '',
  ...runs.map((r) => `${r.services} services: one sidecar gets ${Object.entries(r.translate.resources).map(([k, v]) => `${v} ${k}`).join(', ')}`),
];
process.stdout.write(lines.join('\n') + '\n');
const targets = runs.map((r) => ({
  store: r.store,
  services: r.services,
  clients: r.clients,
  changeP99Under1s: r.clients >= 1000 ? r.allAcked.p99 < 1000 : undefined,
  rssUnder1GB: r.services >= 10_000 ? r.rssMb.peak < 1024 : undefined,
}));
process.stdout.write(`targets: ${JSON.stringify(targets)}\n`);
const date = new Date().toISOString().slice(0, 10);
const out = values.out ?? join(root, 'bench/results', `${date}-control.json`);
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), quick, cpus: cpus().length, node: process.version, command: `node bench/control.ts ${process.argv.slice(2).join(' ')}`.trim(), runs, targets }, null, 2) + '\n');
process.stdout.write(`wrote ${out}\n`);
// The in-process control plane used for timing translate leaves a watcher or timer behind.
process.exit(0);
