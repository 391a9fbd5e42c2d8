/**
 * End to end, driven only by Istio YAML through a real `trellis control` and a `trellis proxy`
 * gateway: per-try timeout, hedging (the `trellis.dev/hedge-on-per-try-timeout` annotation) versus
 * plain retries, fault delay/abort percentages, circuit breaker overflow under a burst, and outlier
 * ejection and return. Each test adds its own VirtualService (own path prefix) to the live config.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEchoServer } from '../src/samples/echo-server.ts';
import type { DualServer } from '../src/samples/sniff-server.ts';
import { freePort, startControlPlane, startProxy, stopAll, waitFor, type ControlPlaneProc, type ProxyProc } from './support/mesh.ts';
import { createServer, type Socket } from 'node:net';
import { scrape, select } from './support/prom-text.ts';
import { adminHostFlags, adminStats, httpGet, pool, serviceYaml, startScriptedBackend, type ScriptedBackend } from './support/features.ts';

let cp: ControlPlaneProc;
let gw: ProxyProc;
let gwPort: number;
let script: ScriptedBackend;
let flakyA: ScriptedBackend;
let flakyB: ScriptedBackend;
let slow: DualServer;

const gatewayYaml = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
`;

function vs(name: string, http: string, annotations: Record<string, string> = {}): string {
  const ann = Object.keys(annotations).length ? `\n  annotations: ${JSON.stringify(annotations)}` : '';
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ${name}
  namespace: default${ann}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
${http}`;
}

let keySeq = 0;
const key = (tag: string) => `${tag}-${Date.now()}-${++keySeq}`;

before(async () => {
  script = await startScriptedBackend('script');
  flakyA = await startScriptedBackend('flaky-a');
  flakyB = await startScriptedBackend('flaky-b');
  slow = await startEchoServer({ namespace: 'default', service: 'slow', pod: 'slow-pod', log: () => {} });
  cp = await startControlPlane({
    'gateway.yaml': gatewayYaml,
    'services.yaml': [serviceYaml('script', [script.port]), serviceYaml('flaky', [flakyA.port, flakyB.port]), serviceYaml('slow', [slow.port])].join('---\n'),
    'vs-ready.yaml': vs('ready', `  - match: [{uri: {prefix: /ready}}]\n    route: [{destination: {host: script}}]\n`),
  });
  gwPort = await freePort();
  gw = await startProxy(cp, { kind: 'router', workload: 'ingress-1', labels: { istio: 'ingressgateway' }, metadata: { TRELLIS_GATEWAY_PORTS: { '80': gwPort } } });
  await waitFor('gateway serves /ready', async () => (await httpGet(gwPort, `/ready?key=${key('ready')}`)).status === 200, 20_000, 100);
});

after(async () => {
  await stopAll();
  await Promise.all([script, flakyA, flakyB].map((b) => b?.close()));
  await slow?.close();
});

/** Writes a config file and waits until `probe` sees it in effect. */
async function apply(file: string, yaml: string, probe: () => Promise<boolean>): Promise<void> {
  cp.write(file, yaml);
  await waitFor(`${file} in effect`, probe, 20_000, 150);
}

const json = (body: string): { name?: string; attempt?: number } => {
  try {
    return JSON.parse(body) as { name?: string; attempt?: number };
  } catch {
    return {};
  }
};

test('per-try timeout: a slow first attempt is cancelled and the retry answers; all-slow attempts end in 504 UT', { timeout: 60_000 }, async () => {
  await apply('vs-pertry.yaml', vs('pertry', `  - match: [{uri: {prefix: /pertry}}]
    timeout: 10s
    retries: {attempts: 2, perTryTimeout: 400ms, retryOn: "5xx,reset"}
    route: [{destination: {host: script}}]
`), async () => (await httpGet(gwPort, `/pertry?key=${key('probe')}`)).status === 200);
  const k = key('pertry');
  const r = await httpGet(gwPort, `/pertry?key=${k}&d=5000,0`);
  assert.equal(r.status, 200, r.body);
  assert.equal(json(r.body).attempt, 2);
  assert.ok(r.ms >= 350 && r.ms < 3000, `answered after ${r.ms} ms`);
  const [first] = script.attempts.get(k)!;
  await waitFor('first attempt cancelled by the per-try timeout', () => first.aborted === true, 5000);
  assert.ok(first.endedAt! - first.arrivedAt < 2500, `first attempt cancelled after ${first.endedAt! - first.arrivedAt} ms, not at its 5 s answer`);

  // Every attempt slower than the per-try timeout: 1 + 2 retries, then 504 with flag UT.
  const k2 = key('pertry-all');
  const t = await httpGet(gwPort, `/pertry?key=${k2}&d=5000`);
  assert.equal(t.status, 504, t.body);
  assert.match(t.body, /upstream request timeout/);
  assert.equal(script.attempts.get(k2)!.length, 3);
  assert.ok(t.ms >= 1100 && t.ms < 6000, `504 after ${t.ms} ms`);
});

