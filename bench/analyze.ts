/**
 * `trellis analyze` at scale (`npm run bench:analyze [-- options]`). Writes a mesh of N
 * Kubernetes Services (namespaces `ns-<i mod 10>`, two named ports each), a Deployment per
 * Service (its pod template carries `app` and `version`; a second, v2, for every 10th), a
 * VirtualService per Service (every
 * 10th bound to the ingress Gateway `istio-system/public` under `svc-<i>.example.com` as well as to
 * the mesh, with a header match, a canary split and a mirror), a DestinationRule with subsets for
 * every 10th Service, a Sidecar and a Telemetry per namespace, an AuthorizationPolicy for every
 * 100th workload, and one TLS Gateway with its Secret; 100 Services per file. Then runs
 * `trellis analyze DIR` as a child process `--reps` times (interleaved when several checkouts are
 * compared) and reports the median wall time, the analyzer's own count of resources and
 * diagnostics, and the exit code.
 *
 * Options: --services N (default 10000), --reps R (default 3), --baseline DIR (another checkout
 * of Trellis, with node_modules, run side by side on the same files), --out FILE (default
 * bench/results/<date>-analyze.json).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TestCertificate, TestPrivateKey } from '../src/config/analyze/test-support.ts';

const root = join(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    services: { type: 'string', default: '10000' },
    reps: { type: 'string', default: '3' },
    baseline: { type: 'string' },
    out: { type: 'string' },
  },
});
const services = Number(values.services);
const reps = Number(values.reps);
const PerFile = 100;
const Namespaces = 10;

function deployment(name: string, ns: string, version: string): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}-${version}, namespace: ${ns}}
spec:
  selector: {matchLabels: {app: ${name}, version: ${version}}}
  template:
    metadata: {labels: {app: ${name}, version: ${version}}}
    spec:
      containers:
      - {name: app, image: example/app:${version}, ports: [{containerPort: 8080}]}
`;
}

function workload(i: number): string {
  const ns = `ns-${i % Namespaces}`;
  const name = `svc-${i}`;
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec:
  selector: {app: ${name}}
  ports:
  - {name: http, port: 8080, targetPort: 8080}
  - {name: grpc-admin, port: 9090, targetPort: 9090}
---
${deployment(name, ns, 'v1')}${i % 10 === 0 ? `---\n${deployment(name, ns, 'v2')}` : ''}`;
}

function routing(i: number): string {
  const ns = `ns-${i % Namespaces}`;
  const host = `svc-${i}.${ns}.svc.cluster.local`;
  const next = `svc-${(i + 1) % services}.ns-${(i + 1) % Namespaces}.svc.cluster.local`;
  const edge = i % 10 === 0;
  const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc-${i}, namespace: ${ns}}
spec:
  hosts: [${host}${edge ? `, svc-${i}.example.com` : ''}]
${edge ? '  gateways: [istio-system/public, mesh]\n' : ''}  http:
  - match: [{headers: {end-user: {exact: jason}}, uri: {prefix: /api}}]
    route: [{destination: {host: ${host}, port: {number: 8080}${edge ? ', subset: v2' : ''}}}]
  - route:
    - {destination: {host: ${host}, port: {number: 8080}${edge ? ', subset: v1' : ''}}, weight: 90}
    - {destination: {host: ${next}, port: {number: 8080}}, weight: 10}
    mirror: {host: ${next}, port: {number: 8080}}
`;
  if (!edge) return vs;
  return `${vs}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc-${i}, namespace: ${ns}}
spec:
  host: ${host}
  trafficPolicy: {connectionPool: {tcp: {maxConnections: 100}}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`;
}

function perNamespace(n: number): string {
  const ns = `ns-${n}`;
  return `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: ${ns}}
spec:
  egress: [{hosts: ["./*", "istio-system/*"]}]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: default, namespace: ${ns}}
spec:
  accessLogging: [{providers: [{name: envoy}]}]
`;
}

function policy(i: number): string {
  const ns = `ns-${i % Namespaces}`;
  return `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: svc-${i}, namespace: ${ns}}
spec:
  selector: {matchLabels: {app: svc-${i}}}
  rules: [{from: [{source: {namespaces: [${ns}]}}], to: [{operation: {methods: [GET]}}]}]
`;
}

const edgeGateway = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*.example.com"]
    tls: {mode: SIMPLE, credentialName: example-cert}
---
apiVersion: v1
kind: Secret
metadata: {name: example-cert, namespace: istio-system}
type: kubernetes.io/tls
stringData: ${JSON.stringify({ 'tls.crt': TestCertificate, 'tls.key': TestPrivateKey })}
`;

/** Writes the mesh into `dir`; returns the number of documents. */
export function writeAnalyzeMesh(dir: string, n: number): number {
  mkdirSync(dir, { recursive: true });
  let docs = 0;
  for (let start = 0; start < n; start += PerFile) {
    const w: string[] = [];
    const r: string[] = [];
    for (let i = start; i < Math.min(n, start + PerFile); i++) {
      w.push(workload(i));
      r.push(routing(i));
      if (i % 100 === 0) r.push(policy(i));
      docs += 3 + (i % 10 === 0 ? 2 : 0) + (i % 100 === 0 ? 1 : 0);
    }
    writeFileSync(join(dir, `workloads-${start / PerFile}.yaml`), w.join('---\n'));
    writeFileSync(join(dir, `routing-${start / PerFile}.yaml`), r.join('---\n'));
  }
  const shared = [edgeGateway];
  for (let k = 0; k < Namespaces; k++) shared.push(perNamespace(k));
  writeFileSync(join(dir, 'mesh.yaml'), shared.join('---\n'));
  return docs + 2 + 2 * Namespaces;
}

