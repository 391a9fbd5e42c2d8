/**
 * Must-show: real proxyless gRPC clients (@grpc/grpc-js-xds, in a child process because its
 * bootstrap is process-global) routed by `trellis control` configured only by Istio YAML in a
 * watched directory. Two conformance echo backends (WorkloadEntries labelled version v1/v2 behind
 * Service `echo`), two DestinationRules (one subset each, merged) and a VirtualService: weighted 80/20 split,
 * header match, fault abort (gRPC status and HTTP status mapping), live YAML edits, and a NACK.
 *
 * The NACK: a VirtualService route with `corsPolicy` translates to a route carrying
 * `typed_per_filter_config["envoy.filters.http.cors"]`, which Envoy accepts but gRPC's xDS client
 * rejects (it implements only the fault and router HTTP filters, and validates every per-route
 * filter override); the test checks `trellis proxy-status -o json` (the real CLI, spawned) reports
 * RDS NACKED with the client's message, and the client keeps routing by its last good config.
 * (If translation ever strips CORS for proxyless clients, pick another gRPC-unsupported feature.)
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { startEchoServer } from '../src/samples/echo-server.ts';
import { Cleanups, nodeBin, repoRoot, spawnTracked, startControlProcess, tempDir, waitFor, type ControlProcess, type Spawned } from './support/processes.ts';
import { serviceWithWorkloads, writeConfig } from './support/mesh-yaml.ts';

const cleanups = new Cleanups();
after(() => cleanups.run());

const Target = 'echo.default.svc.cluster.local:7070';
const NodeId = 'sidecar~127.0.0.1~grpc-client-1.default~default.svc.cluster.local';

interface CallResult {
  pods: Record<string, number>;
  errors: Record<string, number>;
}

/** The child gRPC client: send a command line, await its answer line. */
class GrpcClient {
  #proc: Spawned;
  #next = 1;
  #waiting = new Map<number, (r: CallResult) => void>();
  constructor(proc: Spawned) {
    this.#proc = proc;
    createInterface({ input: proc.child.stdout! }).on('line', (line) => {
      try {
        const { id, pods, errors } = JSON.parse(line) as CallResult & { id: number };
        this.#waiting.get(id)?.({ pods, errors });
        this.#waiting.delete(id);
      } catch {
        // not ours (a library log line)
      }
    });
  }
  calls(n: number, metadata: Record<string, string> = {}, timeoutMs = 60_000): Promise<CallResult> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`grpc client: no answer in ${timeoutMs} ms\n${this.#proc.output().slice(-3000)}`)), timeoutMs);
      this.#waiting.set(id, (r) => {
        clearTimeout(t);
        resolve(r);
      });
      this.#proc.child.stdin!.write(JSON.stringify({ id, target: Target, n, metadata, concurrency: 10, deadlineMs: 5000 }) + '\n');
    });
  }
}

function vsYaml(o: { split: [number, number]; jasonTo: 'v1' | 'v2'; cors?: boolean }): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: echo
  namespace: default
spec:
  hosts:
  - echo.default.svc.cluster.local
  http:
  - name: jason
    match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination: {host: echo.default.svc.cluster.local, subset: ${o.jasonTo}}
  - name: abort-grpc
    match:
    - headers:
        x-fault:
          exact: grpc
    fault:
      abort:
        grpcStatus: RESOURCE_EXHAUSTED
        percentage: {value: 100}
    route:
    - destination: {host: echo.default.svc.cluster.local, subset: v1}
  - name: abort-http
    match:
    - headers:
        x-fault:
          exact: http
    fault:
      abort:
        httpStatus: 403
        percentage: {value: 100}
    route:
    - destination: {host: echo.default.svc.cluster.local, subset: v1}
  - name: split${o.cors ? '\n    corsPolicy: {allowOrigins: [{exact: "https://example.com"}], allowMethods: [POST]}' : ''}
    route:
    - destination: {host: echo.default.svc.cluster.local, subset: v1}
      weight: ${o.split[0]}
    - destination: {host: echo.default.svc.cluster.local, subset: v2}
      weight: ${o.split[1]}
`;
}

function proxyStatusJson(control: ControlProcess): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile(nodeBin, [join(repoRoot, 'bin/trellis.js'), 'proxy-status', '-o', 'json'], { env: { ...process.env, TRELLIS_CONTROL_URL: control.url }, timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as unknown);
    });
  });
}

describe('proxyless gRPC (grpc-js-xds) routed by Istio YAML through trellis control', { timeout: 240_000 }, () => {
  let dir: string;
  let control: ControlProcess;
  let client: GrpcClient;

  before(async () => {
    const v1 = await startEchoServer({ namespace: 'default', service: 'echo', pod: 'echo-v1', host: '127.0.0.1', port: 0, log: () => {} });
    const v2 = await startEchoServer({ namespace: 'default', service: 'echo', pod: 'echo-v2', host: '127.0.0.1', port: 0, log: () => {} });
    cleanups.add(() => v1.close(0));
    cleanups.add(() => v2.close(0));
    dir = tempDir(cleanups);
    writeConfig(dir, 'echo.yaml', serviceWithWorkloads({
      name: 'echo',
      ports: [{ name: 'grpc', port: 7070 }],
      workloads: [
        { name: 'echo-v1', labels: { version: 'v1' }, ports: { grpc: v1.port } },
        { name: 'echo-v2', labels: { version: 'v2' }, ports: { grpc: v2.port } },
      ],
    }));
    // The subsets come from two DestinationRules for the same host (a team per version), which the
    // control plane merges as Istio does: every call below to subset v2 exercises the merge.
    for (const v of ['v1', 'v2']) {
      writeConfig(dir, `dr-${v}.yaml`, `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo-${v}, namespace: default}