test('hedging (annotation): the slow attempt keeps running and the first response wins; without it the per-try timeout cancels', { timeout: 90_000 }, async () => {
  const route = (prefix: string) => `  - match: [{uri: {prefix: ${prefix}}}]
    timeout: 10s
    retries: {attempts: 1, perTryTimeout: 400ms, retryOn: "5xx,reset"}
    route: [{destination: {host: script}}]
`;
  cp.write('vs-plain.yaml', vs('plain', route('/plain')));
  await apply('vs-hedge.yaml', vs('hedge', route('/hedge'), { 'trellis.dev/hedge-on-per-try-timeout': 'true' }), async () => {
    const p1 = await httpGet(gwPort, `/hedge?key=${key('probe')}`);
    const p2 = await httpGet(gwPort, `/plain?key=${key('probe')}`);
    return p1.status === 200 && p2.status === 200;
  });
  // The config dump shows the route's hedge_policy (only on the annotated VS).
  await waitFor('hedge_policy in config_dump', async () => (await (await fetch(`http://127.0.0.1:${gw.ports.admin}/config_dump`)).text()).includes('hedge_on_per_try_timeout'));

  // 1) First attempt slow (3 s), second fast: both answer from attempt 2 at ~400 ms; the hedged
  // first attempt is still in flight when the second arrives and is cancelled after it wins.
  const kh = key('hedge-a');
  const h = await httpGet(gwPort, `/hedge?key=${kh}&d=3000,0`);
  assert.equal(h.status, 200, h.body);
  assert.equal(json(h.body).attempt, 2);
  assert.ok(h.ms >= 350 && h.ms < 2500, `hedged answer after ${h.ms} ms`);
  const [h1, h2] = script.attempts.get(kh)!;
  assert.equal(h2.inFlightAtArrival, 1, 'hedged: first attempt still running when the second starts');
  await waitFor('hedged loser cancelled', () => h1.aborted === true, 5000);
  assert.ok(h1.endedAt! >= h2.endedAt! - 5, 'the loser was cancelled only after the winner answered');

  const kp = key('plain-a');
  const p = await httpGet(gwPort, `/plain?key=${kp}&d=3000,0`);
  assert.equal(p.status, 200, p.body);
  assert.equal(json(p.body).attempt, 2);
  const [p1] = script.attempts.get(kp)!;
  await waitFor('plain: first attempt cancelled', () => p1.aborted === true, 5000);
  // Cancelled at its per-try timeout (the retry goes out after it), not when attempt 2 answered.
  assert.ok(p1.endedAt! - p1.arrivedAt < 2500, `first attempt cancelled after ${p1.endedAt! - p1.arrivedAt} ms`);

  // 2) First attempt a bit slower than the per-try timeout (800 ms), the second slow (4 s):
  // hedging takes the first attempt's answer at ~800 ms; plain retries cancel attempt 1 at 400 ms
  // and attempt 2 at its own per-try timeout, so the client gets 504 at ~800 ms instead.
  const kh2 = key('hedge-b');
  const hb = await httpGet(gwPort, `/hedge?key=${kh2}&d=800,4000`);
  assert.equal(hb.status, 200, hb.body);
  assert.equal(json(hb.body).attempt, 1);
  assert.ok(hb.ms >= 750 && hb.ms < 3000, `hedged answer after ${hb.ms} ms`);
  await waitFor('hedge attempt 2 cancelled', () => script.attempts.get(kh2)![1]?.aborted === true, 5000);

  const kp2 = key('plain-b');
  const pb = await httpGet(gwPort, `/plain?key=${kp2}&d=800,4000`);
  assert.equal(pb.status, 504, pb.body);
  assert.match(pb.body, /upstream request timeout/);
  const plain = script.attempts.get(kp2)!;
  assert.equal(plain.length, 2);
  await waitFor('both plain attempts cancelled by their per-try timeouts', () => plain.every((a) => a.aborted === true), 5000);
});

