/**
 * The control plane's debug and monitoring HTTP endpoints (Istio's port 15014): `/debug/syncz`
 * (proxy status), `/debug/config_dump?proxyID=ID` (what a proxy was sent), `/debug/diagnostics`
 * (config diagnostics from a callback), `/ready` and `/metrics` (Prometheus text). Exposed both as
 * a request handler other servers can mount (the dashboard shares the port) and as a server.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import http from '../../node-http.ts';
import { describeError, TrellisError } from '../../errors.ts';
import type { XdsServer } from './server.ts';

export interface DebugHttpOptions {
  xds: Pick<XdsServer, 'status' | 'configDump' | 'counters'>;
  /** Config diagnostics (analysis results) as JSON; `[]` when absent. */
  diagnostics?: () => unknown;
  /** Readiness for `/ready` (default: always ready). */
  ready?: () => boolean;
  /** The mesh CA's status for `/debug/ca` (404 without a CA). */
  ca?: () => unknown;
  /** istiod-named monitoring metrics (src/control/monitoring.ts), served on /metrics after the xDS counters. */
  monitoring?: () => Promise<string>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function text(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Prometheus text exposition of the xDS counters. */
export function metricsText(xds: DebugHttpOptions['xds'], pilotNames = true): string {
  const c = xds.counters;
  const lines: string[] = [];
  const metric = (name: string, type: string, help: string, samples: Array<[Record<string, string>, number]>): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) {
      const l = Object.entries(labels).map(([k, x]) => `${k}="${label(x)}"`).join(',');
      lines.push(`${name}${l === '' ? '' : `{${l}}`} ${v}`);
    }
  };
  metric('trellis_xds_connected_proxies', 'gauge', 'Proxies with an open ADS stream.', [[{}, xds.status().length]]);
  metric('trellis_xds_pushes_total', 'counter', 'xDS responses sent, by type.', Object.entries(c.pushes).map(([t, v]) => [{ type: t }, v]));
  metric('trellis_xds_rejects_total', 'counter', 'xDS NACKs received, by type.', Object.entries(c.nacks).map(([t, v]) => [{ type: t }, v]));
  metric('trellis_xds_push_triggers_total', 'counter', 'Calls to push() (config changes).', [[{}, c.pushTriggers]]);
  metric('trellis_xds_generate_errors_total', 'counter', 'Resource generations that failed.', [[{}, c.generateErrors]]);
  metric('trellis_xds_connections_total', 'counter', 'ADS streams opened.', [[{}, c.connectionsTotal]]);
  // Istio's pilot names, so istiod dashboards and alerts read Trellis unchanged (the monitoring
  // module, when present, serves the full set instead).
  if (!pilotNames) return lines.join('\n') + '\n';
  metric('pilot_xds', 'gauge', 'Proxies connected over ADS (Istio name).', [[{}, xds.status().length]]);
  metric('pilot_xds_pushes', 'counter', 'xDS responses sent, by type (Istio name).', Object.entries(c.pushes).map(([t, v]) => [{ type: t.toLowerCase() }, v]));
  metric('pilot_total_xds_rejects', 'counter', 'xDS responses rejected (NACKed) by proxies (Istio name).', Object.entries(c.nacks).map(([t, v]) => [{ type: t.toLowerCase() }, v]));
  return lines.join('\n') + '\n';
}

/** Handles a debug request; returns false when the path is not one of ours (caller answers). */
export function handleDebugRequest(opts: DebugHttpOptions, req: IncomingMessage, res: ServerResponse): boolean {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const routes = ['/debug/syncz', '/debug/config_dump', '/debug/diagnostics', '/debug/ca', '/ready', '/metrics'];
  if (!routes.includes(url.pathname)) return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    text(res, 405, 'method not allowed\n');
    return true;
  }
  try {
    switch (url.pathname) {
      case '/debug/syncz':
        json(res, 200, opts.xds.status());
        break;
      case '/debug/config_dump': {
        const id = url.searchParams.get('proxyID') ?? '';
        if (id === '') {
          json(res, 400, { error: 'proxyID query parameter is required', proxies: opts.xds.status().map((p) => p.id) });
          break;
        }
        const dump = opts.xds.configDump(id);
        if (dump === undefined) json(res, 404, { error: `no connected proxy '${id}' (or the prefix is ambiguous)`, proxies: opts.xds.status().map((p) => p.id) });
        else json(res, 200, dump);
        break;
      }
      case '/debug/diagnostics':
        json(res, 200, opts.diagnostics?.() ?? []);
        break;
      case '/debug/ca':
        if (opts.ca === undefined) json(res, 404, { error: 'this control plane runs no CA (--ca-dir / --plugin-ca-dir)' });
        else json(res, 200, opts.ca());
        break;
      case '/ready': {
        const ready = opts.ready?.() ?? true;
        text(res, ready ? 200 : 503, ready ? 'ready\n' : 'not ready\n');
        break;
      }
      case '/metrics': {
        const monitoring = opts.monitoring;
        if (monitoring === undefined) {
          text(res, 200, metricsText(opts.xds), 'text/plain; version=0.0.4; charset=utf-8');
          break;
        }
        void monitoring().then(
          (more) => text(res, 200, metricsText(opts.xds, false) + more, 'text/plain; version=0.0.4; charset=utf-8'),
          (err: unknown) => json(res, 500, { error: describeError(err) }),
        );
        break;
      }
    }
  } catch (err) {
    json(res, 500, { error: describeError(err) });
  }
  return true;
}

export interface DebugHttpServer {
  readonly server: Server;
  /** Binds (default 127.0.0.1, port 0 = any); resolves to the port. */
  listen(opts?: { host?: string; port?: number }): Promise<number>;
  close(): Promise<void>;
}

/** A standalone HTTP server answering the debug endpoints (404 for anything else). */
export function createDebugHttpServer(opts: DebugHttpOptions): DebugHttpServer {
  const server = http.createServer((req, res) => {
    if (!handleDebugRequest(opts, req, res)) json(res, 404, { error: `not found: ${req.url ?? ''}` });
  });
  return {
    server,
    listen(l = {}) {
      return new Promise<number>((resolve, reject) => {
        server.once('error', (err) => reject(new TrellisError('DEBUG_LISTEN', `debug server cannot listen: ${err.message}`, { cause: err })));
        server.listen(l.port ?? 0, l.host ?? '127.0.0.1', () => resolve((server.address() as { port: number }).port));
      });
    },
    close() {
      return new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
