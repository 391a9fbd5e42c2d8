/**
 * The proxy's admin API (Envoy-shaped, port 15000 by default) and its health and Prometheus
 * ports (15021 `/healthz/ready`, 15090 `/stats/prometheus`, Istio's ports; the status port 15020
 * serves app probes and the proxy's metrics merged with the app's, app-metrics.ts). It reads the proxy
 * through the small `AdminSource` interface and never changes config, except the documented
 * POST endpoints (`/logging`, `/drain_listeners`, `/quitquitquit`). Binds to 127.0.0.1 by default:
 * the admin API is not for the network.
 */
import { appProbeHandler } from './app-probes.ts';
import { AppMetricsMerger, scrapeTimeoutMs, type AppMetricsTarget } from './app-metrics.ts';
import type { AppProbe } from './app-probes.ts';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import http from '../../node-http.ts';
import type { AddressInfo } from 'node:net';
import { renderPrometheus, renderStatsText, type Stat } from './stats-format.ts';

/** One cluster and its hosts, as `/clusters` shows them. */
export interface ClusterStatus {
  name: string;
  hosts: { address: string; healthy: boolean; flags: string[]; weight: number; activeRequests: number; stats: Record<string, number> }[];
}

export interface AdminSource {
  /** True once the first complete config is applied. */
  ready(): boolean;
  /** Envoy-shaped config dump (`{ configs: [...] }`). */
  configDump(opts: { includeEds: boolean; resource?: string }): unknown;
  /** Clusters and their hosts, for `/clusters`. */
  clusters(): ClusterStatus[] | Promise<ClusterStatus[]>;
  stats(): Stat[] | Promise<Stat[]>;
  /** Prometheus text appended to /stats/prometheus (Istio's standard metrics). */
  prometheusExtra?(): string | Promise<string>;
  setLogLevel(level: string): boolean;
  logLevel(): string;
  drainListeners(): Promise<void>;
  quit(): void;
  /** Server info for `/server_info`. */
  info(): Record<string, unknown>;
}

export interface AdminPorts {
  admin: number;
  health: number;
  prometheus: number;
  /** The status port (app probes); 0 when off. */
  status: number;
}

export interface AdminServers {
  readonly ports: AdminPorts;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8') {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-cache, max-age=0' });
  res.end(body);
}

function clustersText(clusters: ClusterStatus[]): string {
  const lines: string[] = [];
  for (const c of clusters) {
    for (const h of c.hosts) {
      const prefix = `${c.name}::${h.address}`;
      for (const [k, v] of Object.entries(h.stats)) lines.push(`${prefix}::${k}::${v}`);
      lines.push(`${prefix}::rq_active::${h.activeRequests}`);
      lines.push(`${prefix}::weight::${h.weight}`);
      lines.push(`${prefix}::health_flags::${h.flags.length > 0 ? h.flags.join('|') : 'healthy'}`);
    }
  }
  return lines.join('\n') + '\n';
}

function adminHandler(src: AdminSource) {
  return async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const p = url.pathname;
    const q = url.searchParams;
    try {
      if (p === '/ready') return send(res, src.ready() ? 200 : 503, src.ready() ? 'LIVE\n' : 'PRE_INITIALIZING\n');
      if (p === '/healthz/ready') return send(res, src.ready() ? 200 : 503, src.ready() ? '' : 'not ready\n');
      if (p === '/config_dump') {
        return send(res, 200, JSON.stringify(src.configDump({ includeEds: q.has('include_eds'), resource: q.get('resource') ?? undefined }), null, 2) + '\n', 'application/json');
      }
      if (p === '/clusters') {
        const clusters = await src.clusters();
        if (q.get('format') === 'json') return send(res, 200, JSON.stringify({ cluster_statuses: clusters }, null, 2) + '\n', 'application/json');
        return send(res, 200, clustersText(clusters));
      }
      if (p === '/stats') {
        const filter = q.get('filter');
        let stats = await src.stats();
        if (filter) {
          const re = new RegExp(filter);
          stats = stats.filter((s) => re.test(s.name));
        }
        if (q.get('format') === 'json') return send(res, 200, JSON.stringify({ stats: stats.map((s) => ({ name: s.name, value: s.value })) }) + '\n', 'application/json');
        if (q.get('format') === 'prometheus') return send(res, 200, renderPrometheus(stats), 'text/plain; version=0.0.4');
        return send(res, 200, renderStatsText(stats));
      }
      if (p === '/stats/prometheus') return send(res, 200, await prometheusText(src), 'text/plain; version=0.0.4');
      if (p === '/server_info') return send(res, 200, JSON.stringify(src.info(), null, 2) + '\n', 'application/json');
      if (p === '/logging') {
        if (req.method !== 'POST' && q.has('level')) return send(res, 405, 'use POST\n');
        const level = q.get('level');
        if (level !== null && !src.setLogLevel(level)) return send(res, 400, `unknown level '${level}'\n`);
        return send(res, 200, `active loggers:\n  trellis: ${src.logLevel()}\n`);
      }
      if (p === '/drain_listeners') {
        if (req.method !== 'POST') return send(res, 405, 'use POST\n');
        void src.drainListeners();
        return send(res, 200, 'OK\n');
      }
      if (p === '/quitquitquit') {
        if (req.method !== 'POST') return send(res, 405, 'use POST\n');
        send(res, 200, 'OK\n');
        setImmediate(() => src.quit());
        return;
      }
      if (p === '/') {
        return send(res, 200, ['/ready', '/config_dump', '/clusters', '/stats', '/stats/prometheus', '/server_info', '/logging', '/drain_listeners (POST)', '/quitquitquit (POST)'].join('\n') + '\n');
      }
      return send(res, 404, 'not found\n');
    } catch (err) {
      return send(res, 500, `admin: ${(err as Error).message}\n`);
    }
  };
}