test('fault injection percentages: 50% abort and 50% delay over 200 requests each, within tolerance', { timeout: 120_000 }, async () => {
  await apply('vs-fault.yaml', vs('fault', `  - match: [{uri: {prefix: /fault-abort}}]
    fault: {abort: {httpStatus: 503, percentage: {value: 50}}}
    route: [{destination: {host: script}}]
  - match: [{uri: {prefix: /fault-delay}}]
    fault: {delay: {fixedDelay: 1500ms, percentage: {value: 50}}}
    route: [{destination: {host: script}}]
`), async () => {
    for (let i = 0; i < 20; i++) if ((await httpGet(gwPort, `/fault-abort?key=${key('probe')}`)).status === 503) return true;
    return false;
  });
  const n = 200;
  const aborts = await pool(Array.from({ length: n }, (_, i) => i), 8, async () => httpGet(gwPort, `/fault-abort?key=${key('fa')}`));
  const aborted = aborts.filter((r) => r.status === 503);
  assert.ok(aborts.every((r) => r.status === 200 || r.status === 503), `statuses ${[...new Set(aborts.map((r) => r.status))]}`);
  assert.ok(aborted.every((r) => /fault filter abort/.test(r.body)), aborted[0]?.body);
  const abortShare = aborted.length / n;
  // Binomial(200, 0.5): sd ~ 0.035; 0.13 is ~3.7 sd.
  assert.ok(Math.abs(abortShare - 0.5) <= 0.13, `abort share ${abortShare}`);

  // A delayed request takes at least 1.5 s; an undelayed one far less, even on a loaded machine.
  const delays = await pool(Array.from({ length: n }, (_, i) => i), 25, async () => httpGet(gwPort, `/fault-delay?key=${key('fd')}`));
  assert.ok(delays.every((r) => r.status === 200));
  const delayed = delays.filter((r) => r.ms >= 1400).length / n;
  assert.ok(Math.abs(delayed - 0.5) <= 0.13, `delayed share ${delayed}`);
});

test('circuit breaker: maxConnections 1 + http1MaxPendingRequests 1 against a slow backend overflow a burst with 503 UO', { timeout: 60_000 }, async () => {
  const cluster = 'outbound|8080||slow.default.svc.cluster.local';
  cp.write('dr-slow.yaml', `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: slow, namespace: default}
spec:
  host: slow
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1}
`);
  await apply('vs-slow.yaml', vs('slow', `  - match: [{uri: {prefix: /slow}}]
    route: [{destination: {host: slow}}]
`), async () => (await httpGet(gwPort, '/slow')).status === 200);
  await waitFor('circuit breaker thresholds in config_dump', async () => /"max_pending_requests":\s*1\b/.test(await (await fetch(`http://127.0.0.1:${gw.ports.admin}/config_dump`)).text()));
  const before = (await adminStats(gw.ports.admin)).get(`cluster.${cluster}.upstream_rq_pending_overflow`) ?? 0;

  const burst = await Promise.all(Array.from({ length: 10 }, () => httpGet(gwPort, '/slow?delay=800ms')));
  const ok = burst.filter((r) => r.status === 200);
  const overflow = burst.filter((r) => r.status === 503);
  assert.equal(ok.length + overflow.length, burst.length, `statuses ${burst.map((r) => r.status)}`);
  assert.ok(ok.length >= 1 && ok.length <= 4, `${ok.length} requests got through`);
  assert.ok(overflow.length >= 6, `${overflow.length} overflowed`);
  for (const r of overflow) {
    assert.equal(r.body, 'upstream connect error or disconnect/reset before headers. reset reason: overflow');
    assert.equal(r.headers['x-envoy-overloaded'], 'true');
  }
  const after = await waitFor('overflow counter', async () => {
    const v = (await adminStats(gw.ports.admin)).get(`cluster.${cluster}.upstream_rq_pending_overflow`) ?? 0;
    return v > before ? v : undefined;
  }, 5000);
  assert.ok(after - before >= overflow.length, `counter +${after - before} for ${overflow.length} overflows`);
  // Once the burst is over the breaker closes again.
  assert.equal((await httpGet(gwPort, '/slow')).status, 200);
});

