/**
 * TEST-ONLY helpers for end-to-end tests of the HTTP engine: a front listener on 127.0.0.1:0 that
 * hands accepted sockets to a connection manager (what the listener layer will do), real backend
 * servers, and small HTTP clients (HTTP/1.1 with a fresh connection, h2c, raw socket).
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import { StaticClusterManager } from './static-cluster-manager.ts';
import { createConnectionManager, type ConnectionManagerOptions, type DownstreamProtocol, type HttpConnectionManager } from '../connection-manager.ts';

/** A running proxy front for tests. */
export interface TestProxy {
  readonly cm: HttpConnectionManager;
  readonly port: number;
  readonly h2cPort: number;
  close(): Promise<void>;
}

/** Start a connection manager behind two loopback listeners (HTTP/1.1 and h2c prior knowledge). */
export async function startProxy(opts: ConnectionManagerOptions): Promise<TestProxy> {
  const cm = createConnectionManager(opts);
  const mk = async (protocol: DownstreamProtocol) => {
    const srv = net.createServer((s) => cm.handleConnection(s, protocol));
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    return srv;
  };
  const a = await mk('http/1.1');
  const b = await mk('h2c-preface');
  return {
    cm,
    port: (a.address() as net.AddressInfo).port,
    h2cPort: (b.address() as net.AddressInfo).port,
    async close() {
      a.close();
      b.close();
      await cm.close(200);
    },
  };
}

/** Start a backend HTTP/1.1 server on 127.0.0.1:0; returns its `host:port`. */
export async function startBackend(handler: http.RequestListener): Promise<{ server: http.Server; endpoint: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const endpoint = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return {
    server, endpoint,
    close: async () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** A port nothing listens on (bound then closed). */
export async function deadEndpoint(): Promise<string> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  s.close();
  await once(s, 'close');
  return `127.0.0.1:${port}`;
}

/** Result of a test request. */
export interface TestResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  trailers: Record<string, string | undefined>;
}

/** One HTTP/1.1 request on a fresh connection. */
export function request1(port: number, opts: { method?: string; path?: string; headers?: Record<string, string>; body?: string } = {}): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/', headers: opts.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, trailers: res.trailers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** One h2c request (prior knowledge) on a fresh session. */
export function request2(port: number, opts: { method?: string; path?: string; headers?: Record<string, string>; body?: string; authority?: string } = {}): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(`http://${opts.authority ?? '127.0.0.1'}:${port}`, { createConnection: () => net.connect(port, '127.0.0.1') });
    s.on('error', reject);
    const st = s.request({ ':method': opts.method ?? 'GET', ':path': opts.path ?? '/', ...(opts.headers ?? {}) }, { endStream: opts.body === undefined });
    let status = 0;
    let headers: http.IncomingHttpHeaders = {};
    let trailers: Record<string, string | undefined> = {};
    let body = '';
    st.on('response', (h) => { status = Number(h[':status']); headers = h as http.IncomingHttpHeaders; });
    st.on('trailers', (t) => { trailers = t as Record<string, string>; });
    st.setEncoding('utf8');
    st.on('data', (d) => { body += d; });
    st.on('end', () => { s.close(); resolve({ status, headers, body, trailers }); });
    st.on('error', (e) => { s.destroy(); reject(e); });
    if (opts.body !== undefined) st.end(opts.body);
  });
}

/** Send raw bytes on a fresh connection and collect everything until the server closes (or `waitMs`). */
export function rawRequest(port: number, data: string | Buffer | ((s: net.Socket) => void), waitMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => { s.destroy(); resolve(out); }, waitMs);
    s.on('data', (d) => { out += d.toString('latin1'); });
    s.on('error', () => {});
    s.on('close', () => { clearTimeout(timer); resolve(out); });
    s.on('connect', () => {
      if (typeof data === 'function') data(s);
      else s.write(data);
    });
  });
}

/** A deterministic uniform random source (mulberry32) for seeded tests. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Minimal HCM config: given route config (inline), filters before the router. */
export function hcmConfig(routeConfig: object, filters: object[] = [], extra: object = {}): Record<string, unknown> {
  return {
    stat_prefix: 'test',
    route_config: routeConfig,
    http_filters: [...filters, { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
    ...extra,
  };
}

/**
 * A proxy in front of one backend (`handler`) whose route table answers `/admin...` with 403 (the
 * policy a crafted request must not get around) and sends everything else to it; both are closed
 * after the test. `extra`: more HttpConnectionManager fields.
 */
export async function startAdminDeniedProxy(t: { after(fn: () => unknown): void }, handler: http.RequestListener, extra: object = {}): Promise<TestProxy> {
  const be = await startBackend(handler);
  const cm = new StaticClusterManager({ a: { endpoints: [be.endpoint] } });
  const proxy = await startProxy({
    clusterManager: cm,
    config: hcmConfig({ virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [
      { match: { prefix: '/admin' }, direct_response: { status: 403, body: { inline_string: 'denied' } } },
      { match: { prefix: '/' }, route: { cluster: 'a' } },
    ] }] }, [], extra),
  });
  t.after(async () => { await proxy.close(); await be.close(); cm.close(); });
  return proxy;
}