interface Run { readonly ms: number; readonly cpuMs?: number; readonly code: number | null; readonly resources?: number; readonly errors?: number; readonly warnings?: number; readonly infos?: number }

function runAnalyze(checkout: string, dir: string): Run {
  const node = join(root, 'node_modules/node/bin/node');
  const cpuFile = join(dir, '..', `${dir.split('/').pop()}.cpu`);
  // /usr/bin/time reports the child's CPU seconds: on a shared machine wall time also counts waiting.
  const timed = existsSync('/usr/bin/time');
  const argv = [join(checkout, 'bin/trellis.js'), 'analyze', '-o', 'json', dir];
  const t0 = performance.now();
  const r = timed
    ? spawnSync('/usr/bin/time', ['-f', '%U %S', '-o', cpuFile, node, ...argv], { cwd: checkout, maxBuffer: 1 << 30, encoding: 'utf8' })
    : spawnSync(node, argv, { cwd: checkout, maxBuffer: 1 << 30, encoding: 'utf8' });
  const ms = performance.now() - t0;
  let cpuMs: number | undefined;
  if (timed) {
    const [u, s] = readFileSync(cpuFile, 'utf8').trim().split(/\s+/).map(Number);
    cpuMs = (u + s) * 1000;
    rmSync(cpuFile, { force: true });
  }
  try {
    const s = (JSON.parse(r.stdout) as { summary: { resources: number; errors: number; warnings: number; infos: number } }).summary;
    return { ms, cpuMs, code: r.status, resources: s.resources, errors: s.errors, warnings: s.warnings, infos: s.infos };
  } catch {
    return { ms, cpuMs, code: r.status };
  }
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-bench-analyze-'));
  try {
    const docs = writeAnalyzeMesh(dir, services);
    const checkouts: [string, string][] = [['this', root]];
    if (values.baseline !== undefined) checkouts.push(['baseline', values.baseline]);
    const runs = new Map<string, Run[]>(checkouts.map(([k]) => [k, []]));
    for (let rep = 0; rep < reps; rep++) for (const [k, path] of checkouts) runs.get(k)!.push(runAnalyze(path, dir));
    const results = checkouts.map(([k, path]) => {
      const rs = runs.get(k)!;
      const last = rs[rs.length - 1];
      const cpu = rs.map((r) => r.cpuMs).filter((x): x is number => x !== undefined);
      return { checkout: k, path, medianMs: Math.round(median(rs.map((r) => r.ms))), runsMs: rs.map((r) => Math.round(r.ms)), medianCpuMs: cpu.length > 0 ? Math.round(median(cpu)) : undefined, exitCode: last.code, resources: last.resources, errors: last.errors, warnings: last.warnings, infos: last.infos };
    });
    process.stdout.write(`trellis analyze over ${services} Services, ${services} VirtualServices, ${services} Deployments (${docs} documents), ${reps} runs each:\n`);
    for (const r of results) {
      process.stdout.write(`  ${r.checkout.padEnd(9)} median ${(r.medianMs / 1000).toFixed(2)} s wall, ${r.medianCpuMs === undefined ? '?' : (r.medianCpuMs / 1000).toFixed(2)} s CPU  (wall ${r.runsMs.map((x) => (x / 1000).toFixed(2)).join(', ')} s)  exit ${r.exitCode}, ${r.resources ?? '?'} resources, ${r.errors ?? '?'} errors, ${r.warnings ?? '?'} warnings, ${r.infos ?? '?'} infos\n`);
    }
    if (results.length === 2) {
      const cpuRatio = results[0].medianCpuMs !== undefined && results[1].medianCpuMs !== undefined ? (results[0].medianCpuMs / results[1].medianCpuMs).toFixed(2) : '?';
      process.stdout.write(`  this / baseline: wall ${(results[0].medianMs / results[1].medianMs).toFixed(2)}, CPU ${cpuRatio}\n`);
    }
    const out = values.out ?? join(root, 'bench/results', `${new Date().toISOString().slice(0, 10)}-analyze.json`);
    writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), services, documents: docs, reps, results }, null, 2) + '\n');
    process.stdout.write(`results: ${out}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await main();