test('outlier detection: a failing endpoint is ejected (visible in /clusters and /stats), avoided, and returns once healthy', { timeout: 90_000 }, async () => {
  const cluster = 'outbound|8080||flaky.default.svc.cluster.local';
  cp.write('dr-flaky.yaml', `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: flaky, namespace: default}
spec:
  host: flaky
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection:
      consecutive5xxErrors: 2
      interval: 200ms
      baseEjectionTime: 2s
      maxEjectionPercent: 100
`);
  await apply('vs-flaky.yaml', vs('flaky', `  - match: [{uri: {prefix: /flaky}}]
    retries: {attempts: 0}
    route: [{destination: {host: flaky}}]
`), async () => (await httpGet(gwPort, '/flaky')).status === 200);
  await waitFor('outlier_detection in config_dump', async () => (await (await fetch(`http://127.0.0.1:${gw.ports.admin}/config_dump`)).text()).includes('"consecutive_5xx"'));
  // Both endpoints get traffic while healthy.
  await waitFor('both flaky endpoints serve', async () => {
    await httpGet(gwPort, '/flaky');
    return flakyA.hits > 0 && flakyB.hits > 0;
  }, 10_000);

  flakyB.failing = true;
  const bAddr = `127.0.0.1:${flakyB.port}`;
  await waitFor('flaky-b ejected in /clusters', async () => {
    await pool([1, 2, 3, 4], 2, () => httpGet(gwPort, '/flaky'));
    return (await adminHostFlags(gw.ports.admin, cluster)).get(bAddr)?.includes('/failed_outlier_check');
  }, 15_000, 100);
  const stats = await adminStats(gw.ports.admin);
  assert.equal(stats.get(`cluster.${cluster}.outlier_detection.ejections_active`), 1);
  assert.ok((stats.get(`cluster.${cluster}.outlier_detection.ejections_enforced_total`) ?? 0) >= 1);
  assert.equal((await adminHostFlags(gw.ports.admin, cluster)).get(`127.0.0.1:${flakyA.port}`), 'healthy');

  // While ejected every request goes to flaky-a.
  const bHits = flakyB.hits;
  const during = await pool(Array.from({ length: 10 }, (_, i) => i), 2, () => httpGet(gwPort, '/flaky'));
  const flags = await adminHostFlags(gw.ports.admin, cluster);
  if (flags.get(bAddr)?.includes('/failed_outlier_check')) {
    assert.ok(during.every((r) => r.status === 200 && json(r.body).name === 'flaky-a'), during.map((r) => r.status).join(','));
    assert.equal(flakyB.hits, bHits);
  }

  // Healthy again: after baseEjectionTime it returns and gets traffic.
  flakyB.failing = false;
  await waitFor('flaky-b back to healthy in /clusters', async () => (await adminHostFlags(gw.ports.admin, cluster)).get(bAddr) === 'healthy', 15_000, 100);
  assert.equal((await adminStats(gw.ports.admin)).get(`cluster.${cluster}.outlier_detection.ejections_active`), 0);
  const hitsBack = flakyB.hits;
  await waitFor('flaky-b serves again', async () => {
    const r = await httpGet(gwPort, '/flaky');
    assert.equal(r.status, 200);
    return flakyB.hits > hitsBack;
  }, 10_000);
});

test('a malformed upstream HTTP/1.1 response is a 502 with flag UPE (Envoy: upstream protocol error) in istio_requests_total', { timeout: 60_000 }, async () => {
  // A raw TCP backend answering every request with a status line that is not HTTP.
  const sockets = new Set<Socket>();
  const garbage = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.once('data', () => socket.write('HTTP/1.1 2000 NOT-HTTP\r\nx y: z\r\n\r\n'));
  });
  await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve));
  try {
    const port = (garbage.address() as { port: number }).port;
    cp.write('svc-garbage.yaml', serviceYaml('garbage', [port]));
    await apply('vs-garbage.yaml', vs('garbage', `  - match: [{uri: {prefix: /garbage}}]
    route: [{destination: {host: garbage}}]
`), async () => (await httpGet(gwPort, '/garbage')).status === 502);
    const k = key('garbage');
    const r = await httpGet(gwPort, `/garbage?key=${k}`);
    assert.equal(r.status, 502, r.body);
    assert.equal(r.body, 'upstream connect error or disconnect/reset before headers. reset reason: protocol error');
    // The gateway reports it with Istio's labels: response_code 502, response_flags UPE.
    const series = await waitFor('istio_requests_total 502 UPE', async () => {
      const s = select(await scrape(gw.ports.prometheus), 'istio_requests_total', { response_code: '502', response_flags: 'UPE' });
      return s.length >= 1 && s[0].value >= 2 ? s : undefined;
    }, 10_000, 100);
    assert.equal(series[0].labels.destination_service, 'garbage.default.svc.cluster.local');
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => garbage.close(() => resolve()));
  }
});
