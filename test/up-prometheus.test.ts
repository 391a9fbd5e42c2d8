/**
 * Istio's metrics through a real Prometheus: `trellis up --detach --with prometheus` runs the demo
 * and Debian's `prometheus` binary scraping every proxy and the control plane (generated config).
 * After a known number of requests, the queries people run on Istio return the expected numbers
 * (within PromQL's extrapolation), and Istio's own Grafana dashboards (../shared/istio-dashboards,
 * unmodified) run against it: every expression parses, every HTTP panel of the mesh, service and
 * workload dashboards has data, and the pilot dashboard has data except the series that only
 * istiod on Kubernetes has (Go runtime, galley, cAdvisor, the injection webhook), reported by name.
 * For the TCP panels the test adds a TCP service to its copy of the demo (`tcp-echo`, port 9000
 * named `tcp`, so the mesh proxies it as opaque TCP over auto-mTLS with Istio's TCP metadata
 * exchange) and sends TCP through web-api-v1's sidecar, as that app would: the service and
 * workload dashboards then have every panel with data across the demo's services and workloads.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipIf, skipUnlessTools } from './support/skip.ts';
import { curl, demoCopy, eventually, logTails, readStateFile, trellis, StartTimeoutS, root } from './support/trellis-up.ts';
import type { RuntimeState } from '../src/runtime/state.ts';
import { finiteValues, loadDashboard, promQuery, resolveVariables, runPanels, type PanelOutcome } from './support/grafana-dashboards.ts';

const dashboards = join(root, '../shared/istio-dashboards');
const skip = skipUnlessTools('curl', 'prometheus') || skipIf(!existsSync(dashboards), 'shared-data', `needs ${dashboards}`);

/**
 * A TCP service for the dashboards' TCP panels: the echo sample (it happens to speak HTTP, which
 * the mesh does not look at on a port named `tcp`) behind its own sidecar.
 */
const TcpEcho = `apiVersion: v1
kind: Service
metadata: {name: tcp-echo, namespace: default}
spec:
  selector: {app: tcp-echo}
  ports:
  - name: tcp
    port: 9000
---
apiVersion: trellis.dev/v1alpha1
kind: Workload
metadata:
  name: tcp-echo-v1
  namespace: default
  labels: {app: tcp-echo, version: v1}
spec:
  command: [trellis, sample, echo]
  ports:
  - name: tcp
    port: 9000
`;

/** Series only istiod on Kubernetes has: reported as not applicable, by name. */
const NotApplicable = /\b(go_[a-z_]+|galley_[a-z_]+|container_[a-z_]+|sidecar_injection_[a-z_]+)/;