/** Envoy's stats in Prometheus form, then Istio's standard metrics. */
async function prometheusText(src: AdminSource): Promise<string> {
  return renderPrometheus(await src.stats()) + ((await src.prometheusExtra?.()) ?? '');
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Starts the admin, health and Prometheus servers. Port 0 picks a free port; a negative port
 * disables that server (its port is reported as 0).
 */
export async function startAdminServers(src: AdminSource, opts: {
  host?: string; adminPort: number; healthPort: number; prometheusPort: number; healthHost?: string;
  /** Istio's status port (15020): app probes, readiness and metrics; negative or absent = off. */
  statusPort?: number;
  appProbes?: ReadonlyMap<string, AppProbe>;
  /** The app's metrics, merged into the status port's /stats/prometheus (Istio's metrics merging). */
  appMetrics?: AppMetricsTarget;
  /** Says why an app metrics scrape failed (rate limiting is the caller's). */
  onAppMetricsFailure?: (reason: string) => void;
}): Promise<AdminServers> {
  const host = opts.host ?? '127.0.0.1';
  const inner = adminHandler(src);
  const handler = (req: IncomingMessage, res: ServerResponse) => void inner(req, res);
  const servers: Server[] = [];
  const start = async (port: number, h: string, fn: RequestListener) => {
    if (port < 0) return 0;
    const s = http.createServer(fn);
    servers.push(s);
    return listen(s, h, port);
  };
  try {
    const admin = await start(opts.adminPort, host, handler);
    /** The proxy's exposition text, passed through `finish` (the status port appends the app's metrics). */
    const prom = async (res: ServerResponse, finish: (own: string) => string | Promise<string> = (own) => own) => {
      try {
        send(res, 200, await finish(await prometheusText(src)), 'text/plain; version=0.0.4');
      } catch (err) {
        send(res, 500, `stats: ${(err as Error).message}\n`);
      }
    };
    const health = await start(opts.healthPort, opts.healthHost ?? host, (req, res) => {
      const p = new URL(req.url ?? '/', 'http://h').pathname;
      if (p === '/healthz/ready') return send(res, src.ready() ? 200 : 503, src.ready() ? '' : 'not ready\n');
      if (p === '/stats/prometheus') return void prom(res);
      return send(res, 404, 'not found\n');
    });
    const prometheus = await start(opts.prometheusPort, opts.healthHost ?? host, (req, res) => {
      const p = new URL(req.url ?? '/', 'http://h').pathname;
      if (p === '/stats/prometheus') return void prom(res);
      return send(res, 404, 'not found\n');
    });
    const appProbe = appProbeHandler(opts.appProbes ?? new Map());
    const merger = opts.appMetrics !== undefined ? new AppMetricsMerger(opts.appMetrics, opts.onAppMetricsFailure) : undefined;
    const status = await start(opts.statusPort ?? -1, opts.healthHost ?? host, (req, res) => {
      const p = new URL(req.url ?? '/', 'http://h').pathname;
      if (appProbe(p, res)) return;
      if (p === '/healthz/ready') return send(res, src.ready() ? 200 : 503, src.ready() ? '' : 'not ready\n');
      if (p === '/stats/prometheus') {
        return void prom(res, merger === undefined ? undefined : (own) => merger.merged(own, scrapeTimeoutMs(req.headers['x-prometheus-scrape-timeout-seconds'])));
      }
      return send(res, 404, 'not found\n');
    });
    return {
      ports: { admin, health, prometheus, status },
      async close() {
        await Promise.all(servers.map((s) => new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); })));
      },
    };
  } catch (err) {
    for (const s of servers) s.close();
    throw err;
  }
}
