/**
 * Istio's metrics merging: the status port's `/stats/prometheus` (15020) serves the proxy's own
 * metrics followed by the application's, scraped from the port and path the workload's
 * `prometheus.io/*` annotations named, so one Prometheus scrape target per pod carries both (with
 * mTLS STRICT, Prometheus could not reach the app's port directly). As Istio's agent does, a
 * failed app scrape never fails the merged scrape: the proxy's metrics are still served and
 * `istio_agent_scrape_failures_total{type="application"}` counts the failure.
 */
import http from '../../node-http.ts';

/** Where the application serves its metrics (Istio's ISTIO_PROMETHEUS_ANNOTATIONS, resolved). */
export interface AppMetricsTarget {
  readonly url: URL;
}

/** Parses `--app-metrics-url`: an http:// URL on loopback or the pod's own address. */
export function parseAppMetricsUrl(text: string): AppMetricsTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`not a URL: '${text}'`);
  }
  if (url.protocol !== 'http:') throw new Error(`must be http:// (the app's plaintext metrics port), got '${url.protocol}'`);
  if (url.port === '') throw new Error(`needs a port, got '${text}'`);
  return { url };
}

/**
 * The app metrics URL from Istio's ISTIO_PROMETHEUS_ANNOTATIONS (`{"scrape":"true","port":"9090",
 * "path":"/metrics"}`, the pod's original prometheus.io annotations saved by injection), or
 * undefined when it is unset, says scrape false, or names no port.
 */
export function appMetricsUrlFromIstioEnv(value: string | undefined): string | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new Error(`ISTIO_PROMETHEUS_ANNOTATIONS is not JSON: '${value.slice(0, 80)}'`);
  }
  const a = (parsed ?? {}) as { scrape?: unknown; port?: unknown; path?: unknown };
  if (String(a.scrape ?? 'true').toLowerCase() === 'false') return undefined;
  if (a.port === undefined || a.port === '') return undefined;
  const path = typeof a.path === 'string' && a.path !== '' ? (a.path.startsWith('/') ? a.path : `/${a.path}`) : '/metrics';
  return `http://127.0.0.1:${String(a.port)}${path}`;
}

/** Scrape timeout when Prometheus does not send X-Prometheus-Scrape-Timeout-Seconds. */
const DefaultTimeoutMs = 5_000;
/** Bytes of app metrics accepted; a larger answer is cut off and counted as a failure. */
const MaxBodyBytes = 16 * 1024 * 1024;

/** The app's metrics text, or the reason it could not be read. */
export function scrapeApp(target: AppMetricsTarget, timeoutMs: number): Promise<{ text: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = http.get(target.url, { timeout: timeoutMs, headers: { accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        resolve({ error: `HTTP ${res.statusCode}` });
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MaxBodyBytes) {
          req.destroy();
          resolve({ error: `more than ${MaxBodyBytes} bytes` });
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => resolve({ text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => resolve({ error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ error: err.message }));
  });
}

/** Scrape timeout from Prometheus's header, a little under it so the merged answer still arrives in time. */
export function scrapeTimeoutMs(header: string | string[] | undefined): number {
  const seconds = Number(Array.isArray(header) ? header[0] : header);
  if (!Number.isFinite(seconds) || seconds <= 0) return DefaultTimeoutMs;
  return Math.max(100, Math.round(seconds * 1000 * 0.9));
}

/** Merges the proxy's exposition text with the app's, keeping the failure counter. */
export class AppMetricsMerger {
  private failures = 0;
  private readonly target: AppMetricsTarget;
  private readonly onFailure: (reason: string) => void;

  constructor(target: AppMetricsTarget, onFailure: (reason: string) => void = () => {}) {
    this.target = target;
    this.onFailure = onFailure;
  }

  async merged(proxyText: string, timeoutMs: number): Promise<string> {
    const app = await scrapeApp(this.target, timeoutMs);
    if ('error' in app) {
      this.failures++;
      this.onFailure(`${this.target.url.href}: ${app.error}`);
    }
    const out = [withNewline(proxyText), this.failureText()];
    // An OpenMetrics answer ends with `# EOF`, which must not end the merged text early.
    if ('text' in app) out.push(withNewline(app.text.replace(/^# EOF\s*$/m, '')));
    return out.join('');
  }

  private failureText(): string {
    return '# HELP istio_agent_scrape_failures_total The total number of failed scrapes.\n'
      + '# TYPE istio_agent_scrape_failures_total counter\n'
      + `istio_agent_scrape_failures_total{type="application"} ${this.failures}\n`;
  }
}

function withNewline(text: string): string {
  return text === '' || text.endsWith('\n') ? text : `${text}\n`;
}