describe('trellis up --with prometheus: Istio queries and dashboards', { skip, timeout: 900_000 }, () => {
  let work = '';
  let config = '';
  let stateDir = '';
  let state: RuntimeState;
  let prom = '';
  let recUrl = '';
  /** web-api-v1's sidecar's local port for tcp-echo:9000 (a TCP proxy). */
  let tcpUrl = '';

  const rec = (headers: Record<string, string> = {}) => curl(recUrl, { host: 'recommendation:8080', ...headers });
  const scalar = async (q: string): Promise<number> => {
    const r = await promQuery(prom, q);
    assert.equal(r.status, 'success', `${q}: ${r.error}`);
    const v = finiteValues(r);
    return v.length === 0 ? NaN : v.reduce((a, b) => a + b, 0);
  };

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'trellis-up-prom-'));
    config = demoCopy();
    writeFileSync(join(config, 'tcp-echo.yaml'), TcpEcho);
    stateDir = join(work, 'state');
    const r = await trellis(['up', '--detach', '--with', 'prometheus', '--config', config, '--state-dir', stateDir, '--gateway-port', '0', '--start-timeout', String(StartTimeoutS)], { cwd: work, timeoutMs: 600_000 });
    assert.equal(r.code, 0, `up failed after ${r.ms} ms: ${r.stderr}\n${r.stdout}\n${logTails(stateDir)}`);
    assert.match(r.stdout, /prometheus\s+http:\/\/127\.0\.0\.1:\d+\//, 'up prints the Prometheus URL');
    state = readStateFile(stateDir);
    prom = state.prometheusUrl!;
    const web = state.processes.find((p) => p.role === 'sidecar' && p.workload === 'web-api-v1')!;
    recUrl = `http://127.0.0.1:${web.ports['outbound:8080']}/`;
    tcpUrl = `http://127.0.0.1:${web.ports['outbound:9000']}/`;
    // Every proxy (5 sidecars, the gateway) and the control plane are scraped.
    const up = await eventually(120_000, async () => {
      const t = (await (await fetch(`${prom}api/v1/targets`)).json()) as { data: { activeTargets: { health: string }[] } };
      return t.data.activeTargets.length === 7 && t.data.activeTargets.every((x) => x.health === 'up');
    });
    assert.ok(up, 'Prometheus scrapes all 7 targets');
  });

  after(async () => {
    if (stateDir) await trellis(['down', '--state-dir', stateDir]);
    rmSync(work, { recursive: true, force: true });
    rmSync(config, { recursive: true, force: true });
  });

  test('istio_requests_total, an error rate and histogram_quantile after a known number of requests', async (t) => {
    const ok200 = 'istio_requests_total{destination_service_name="recommendation",response_code="200",reporter="destination"}';
    const fromWeb = 'istio_requests_total{reporter="source",source_workload="web-api-v1",destination_service_name="recommendation"}';
    const fromWebErr = 'istio_requests_total{reporter="source",source_workload="web-api-v1",destination_service_name="recommendation",response_code=~"5.."}';
    // Warm-up: the series exist before the measured requests, for longer than the 1m window, so
    // increase() sees samples across the whole window (it extrapolates a younger series' slope).
    assert.equal((await rec()).status, 200);
    assert.equal((await rec({ 'x-demo-fail': 'recommendation' })).status, 503);
    const warmedAt = Date.now();
    assert.ok(await eventually(60_000, async () => (await scalar(`sum(${fromWebErr})`)) >= 1 && (await scalar(`sum(${ok200})`)) >= 1), 'warm-up scraped');
    await new Promise((r) => setTimeout(r, Math.max(0, warmedAt + 65_000 - Date.now())));
    const base200 = await scalar(`sum(${ok200})`);
    const baseWeb = await scalar(`sum(${fromWeb})`);
    const OK = 30;
    const FAIL = 10;
    for (let i = 0; i < OK + FAIL; i++) {
      const fail = i % 4 === 3;
      const r = await rec(fail ? { 'x-demo-fail': 'recommendation' } : {});
      assert.equal(r.status, fail ? 503 : 200);
    }
    // The last scrape holds every request: the raw counters moved by exactly what was sent.
    assert.ok(await eventually(60_000, async () => (await scalar(`sum(${ok200})`)) - base200 >= OK && (await scalar(`sum(${fromWeb})`)) - baseWeb >= OK + FAIL), 'requests scraped');
    assert.equal((await scalar(`sum(${ok200})`)) - base200, OK);
    assert.equal((await scalar(`sum(${fromWeb})`)) - baseWeb, OK + FAIL);

    const increase = await scalar(`sum(increase(${ok200}[1m]))`);
    const errorRate = await scalar(`sum(rate(${fromWebErr}[1m])) / sum(rate(${fromWeb}[1m]))`);
    const p99 = await scalar('histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{destination_service_name="recommendation",reporter="destination"}[1m])) by (le))');
    t.diagnostic(`sum(increase(istio_requests_total{recommendation,200,destination}[1m])) = ${increase.toFixed(2)} for ${OK} requests (PromQL extrapolates to the window)`);
    t.diagnostic(`error rate (source web-api-v1 -> recommendation) = ${errorRate.toFixed(3)}, expected ${(FAIL / (OK + FAIL)).toFixed(3)}`);
    t.diagnostic(`histogram_quantile(0.99, istio_request_duration_milliseconds) for recommendation = ${p99.toFixed(1)} ms`);
    assert.ok(Math.abs(increase - OK) <= OK * 0.25, `increase ${increase} vs ${OK}`);
    assert.ok(Math.abs(errorRate - FAIL / (OK + FAIL)) <= 0.05, `error rate ${errorRate}`);
    assert.ok(Number.isFinite(p99) && p99 > 0, `p99 ${p99}`);
  });

  test('Istio\'s Grafana dashboards: expressions parse, HTTP panels have data, pilot panels except istiod-only series', async (t) => {
    // Steady traffic through the gateway while the dashboards are read (irate needs moving samples).
    const gateway = state.gatewayUrl!;
    let stop = false;
    let sent = 0;
    let tcpSent = 0;
    const load = (async () => {
      const deadline = Date.now() + 240_000;
      while (!stop && sent < 3000 && Date.now() < deadline) {
        await curl(gateway);
        // One TCP connection too (the echo's HTTP answer rides on it as opaque bytes).
        if ((await curl(tcpUrl, { host: 'tcp-echo:9000' })).status === 200) tcpSent++;
        sent++;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      await new Promise((r) => setTimeout(r, 15_000));
      assert.ok(tcpSent > 0, 'TCP through web-api-v1\'s sidecar to tcp-echo works');
      // Both reporters know the peer workload from Istio's TCP metadata exchange.
      const tcpSrc = 'istio_tcp_sent_bytes_total{reporter="source",source_workload="web-api-v1",destination_workload="tcp-echo-v1",destination_principal=~"spiffe://.+"}';
      const tcpDst = 'istio_tcp_received_bytes_total{reporter="destination",source_workload="web-api-v1",destination_workload="tcp-echo-v1",connection_security_policy="mutual_tls"}';
      assert.ok(await eventually(30_000, async () => (await scalar(`sum(${tcpSrc})`)) > 0 && (await scalar(`sum(${tcpDst})`)) > 0), `${tcpSrc} and ${tcpDst} have data`);
      // A dashboard shows one service or workload: HTTP panels have data for an HTTP one, TCP
      // panels for a TCP one (as in Istio's bookinfo, whose TCP panels are mongodb's). Every panel
      // of a dashboard must have data for at least one of the demo's picks.
      const runs: [string, Record<string, string>][] = [
        ['istio-mesh-dashboard.gen.json', {}],
        ['istio-service-dashboard.json', { service: 'recommendation.default.svc.cluster.local' }],
        ['istio-service-dashboard.json', { service: 'tcp-echo.default.svc.cluster.local' }],
        ['istio-workload-dashboard.json', { namespace: 'default', workload: 'recommendation-v1' }],
        ['istio-workload-dashboard.json', { namespace: 'default', workload: 'web-api-v1' }],
        ['istio-workload-dashboard.json', { namespace: 'default', workload: 'tcp-echo-v1' }],
        ['pilot-dashboard.gen.json', {}],
      ];
      const withData = new Map<string, { panels: PanelOutcome[]; data: boolean[] }>();
      for (const [file, picks] of runs) {
        const d = loadDashboard(join(dashboards, file));
        const { vars, values } = await resolveVariables(prom, d, picks);
        const panels = await runPanels(prom, d, vars);
        const unparsed = panels.filter((p) => !p.parsed);
        assert.deepEqual(unparsed.flatMap((p) => p.errors), [], `${file}: expressions that do not parse`);
        const na = (p: PanelOutcome) => p.exprs.every((e) => NotApplicable.test(e));
        const tcp = (p: PanelOutcome) => p.exprs.every((e) => e.includes('istio_tcp_'));
        const expected = panels.filter((p) => !na(p) && !tcp(p));
        const missing = expected.filter((p) => !p.hasData).map((p) => p.title);
        const naNames = [...new Set(panels.filter(na).flatMap((p) => p.exprs.map((e) => NotApplicable.exec(e)?.[1] ?? '')))].sort();
        t.diagnostic(`${file} ${JSON.stringify(picks)}: ${panels.filter((p) => p.hasData).length}/${panels.length} panels with data; ` +
          `${expected.length - missing.length}/${expected.length} HTTP/control-plane panels with data; ` +
          `${panels.filter(tcp).filter((p) => p.hasData).length}/${panels.filter(tcp).length} TCP panels with data` +
          (naNames.length > 0 ? `; not applicable (istiod on Kubernetes only): ${naNames.join(', ')}` : '') +
          `; variables ${JSON.stringify(vars)} from ${JSON.stringify(values)}`);
        // The HTTP and control-plane panels have data for the HTTP pick (the first of each dashboard).
        if (!withData.has(file)) assert.deepEqual(missing, [], `${file}: panels without data`);
        const seen = withData.get(file) ?? { panels, data: panels.map(() => false) };
        panels.forEach((p, i) => (seen.data[i] ||= p.hasData));
        withData.set(file, seen);
      }
      for (const [file, { panels, data }] of withData) {
        const applicable = panels.map((p, i) => i).filter((i) => !panels[i].exprs.every((e) => NotApplicable.test(e)));
        const empty = applicable.filter((i) => !data[i]).map((i) => panels[i].title);
        t.diagnostic(`${file}: ${data.filter(Boolean).length}/${panels.length} panels with data over the picks above (${applicable.length - empty.length}/${applicable.length} applicable)`);
        assert.deepEqual(empty, [], `${file}: panels without data for any of the demo's services or workloads`);
      }
    } finally {
      stop = true;
      await load;
    }
  });
});
