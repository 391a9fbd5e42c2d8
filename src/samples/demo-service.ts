/**
 * The demo's sample services (web-api -> recommendation -> purchase-history): one small program
 * whose identity and upstreams come from its environment. Each reply is JSON with the service's
 * name, version and pod, plus the nested replies of its upstreams, so one `curl` through the
 * gateway shows the whole call tree and which version answered at each hop.
 *
 * Failure and latency can be injected without redeploying, so the demo can show retries and
 * timeouts: FAIL_PERCENT / FAIL_STATUS / DELAY_MS in the environment, or per request with the
 * headers `x-demo-fail: <service>[:<version>]` and `x-demo-delay: <service>[:<version>]=<ms>`
 * (propagated to upstreams, like Bookinfo propagates `end-user` and tracing headers).
 *
 * Outbound calls go to `http://<service>:<port>` names. With HTTP_PROXY set (explicit capture:
 * the sidecar is an HTTP proxy) the request is sent to the proxy in absolute form; otherwise it is
 * a plain request (transparent capture: iptables sends it to the sidecar).
 */
import http from '../node-http.ts';
import { startDualServer, type AnyRequest, type AnyResponse, type DualServer } from './sniff-server.ts';

export interface DemoServiceOptions {
  name: string;
  version: string;
  namespace: string;
  pod: string;
  host?: string;
  port?: number;
  /** Upstream URLs, e.g. `http://recommendation:8080/`. */
  upstreams: string[];
  failPercent?: number;
  failStatus?: number;
  delayMs?: number;
  /** `http://host:port` of an HTTP proxy for outbound calls (the sidecar in explicit mode). */
  httpProxy?: string;
  /** Upstream call timeout (ms); default 10 s. */
  upstreamTimeoutMs?: number;
  random?: () => number;
}

/** Headers copied from the inbound request to upstream calls. */
export const PROPAGATED_HEADERS = [
  'x-request-id', 'traceparent', 'tracestate', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid',
  'x-b3-sampled', 'x-b3-flags', 'b3', 'end-user', 'user-agent', 'x-demo-fail', 'x-demo-delay',
] as const;

export interface UpstreamReply {
  url: string;
  status: number;
  body?: unknown;
  error?: string;
}

function targets(spec: string | undefined, name: string, version: string): boolean {
  if (!spec) return false;
  return spec.split(',').some((item) => {
    const [svc, ver] = item.trim().split(':');
    return svc === name && (ver === undefined || ver === version);
  });
}

function delayFor(spec: string | undefined, name: string, version: string): number {
  if (!spec) return 0;
  for (const item of spec.split(',')) {
    const [who, ms] = item.trim().split('=');
    if (ms !== undefined && targets(who, name, version)) return Number(ms) || 0;
  }
  return 0;
}

/** One upstream GET, directly or through an HTTP proxy; never rejects. */
export function callUpstream(url: string, headers: Record<string, string>, opts: { httpProxy?: string; timeoutMs: number }): Promise<UpstreamReply> {
  return new Promise((resolve) => {
    const target = new URL(url);
    const proxy = opts.httpProxy ? new URL(opts.httpProxy) : undefined;
    const req = http.request({
      host: proxy ? proxy.hostname : target.hostname,
      port: proxy ? Number(proxy.port || 80) : Number(target.port || 80),
      method: 'GET',
      // Absolute form for a proxy (RFC 9112 section 3.2.2), origin form otherwise.
      path: proxy ? target.href : target.pathname + target.search,
      headers: { ...headers, host: target.host },
      timeout: opts.timeoutMs,
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${opts.timeoutMs} ms`)));
    req.on('error', (err) => resolve({ url, status: 0, error: err.message }));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => resolve({ url, status: res.statusCode ?? 0, error: err.message }));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // plain-text replies (proxy local replies such as "fault filter abort") stay strings
        }
        resolve({ url, status: res.statusCode ?? 0, body });
      });
    });
    req.end();
  });
}

/** Starts a demo service; resolves once listening. */
export async function startDemoService(opts: DemoServiceOptions): Promise<DualServer> {
  const random = opts.random ?? Math.random;
  const timeoutMs = opts.upstreamTimeoutMs ?? 10_000;
  const handler = async (req: AnyRequest, res: AnyResponse) => {
    const started = Date.now();
    for await (const _c of req) void _c;
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body, null, 2) + '\n';
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (url.pathname === '/healthz' || url.pathname === '/ready') {
      send(200, { status: 'ok' });
      return;
    }
    const failHeader = req.headers['x-demo-fail'] as string | undefined;
    const delayHeader = req.headers['x-demo-delay'] as string | undefined;
    const delay = (opts.delayMs ?? 0) + delayFor(delayHeader, opts.name, opts.version);
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    const identity = { service: opts.name, version: opts.version, pod: opts.pod, namespace: opts.namespace };
    if (targets(failHeader, opts.name, opts.version) || random() * 100 < (opts.failPercent ?? 0)) {
      send(opts.failStatus ?? 503, { ...identity, error: 'injected failure' });
      return;
    }
    const headers: Record<string, string> = {};
    for (const name of PROPAGATED_HEADERS) {
      const v = req.headers[name];
      if (typeof v === 'string') headers[name] = v;
    }
    const upstream = await Promise.all(opts.upstreams.map((u) => callUpstream(u, headers, { httpProxy: opts.httpProxy, timeoutMs })));
    const failed = upstream.some((u) => u.status === 0 || u.status >= 500);
    send(failed ? 502 : 200, { ...identity, upstream, durationMs: Date.now() - started });
  };
  return startDualServer((req, res) => void handler(req, res), { host: opts.host, port: opts.port });
}
