/**
 * Zero loss under change (issue 4): fortio (Istio's load tool) offers 2,000 requests/s at a fixed
 * rate through a gateway while the VirtualService (routes) and DestinationRule + EndpointSlices
 * (clusters) are replaced once a second, 12 generations, and the control plane is restarted once.
 * Not one request may fail. The test proves the churn was real: each generation is seen applied
 * in the proxy's /config_dump (route `gen-N`, echo-a's pending-request limit 10000+N) before the
 * next is written, requests flowed while each generation was live (the proxy's own counters), and
 * after the restart the new control plane reports the proxy connected and every type ACKed. The
 * rate fortio reached and the apply latencies are reported (the benchmark's business), never
 * asserted.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startEchoServer } from '../src/samples/echo-server.ts';
import { findTool } from './support/tools.ts';
import { skipUnlessTools } from './support/skip.ts';
import { freePort, startControlPlane, startProxy, stopAll, waitFor, type ControlPlaneProc } from './support/mesh.ts';

const backends = await Promise.all(['a', 'b'].map((v) => startEchoServer({ namespace: 'default', service: `echo-${v}`, pod: `echo-${v}`, log: () => {} })));
after(async () => {
  await stopAll();
  await Promise.all(backends.map((b) => b.close()));
});

const services = (gen: number) => `apiVersion: v1
kind: Service
metadata: {name: echo-a, namespace: default}
spec: {ports: [{name: http, port: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: echo-b, namespace: default}
spec: {ports: [{name: http, port: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: echo-a-${gen % 2}, namespace: default, labels: {kubernetes.io/service-name: echo-a}}
addressType: IPv4
ports: [{name: http, port: ${backends[0].port}}]
endpoints: [{addresses: [127.0.0.1]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: echo-b-1, namespace: default, labels: {kubernetes.io/service-name: echo-b}}
addressType: IPv4
ports: [{name: http, port: ${backends[1].port}}]
endpoints: [{addresses: [127.0.0.1]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo-a, namespace: default}
spec:
  host: echo-a
  trafficPolicy:
    connectionPool: {http: {http1MaxPendingRequests: ${10000 + gen}, maxRequestsPerConnection: ${gen % 2 === 0 ? 0 : 1000}}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
`;

const routes = (gen: number) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge, namespace: default}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - name: gen-${gen}
    route:
    - destination: {host: echo-a}
      weight: ${gen % 2 === 0 ? 70 : 30}
    - destination: {host: echo-b}
      weight: ${gen % 2 === 0 ? 30 : 70}
`;

const OfferedQps = 2000;
const Generations = 12;
const RestartAt = 4;
/** Generous on a loaded 2-core machine: an idle apply takes ~0.1-0.3 s (printed per run). */
const ApplyTimeoutMs = 30_000;

interface Applied { route?: number; cluster?: number }

/** The generation the proxy's /config_dump shows: route `gen-N` and echo-a's max_pending_requests 10000+N. */
async function appliedGeneration(adminPort: number): Promise<Applied> {
  const dump = (await (await fetch(`http://127.0.0.1:${adminPort}/config_dump`)).json()) as { configs: Record<string, unknown>[] };
  const out: Applied = {};
  for (const c of dump.configs) {
    for (const r of (c.dynamic_route_configs ?? []) as { route_config: { virtual_hosts?: { routes?: { name?: string }[] }[] } }[]) {
      for (const vh of r.route_config.virtual_hosts ?? []) {
        for (const route of vh.routes ?? []) {
          const m = /^gen-(\d+)$/.exec(route.name ?? '');
          if (m) out.route = Number(m[1]);
        }
      }
    }
    for (const a of (c.dynamic_active_clusters ?? []) as { cluster: { name: string; circuit_breakers?: { thresholds?: { max_pending_requests?: number }[] } } }[]) {
      if (!a.cluster.name.includes('|echo-a.default.')) continue;
      const pending = a.cluster.circuit_breakers?.thresholds?.[0]?.max_pending_requests;
      if (pending !== undefined) out.cluster = pending - 10000;
    }
  }
  return out;
}

/** Requests the gateway has taken so far (its HTTP connection managers' downstream_rq_total). */
async function requestsSoFar(adminPort: number): Promise<number> {
  const body = (await (await fetch(`http://127.0.0.1:${adminPort}/stats?format=json&filter=downstream_rq_total`)).json()) as { stats: { name: string; value: number }[] };
  return body.stats.reduce((n, s) => n + s.value, 0);
}

interface FortioResult { RetCodes: Record<string, number>; DurationHistogram: { Count: number; Max: number; Percentiles?: { Percentile: number; Value: number }[] }; ActualQPS: number; ActualDuration: number }

