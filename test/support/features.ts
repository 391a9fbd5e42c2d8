/**
 * Helpers for the YAML-driven feature tests (test/proxy-features-*.test.ts): Kubernetes Service +
 * EndpointSlice YAML for loopback backends, a scripted HTTP backend whose N-th attempt for a key
 * gets a chosen delay and status (and that records when each attempt arrived and ended), a plain
 * HTTP client that sets any Host header, and readers for the proxy admin `/clusters` and `/stats`.
 */
import http from 'node:http';
import type net from 'node:net';

/** A Service with one port plus one EndpointSlice per backend port (all on 127.0.0.1). */
export function serviceYaml(name: string, backendPorts: readonly number[], opts: { port?: number; portName?: string; appProtocol?: string } = {}): string {
  const port = opts.port ?? 8080;
  const portName = opts.portName ?? 'http';
  const app = opts.appProtocol ? `, appProtocol: ${opts.appProtocol}` : '';
  let out = `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: default}
spec:
  ports: [{name: ${portName}, port: ${port}${app}}]
`;
  backendPorts.forEach((p, i) => {
    out += `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}-${i}, namespace: default, labels: {kubernetes.io/service-name: ${name}}}
addressType: IPv4
ports: [{name: ${portName}, port: ${p}, protocol: TCP${app}}]
endpoints:
- addresses: [127.0.0.1]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: ${name}-pod-${i}, namespace: default}
`;
  });
  return out;
}

/** One attempt seen by a scripted backend. */
export interface AttemptRecord {
  readonly n: number;
  readonly arrivedAt: number;
  /** Other requests of the same key still in flight when this one arrived. */
  readonly inFlightAtArrival: number;
  endedAt?: number;
  /** True when the proxy closed the request before the backend answered (cancelled attempt). */
  aborted?: boolean;
}

export interface ScriptedBackend {
  readonly port: number;
  readonly name: string;
  /** Attempts per `key` query parameter. */
  readonly attempts: Map<string, AttemptRecord[]>;
  /** Requests answered (any key), for "who got traffic" checks. */
  hits: number;
  /** When true every request gets 503 at once (outlier detection tests). */
  failing: boolean;
  close(): Promise<void>;
}

/**
 * An HTTP/1.1 backend scripted by the query: `key=K` names the logical request, `d=300,0` gives the
 * delay in ms of attempt 1, 2, ... (the last value repeats), `s=503,200` the status likewise.
 * Answers JSON `{ name, key, attempt }`.
 */
export async function startScriptedBackend(name: string): Promise<ScriptedBackend> {
  const attempts = new Map<string, AttemptRecord[]>();
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const key = url.searchParams.get('key') ?? '';
    const list = attempts.get(key) ?? [];
    attempts.set(key, list);
    const rec: AttemptRecord = { n: list.length + 1, arrivedAt: performance.now(), inFlightAtArrival: list.filter((a) => a.endedAt === undefined).length };
    list.push(rec);
    if (attempts.size > 1000) attempts.delete(attempts.keys().next().value as string);
    const pick = (param: string, dflt: number): number => {
      const vals = (url.searchParams.get(param) ?? '').split(',').filter((v) => v !== '').map(Number);
      return vals.length ? vals[Math.min(rec.n - 1, vals.length - 1)] : dflt;
    };
    req.resume();
    if (b.failing) {
      b.hits++;
      rec.endedAt = performance.now();
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end(`${name} failing\n`);
      return;
    }
    const timer = setTimeout(() => {
      b.hits++;
      rec.endedAt = performance.now();
      const body = JSON.stringify({ name, key, attempt: rec.n });
      res.writeHead(pick('s', 200), { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    }, pick('d', 0));
    res.on('close', () => {
      if (rec.endedAt === undefined) {
        clearTimeout(timer);
        rec.endedAt = performance.now();
        rec.aborted = true;
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const b: ScriptedBackend = {
    port: (server.address() as net.AddressInfo).port,
    name,
    attempts,
    hits: 0,
    failing: false,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
  return b;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
}

/** GET over a fresh connection (no pooling, so concurrent bursts are really concurrent). */
export function httpGet(port: number, path: string, headers: Record<string, string> = {}, timeoutMs = 15_000): Promise<Reply> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ms: performance.now() - started }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** The proxy admin `/stats` as a map of counter/gauge name -> value. */
export async function adminStats(adminPort: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/stats`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const i = line.lastIndexOf(': ');
    if (i > 0) out.set(line.slice(0, i), Number(line.slice(i + 2)));
  }
  return out;
}

/** `/clusters` health_flags of each host of one cluster, keyed by `ip:port`. */
export async function adminHostFlags(adminPort: number, cluster: string): Promise<Map<string, string>> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/clusters`)).text();
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const parts = line.split('::');
    if (parts[0] === cluster && parts[2] === 'health_flags') out.set(parts[1], parts[3]);
  }
  return out;
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
