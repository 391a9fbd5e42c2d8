import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AppMetricsMerger, appMetricsUrlFromIstioEnv, parseAppMetricsUrl, scrapeTimeoutMs } from './app-metrics.ts';

async function appServer(t: { after: (fn: () => void) => void }, handler: http.RequestListener): Promise<number> {
  const s = http.createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  t.after(() => s.close());
  return (s.address() as AddressInfo).port;
}

const proxyText = '# TYPE istio_requests_total counter\nistio_requests_total{response_code="200"} 3\n';

test('the merged text is the proxy metrics, the failure counter, then the app metrics', async (t) => {
  const port = await appServer(t, (req, res) => {
    assert.equal(req.url, '/metrics');
    res.end('# TYPE app_orders_total counter\napp_orders_total 7');
  });
  const m = new AppMetricsMerger(parseAppMetricsUrl(`http://127.0.0.1:${port}/metrics`));
  const text = await m.merged(proxyText, 1000);
  assert.ok(text.startsWith(proxyText));
  assert.match(text, /istio_agent_scrape_failures_total\{type="application"\} 0\n/);
  assert.ok(text.endsWith('app_orders_total 7\n'), 'a missing final newline is added');
});

test('an app that is down, errs or hangs costs its metrics only: the proxy metrics are served and the failure counted', async (t) => {
  const reasons: string[] = [];
  const errPort = await appServer(t, (_req, res) => {
    res.statusCode = 500;
    res.end('boom');
  });
  const hangPort = await appServer(t, () => {});
  const closed = await appServer(t, (_req, res) => res.end());
  const down = parseAppMetricsUrl(`http://127.0.0.1:${closed}/metrics`);
  const m500 = new AppMetricsMerger(parseAppMetricsUrl(`http://127.0.0.1:${errPort}/m`), (r) => reasons.push(r));
  let text = await m500.merged(proxyText, 1000);
  assert.ok(text.startsWith(proxyText));
  assert.match(text, /istio_agent_scrape_failures_total\{type="application"\} 1\n$/);
  assert.doesNotMatch(text, /boom/);
  text = await m500.merged(proxyText, 1000);
  assert.match(text, /istio_agent_scrape_failures_total\{type="application"\} 2\n$/);
  const hang = new AppMetricsMerger(parseAppMetricsUrl(`http://127.0.0.1:${hangPort}/m`), (r) => reasons.push(r));
  text = await hang.merged(proxyText, 200);
  assert.match(text, /istio_agent_scrape_failures_total\{type="application"\} 1\n$/);
  assert.ok(reasons.some((r) => r.includes('HTTP 500')), reasons.join('; '));
  assert.ok(reasons.some((r) => r.includes('no answer within 200 ms')), reasons.join('; '));
  assert.ok(down.url.port !== '');
});

test('an OpenMetrics answer loses its # EOF so the merged text does not end early', async (t) => {
  const port = await appServer(t, (_req, res) => res.end('# TYPE a counter\na_total 1\n# EOF\n'));
  const text = await new AppMetricsMerger(parseAppMetricsUrl(`http://127.0.0.1:${port}/metrics`)).merged(proxyText, 1000);
  assert.doesNotMatch(text, /# EOF/);
  assert.match(text, /a_total 1\n/);
});

test("ISTIO_PROMETHEUS_ANNOTATIONS as Istio's injector writes it gives the app metrics URL", () => {
  assert.equal(appMetricsUrlFromIstioEnv('{"scrape":"true","path":"/stats","port":"9090"}'), 'http://127.0.0.1:9090/stats');
  assert.equal(appMetricsUrlFromIstioEnv('{"scrape":"true","port":"8080"}'), 'http://127.0.0.1:8080/metrics', 'default path /metrics');
  assert.equal(appMetricsUrlFromIstioEnv('{"scrape":"false","port":"8080"}'), undefined);
  assert.equal(appMetricsUrlFromIstioEnv('{"scrape":"true"}'), undefined, 'no port: nothing to scrape');
  assert.equal(appMetricsUrlFromIstioEnv(undefined), undefined);
  assert.equal(appMetricsUrlFromIstioEnv(''), undefined);
  assert.throws(() => appMetricsUrlFromIstioEnv('{port: 1'), /ISTIO_PROMETHEUS_ANNOTATIONS is not JSON/);
});

test('--app-metrics-url must be http:// with a port', () => {
  assert.throws(() => parseAppMetricsUrl('https://127.0.0.1:9090/metrics'), /must be http:\/\//);
  assert.throws(() => parseAppMetricsUrl('http://127.0.0.1/metrics'), /needs a port/);
  assert.throws(() => parseAppMetricsUrl('not a url'), /not a URL/);
});

test("the app scrape timeout follows Prometheus's header, a little under it", () => {
  assert.equal(scrapeTimeoutMs('10'), 9000);
  assert.equal(scrapeTimeoutMs(undefined), 5000);
  assert.equal(scrapeTimeoutMs('nonsense'), 5000);
  assert.equal(scrapeTimeoutMs('0.01'), 100);
});
