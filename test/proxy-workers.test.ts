/**
 * `trellis proxy --concurrency 2`: two worker processes share the gateway's listener; config
 * reaches both, stats are summed, a dead worker is replaced and traffic continues, and SIGTERM
 * leaves no worker behind. Circuit breakers hold for the proxy as a whole (counts shared by the
 * workers), and a killed worker's in-flight requests stop counting.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startEchoServer } from '../src/samples/echo-server.ts';
import { freePort, startControlPlane, startProxy, stopAll, waitFor } from './support/mesh.ts';
import { adminStats } from './support/features.ts';

const echo = await startEchoServer({ namespace: 'default', service: 'echo', pod: 'echo-pod', log: () => {} });
after(async () => {
  await stopAll();
  await echo.close();
});

function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

test('two workers serve one listener; stats sum; a killed worker is replaced; SIGTERM stops all', async () => {
  const cp = await startControlPlane({
    'mesh.yaml': `apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec: {ports: [{name: http, port: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: echo-1, namespace: default, labels: {kubernetes.io/service-name: echo}}
addressType: IPv4
ports: [{name: http, port: ${echo.port}}]
endpoints: [{addresses: [127.0.0.1]}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge, namespace: default}
spec:
  hosts: ["*"]
  gateways: [gw]
  http: [{route: [{destination: {host: echo}}]}]
`,
  });
  const port = await freePort();
  const gw = await startProxy(cp, { kind: 'router', workload: 'gw-workers', labels: { istio: 'ingressgateway' }, metadata: { TRELLIS_GATEWAY_PORTS: { '80': port } }, extraArgs: ['--concurrency', '2'] });
  const workers = childPids(gw.child.pid!);
  assert.equal(workers.length, 2, `expected 2 workers, got ${workers}`);

  const n = 60;
  for (let i = 0; i < n; i++) {
    // New connection per request so both workers take some.
    const res = await fetch(`http://127.0.0.1:${port}/x${i}`, { headers: { connection: 'close' } });
    assert.equal(res.status, 200);
    await res.text();
  }
  const stats = await (await fetch(`http://127.0.0.1:${gw.ports.admin}/stats?format=json`)).json() as { stats: { name: string; value: number }[] };
  const total = stats.stats.filter((s) => s.name.endsWith('.downstream_rq_2xx')).reduce((a, s) => a + s.value, 0);
  assert.equal(total, n);

  process.kill(workers[0], 'SIGKILL');
  await waitFor('a replacement worker', () => childPids(gw.child.pid!).filter((p) => p !== workers[0]).length === 2, 15_000, 100);
  await waitFor('traffic after replacement', async () => {
    for (let i = 0; i < 10; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/after`, { headers: { connection: 'close' } });
      if (res.status !== 200) return false;
      await res.text();
    }
    return true;
  }, 15_000, 200);

  const pids = childPids(gw.child.pid!);
  await gw.stop('SIGTERM');
  await waitFor('workers gone', () => pids.every((p) => { try { process.kill(p, 0); return false; } catch { return true; } }), 10_000, 100);
});

function meshYaml(extra = ''): string {
  return `apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec: {ports: [{name: http, port: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: echo-1, namespace: default, labels: {kubernetes.io/service-name: echo}}
addressType: IPv4
ports: [{name: http, port: ${echo.port}}]
endpoints: [{addresses: [127.0.0.1]}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge, namespace: default}
spec:
  hosts: ["*"]
  gateways: [gw]
  http: [{route: [{destination: {host: echo}}]}]
${extra}`;
}

test('circuit breakers count across workers: maxConnections 1 + 1 pending admits 2 of a burst whichever worker takes each connection; a killed worker\'s requests are released', { timeout: 90_000 }, async () => {
  const cp = await startControlPlane({
    'mesh.yaml': meshYaml(`---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: default}
spec:
  host: echo
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1}
`),
  });
  const port = await freePort();
  const gw = await startProxy(cp, { kind: 'router', workload: 'gw-breakers', labels: { istio: 'ingressgateway' }, metadata: { TRELLIS_GATEWAY_PORTS: { '80': port } }, extraArgs: ['--concurrency', '2'] });
  await waitFor('route ready', async () => (await fetch(`http://127.0.0.1:${port}/ready`)).status === 200, 15_000, 100);
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { connection: 'close' } });
    return { status: res.status, body: await res.text(), overloaded: res.headers.get('x-envoy-overloaded') };
  };

  // Twelve connections at once: the kernel spreads them over both workers; each worker alone
  // would admit two (one active, one pending), the proxy as a whole admits two.
  const burst = await Promise.all(Array.from({ length: 12 }, () => get('/slow?delay=1500ms')));
  const ok = burst.filter((r) => r.status === 200).length;
  const overflow = burst.filter((r) => r.status === 503 && r.overloaded === 'true').length;
  assert.equal(ok + overflow, burst.length, `statuses ${burst.map((r) => r.status)}`);
  assert.equal(ok, 2, `${ok} of ${burst.length} admitted (per-worker counting admits up to 4)`);
  const stats = await adminStats(gw.ports.admin);
  assert.equal(stats.get('cluster.outbound|8080||echo.default.svc.cluster.local.upstream_rq_pending_overflow'), overflow, 'overflows summed over workers');

  // Two long requests hold the breaker; then both workers die with them.
  // (they fail when their worker is killed: that is the point)
  const held = [get('/held?delay=20s'), get('/held?delay=20s')].map((p) => p.catch((err: Error) => err));
  await waitFor('breaker full', async () => (await get('/probe')).status === 503, 5_000, 100);
  const workers = childPids(gw.child.pid!);
  for (const w of workers) process.kill(w, 'SIGKILL');
  await waitFor('replacement workers', () => childPids(gw.child.pid!).filter((p) => !workers.includes(p)).length === 2, 15_000, 100);
  const after = await waitFor('breaker released', async () => {
    const r = await get('/after');
    return r.status === 200 ? r : undefined;
  }, 15_000, 200);
  assert.equal(after.status, 200);
  await Promise.all(held);
});

test('trellis wait returns 0 once the proxy is ready, 1 on timeout', async () => {
  const { spawnSync } = await import('node:child_process');
  const { repoRoot } = await import('./support/mesh.ts');
  const bin = `${repoRoot}bin/trellis.js`;
  const cp = await startControlPlane({});
  const gw = await startProxy(cp, { kind: 'router', workload: 'gw-wait', labels: { istio: 'ingressgateway' } });
  const ok = spawnSync(process.execPath, [bin, 'wait', '--health-port', String(gw.ports.health), '--timeout', '10s'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  const port = await freePort();
  const bad = spawnSync(process.execPath, [bin, 'wait', '--health-port', String(port), '--timeout', '600ms'], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /not ready after 600 ms/);
});