spec:
  host: echo.default.svc.cluster.local
  subsets: [{name: ${v}, labels: {version: ${v}}}]
`);
    }
    writeConfig(dir, 'vs.yaml', vsYaml({ split: [80, 20], jasonTo: 'v2' }));
    control = await startControlProcess(cleanups, dir);
    const bootstrap = {
      xds_servers: [{ server_uri: `127.0.0.1:${control.xdsPort}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: { id: NodeId, cluster: 'grpc-client', locality: {}, metadata: { NAMESPACE: 'default', TRELLIS_PROXYLESS: 'true', LABELS: { app: 'grpc-client' } } },
    };
    const proc = spawnTracked(cleanups, nodeBin, [join(repoRoot, 'test/support/grpc-xds-client.ts')], {
      env: { ...process.env, GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(bootstrap) },
    });
    cleanups.add(() => proc.child.stdin?.end());
    client = new GrpcClient(proc);
    // First calls resolve the target through LDS -> RDS -> CDS -> EDS.
    await waitFor('first successful gRPC call', async () => {
      const r = await client.calls(1);
      return (r.pods['echo-v1'] ?? 0) + (r.pods['echo-v2'] ?? 0) === 1 ? true : undefined;
    }, 60_000, 200);
  });

  test('(a) weighted 80/20 split across subsets over 500 calls, within +-5 points', async () => {
    const r = await client.calls(500);
    assert.deepEqual(r.errors, {});
    const v1 = r.pods['echo-v1'] ?? 0;
    const v2 = r.pods['echo-v2'] ?? 0;
    assert.equal(v1 + v2, 500);
    const pct = (v1 / 500) * 100;
    assert.ok(Math.abs(pct - 80) <= 5, `v1 got ${pct}% (v1=${v1}, v2=${v2})`);
  });

  test('(b) header match: metadata end-user: jason always goes to v2', async () => {
    const r = await client.calls(50, { 'end-user': 'jason' });
    assert.deepEqual(r, { pods: { 'echo-v2': 50 }, errors: {} });
  });

  test('(c) fault abort: grpcStatus RESOURCE_EXHAUSTED (8), and httpStatus 403 -> PERMISSION_DENIED (7)', async () => {
    const g = await client.calls(20, { 'x-fault': 'grpc' });
    assert.deepEqual(g.pods, {});
    assert.deepEqual(Object.keys(g.errors).map((k) => k.split(':')[0]), ['8']);
    const h = await client.calls(20, { 'x-fault': 'http' });
    assert.deepEqual(h.pods, {});
    assert.deepEqual(Object.keys(h.errors).map((k) => k.split(':')[0]), ['7']);
  });

  test('(d) rewriting the VirtualService file changes client behaviour, nothing restarted (latency printed; bench:control measures it)', async (t) => {
    const before = await client.calls(20, { 'end-user': 'jason' });
    assert.deepEqual(before.pods, { 'echo-v2': 20 });
    const t0 = Date.now();
    writeConfig(dir, 'vs.yaml', vsYaml({ split: [0, 100], jasonTo: 'v1' }));
    const elapsed = await waitFor('jason routed to v1', async () => {
      const r = await client.calls(1, { 'end-user': 'jason' });
      return r.pods['echo-v1'] === 1 ? Date.now() - t0 : undefined;
    }, 60_000, 20);
    const all = await client.calls(40);
    assert.deepEqual(all, { pods: { 'echo-v2': 40 }, errors: {} });
    t.diagnostic(`(d) file write -> new routing seen by the client: ${elapsed} ms`);
  });

  test('(e) an unsupported resource (a route with corsPolicy) is NACKed and shows as NACKED in trellis proxy-status', async () => {
    // grpc-js-xds validates every route's typed_per_filter_config against the HTTP filters it
    // implements (fault, router); the CORS policy Istio's corsPolicy becomes is not one of them.
    writeConfig(dir, 'vs.yaml', vsYaml({ split: [0, 100], jasonTo: 'v1', cors: true }));
    type Row = { id: string; types: Record<string, { state: string; nackError?: string }> };
    const rows = await waitFor('RDS NACKED in trellis proxy-status -o json', async () => {
      const s = (await proxyStatusJson(control)) as Row[];
      const me = s.find((r) => r.id === NodeId);
      return me?.types.RDS?.state === 'NACKED' ? s : undefined;
    }, 20_000, 250);
    const me = rows.find((r) => r.id === NodeId)!;
    assert.match(me.types.RDS.nackError ?? '', /typed_per_filter_config\[envoy\.filters\.http\.cors\] validation failed/);
    // The client keeps its last good routes: jason still goes to v1, everyone else to v2.
    const r = await client.calls(20);
    assert.deepEqual(r, { pods: { 'echo-v2': 20 }, errors: {} });
  });
});
