/**
 * Istio's metrics merging through `trellis up`: a Workload that declares its metrics with the
 * usual `prometheus.io/*` annotations gets one scrape target, its sidecar's status port, serving
 * the sidecar's Istio metrics and the app's own. An app whose metrics endpoint fails costs only
 * its own series (counted in istio_agent_scrape_failures_total); a Workload that opts out with
 * `prometheus.istio.io/merge-metrics: "false"` gets no status port; an annotation naming a port
 * the Workload does not listen on is refused before anything starts. Real binary, curl-free.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readStateFile, StartTimeoutS, trellis } from './up-support.ts';

const APP = `import http from 'node:http';
let orders = 0;
http.createServer((req, res) => {
  if (req.url === '/metrics') {
    res.setHeader('content-type', 'text/plain; version=0.0.4');
    return res.end('# HELP shop_orders_total Orders taken.\\n# TYPE shop_orders_total counter\\nshop_orders_total ' + orders + '\\n');
  }
  if (req.url === '/order') orders++;
  else if (req.url !== '/') res.statusCode = 404;
  res.end('ok');
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

const workload = (name: string, annotations: Record<string, string>) => `apiVersion: trellis.dev/v1alpha1
kind: Workload
metadata:
  name: ${name}
  labels: {app: ${name}}
  annotations: ${JSON.stringify(annotations)}
spec:
  command: [${JSON.stringify(process.execPath)}, app.mjs]
  ports: [{port: 8080, protocol: HTTP}]
---
apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec:
  selector: {app: ${name}}
  ports: [{name: http, port: 8080}]
`;

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
}

describe('metrics merging: the app metrics with the sidecar metrics on its status port', { timeout: 240_000 }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'trellis-merge-'));
  const stateDir = join(tmp, 'state');
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_STATE_HOME: join(tmp, 'xdg') };
  const sidecar = (workloadName: string) => {
    const p = readStateFile(stateDir).processes.find((x) => x.role === 'sidecar' && x.workload === workloadName);
    assert.ok(p, `sidecar of ${workloadName} in state.json`);
    return p;
  };

  before(async () => {
    writeFileSync(join(tmp, 'app.mjs'), APP);
    writeFileSync(join(tmp, 'mesh.yaml'), [
      workload('shop', { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080', 'prometheus.io/path': '/metrics' }),
      workload('broken', { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080', 'prometheus.io/path': '/no-metrics-here' }),
      workload('private', { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080', 'prometheus.istio.io/merge-metrics': 'false' }),
    ].join('---\n'));
    const r = await trellis(['up', '--detach', '--config', join(tmp, 'mesh.yaml'), '--state-dir', stateDir, '--start-timeout', String(StartTimeoutS)], { cwd: tmp, env, timeoutMs: 200_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  after(async () => {
    await trellis(['down', '--state-dir', stateDir], { env });
    rmSync(tmp, { recursive: true, force: true });
  });

  test("one scrape of the status port has the sidecar's istio_requests_total and the app's shop_orders_total", async () => {
    const p = sidecar('shop');
    assert.ok(p.ports.status > 0, `status port recorded: ${JSON.stringify(p.ports)}`);
    for (let i = 0; i < 3; i++) assert.equal((await get(p.ports['inbound:8080'], '/order')).status, 200);
    const merged = await get(p.ports.status, '/stats/prometheus');
    assert.equal(merged.status, 200);
    assert.match(merged.body, /^shop_orders_total 3$/m, 'the app counted the three orders that went through its sidecar');
    assert.match(merged.body, /istio_requests_total\{[^}]*reporter="destination"[^}]*response_code="200"[^}]*\} 3/, 'and the sidecar reported them');
    assert.match(merged.body, /istio_agent_scrape_failures_total\{type="application"\} 0/);
    const own = await get(p.ports.prometheus, '/stats/prometheus');
    assert.doesNotMatch(own.body, /shop_orders_total/, '15090 stays the proxy metrics only, as in Istio');
  });

  test('an app metrics endpoint that fails: the sidecar metrics are still served, the failure is counted', async () => {
    const p = sidecar('broken');
    await get(p.ports['inbound:8080'], '/');
    const first = await get(p.ports.status, '/stats/prometheus');
    const second = await get(p.ports.status, '/stats/prometheus');
    assert.equal(second.status, 200);
    assert.match(first.body, /istio_requests_total\{/);
    assert.match(second.body, /istio_agent_scrape_failures_total\{type="application"\} 2/);
  });

  test('merge-metrics "false": no status port, Prometheus scrapes the app itself', () => {
    const p = sidecar('private');
    assert.equal(p.ports.status, undefined, JSON.stringify(p.ports));
  });

  test('`up --with prometheus` would scrape the status port of a merging sidecar and 15090-style ports otherwise', async () => {
    const { scrapeTargets } = await import('../src/runtime/prometheus.ts');
    const { proxies } = scrapeTargets(readStateFile(stateDir));
    const target = (w: string) => proxies.find((g) => g.labels.workload === w)?.targets[0];
    assert.equal(target('shop'), `127.0.0.1:${sidecar('shop').ports.status}`);
    assert.equal(target('private'), `127.0.0.1:${sidecar('private').ports.prometheus}`);
  });

  test('a prometheus.io/port the Workload does not listen on is refused before anything starts, naming Workload and annotation', async () => {
    const badDir = join(tmp, 'bad');
    writeFileSync(join(tmp, 'bad.yaml'), workload('typo', { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9090' }));
    const r = await trellis(['up', '--detach', '--config', join(tmp, 'bad.yaml'), '--state-dir', badDir], { cwd: tmp, env, timeoutMs: 60_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /Workload default\/typo: annotation prometheus\.io\/port is 9090, which is not one of the Workload's ports \(8080\)/);
  });
});