/** fortio at a fixed rate until stopped (SIGINT: it finishes and prints its JSON); killed after `maxMs`. */
function startLoad(url: string, maxMs: number): { stop(): Promise<FortioResult> } {
  const child = spawn(findTool('fortio')!, ['load', '-qps', String(OfferedQps), '-c', '16', '-t', '0', '-uniform', '-nocatchup', '-keepalive=true', '-json', '-', url], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const guard = setTimeout(() => child.kill('SIGKILL'), maxMs);
  return {
    async stop() {
      child.kill('SIGINT');
      await exited;
      clearTimeout(guard);
      try {
        return JSON.parse(stdout) as FortioResult;
      } catch {
        throw new Error(`fortio printed no result (exit ${child.exitCode ?? child.signalCode}):\n${stderr}`);
      }
    },
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

test(`${OfferedQps} rps offered across ${Generations} route/cluster replacements and a control plane restart: every generation applied, no failed request`, { skip: skipUnlessTools('fortio'), timeout: 600_000 }, async (t) => {
  const cp: ControlPlaneProc = await startControlPlane({ 'services.yaml': services(0), 'routes.yaml': routes(0) });
  const port = await freePort();
  const gw = await startProxy(cp, { kind: 'router', workload: 'gw-zero-loss', labels: { istio: 'ingressgateway' }, metadata: { TRELLIS_GATEWAY_PORTS: { '80': port } }, extraArgs: ['--concurrency', '1'] });
  const admin = gw.ports.admin;
  await waitFor('first 200', async () => (await fetch(`http://127.0.0.1:${port}/`)).status === 200);
  assert.deepEqual(await appliedGeneration(admin), { route: 0, cluster: 0 }, 'generation 0 in the proxy before the load');

  const load = startLoad(`http://127.0.0.1:${port}/zero-loss`, 300_000);
  const applyMs: number[] = [];
  const servedPerGeneration: number[] = [];
  let resyncMs = 0;
  let result: FortioResult;
  try {
    await new Promise((r) => setTimeout(r, 1000));
    let served = await requestsSoFar(admin);
    for (let gen = 1; gen <= Generations; gen++) {
      const restart = gen === RestartAt;
      const r0 = Date.now();
      // Restart on the same port: the proxy keeps serving its last config and reconnects; the
      // generation written after it can only arrive through the new control plane.
      if (restart) await cp.restart();
      cp.write('routes.yaml', routes(gen));
      cp.write('services.yaml', services(gen));
      const t0 = Date.now();
      await waitFor(`generation ${gen} applied by the proxy (route gen-${gen}, echo-a max_pending_requests ${10000 + gen})${restart ? ' from the restarted control plane' : ''}`, async () => {
        const a = await appliedGeneration(admin);
        return a.route === gen && a.cluster === gen;
      }, ApplyTimeoutMs, 100);
      applyMs.push(Date.now() - t0);
      if (restart) {
        const synced = await waitFor('the restarted control plane reports the proxy connected with every type ACKed', async () => {
          const mine = (await cp.syncz()).find((s) => s.id === gw.nodeId);
          const types = Object.entries(mine?.types ?? {});
          return types.length >= 4 && types.every(([, st]) => st.state === 'SYNCED' && st.ackedVersion === st.sentVersion) && types.map(([k]) => k).sort().join(',');
        }, ApplyTimeoutMs, 100);
        resyncMs = Date.now() - r0;
        t.diagnostic(`restart: proxy resynced (${synced}) ${resyncMs} ms after the restart began`);
        const state = ((await (await fetch(`http://127.0.0.1:${admin}/stats?format=json&filter=control_plane.connected_state`)).json()) as { stats: { value: number }[] }).stats[0]?.value;
        assert.equal(state, 1, 'the proxy reports itself connected to the control plane');
      }
      // Let the generation carry traffic for a second before replacing it.
      await new Promise((r) => setTimeout(r, 1000));
      const now = await requestsSoFar(admin);
      servedPerGeneration.push(now - served);
      served = now;
    }
  } finally {
    result = await load.stop();
  }
  const ok = result.RetCodes['200'] ?? 0;
  const total = result.DurationHistogram.Count;
  const bad = Object.entries(result.RetCodes).filter(([code]) => code !== '200');
  assert.deepEqual(bad, [], `non-200 results: ${JSON.stringify(result.RetCodes)}`);
  assert.equal(ok, total);
  assert.ok(servedPerGeneration.every((n) => n > 0), `requests served while each generation was live: ${servedPerGeneration.join(', ')}`);
  const p99 = result.DurationHistogram.Percentiles?.find((p) => p.Percentile === 99)?.Value;
  const pct = (100 * result.ActualQPS) / OfferedQps;
  t.diagnostic(`apply latency per generation (ms): ${applyMs.join(', ')}; requests per generation: ${servedPerGeneration.join(', ')}`);
  t.diagnostic(`[summary] zero-loss: ${total} requests, 0 failed; ${result.ActualQPS.toFixed(0)} of ${OfferedQps} rps offered (${pct.toFixed(0)}%), p99 ${p99 !== undefined ? (p99 * 1000).toFixed(1) : '?'} ms, max ${(result.DurationHistogram.Max * 1000).toFixed(0)} ms; ${Generations} generations applied (median ${median(applyMs)} ms, max ${Math.max(...applyMs)} ms); control plane restart resynced in ${resyncMs} ms`);
});
