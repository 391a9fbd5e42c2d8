/**
 * nginx and HAProxy paths, one worker each, generated configs: keep-alive to the next hop,
 * access logs off, HTTP/1.1 between hops; 2 hops = client-side proxy -> server-side proxy,
 * optionally mutual TLS between them with the bench certificates. nginx 1.22 cannot serve
 * HTTP/1.1 and h2c on one cleartext port, so its 1-hop instance gets a second, h2c-only listener
 * for h2load; HAProxy detects the h2 preface on its one port.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SetupContext } from './context.ts';
import { PlainHost } from './context.ts';
import type { PathDef } from './paths.ts';
import { freePort, parsePathId, waitFor200 } from './paths.ts';
import type { Proc } from './procs.ts';
import { logTail, startProc } from './procs.ts';

interface TlsClient { cert: string; key: string; ca: string; pem: string; sni: string }
interface TlsServer { cert: string; key: string; ca: string; pem: string }

function nginxConf(dir: string, listen: number, next: number, opts: { h2Port?: number; tlsClient?: TlsClient; tlsServer?: TlsServer }): string {
  const t = (n: string) => join(dir, n);
  const up = opts.tlsClient
    ? `proxy_pass https://next;
      proxy_ssl_certificate ${opts.tlsClient.cert};
      proxy_ssl_certificate_key ${opts.tlsClient.key};
      proxy_ssl_trusted_certificate ${opts.tlsClient.ca};
      proxy_ssl_verify on;
      proxy_ssl_name ${opts.tlsClient.sni};
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;`
    : 'proxy_pass http://next;';
  const tlsListen = opts.tlsServer
    ? ` ssl;
    ssl_certificate ${opts.tlsServer.cert};
    ssl_certificate_key ${opts.tlsServer.key};
    ssl_client_certificate ${opts.tlsServer.ca};
    ssl_verify_client on;`
    : ';';
  const location = `location / {
      ${up}
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_buffering on;
    }`;
  return `worker_processes 1;
daemon off;
master_process on;
pid ${t('nginx.pid')};
error_log ${t('error.log')} warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path ${t('body')};
  proxy_temp_path ${t('proxy')};
  fastcgi_temp_path ${t('fastcgi')};
  uwsgi_temp_path ${t('uwsgi')};
  scgi_temp_path ${t('scgi')};
  upstream next { server 127.0.0.1:${next}; keepalive 256; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${listen}${tlsListen}
    ${location}
  }
${opts.h2Port !== undefined ? `  server {
    listen 127.0.0.1:${opts.h2Port} http2;
    ${location}
  }
` : ''}}
`;
}

function haproxyConf(listen: number, next: number, opts: { tlsClient?: TlsClient; tlsServer?: TlsServer }): string {
  const bindTls = opts.tlsServer ? ` ssl crt ${opts.tlsServer.pem} ca-file ${opts.tlsServer.ca} verify required` : '';
  const srvTls = opts.tlsClient ? ` ssl crt ${opts.tlsClient.pem} ca-file ${opts.tlsClient.ca} verify required verifyhost ${opts.tlsClient.sni} sni str(${opts.tlsClient.sni})` : '';
  return `global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:${listen}${bindTls}
  default_backend be
backend be
  server s1 127.0.0.1:${next}${srvTls}
`;
}

/** Starts nginx / HAProxy processes for the requested nginx-* and haproxy-* paths. */
export async function setupClassic(ids: readonly string[], ctx: SetupContext): Promise<PathDef[]> {
  const out: PathDef[] = [];
  for (const id of ids) {
    const p = parsePathId(id);
    const def: PathDef = { id, family: p.family, hops: p.hops, tls: p.tls, concurrency: 1, url: '', host: PlainHost, pgids: [], proxies: p.hops };
    out.push(def);
    const tool = ctx.tools[p.family];
    if (tool === undefined) { def.unavailable = `${p.family} not installed`; continue; }
    if (p.tls && ctx.certs === undefined) { def.unavailable = 'openssl not installed (no certificates)'; continue; }
    const c = ctx.certs;
    const tlsClient = p.tls && c ? { cert: c.clientCert, key: c.clientKey, ca: c.ca, pem: c.clientPem, sni: c.serverName } : undefined;
    const tlsServer = p.tls && c ? { cert: c.serverCert, key: c.serverKey, ca: c.ca, pem: c.serverPem } : undefined;
    const start = (name: string, listen: number, next: number, o: { h2Port?: number; tlsClient?: TlsClient; tlsServer?: TlsServer }): Proc => {
      const dir = join(ctx.workDir, name);
      mkdirSync(dir, { recursive: true });
      if (p.family === 'nginx') {
        const file = join(dir, 'nginx.conf');
        writeFileSync(file, nginxConf(dir, listen, next, o));
        return startProc(name, tool, ['-c', file, '-p', dir, '-e', join(dir, 'error.log')], { logDir: ctx.logDir });
      }
      const file = join(dir, 'haproxy.cfg');
      writeFileSync(file, haproxyConf(listen, next, o));
      return startProc(name, tool, ['-db', '-f', file], { logDir: ctx.logDir });
    };
    const front = await freePort();
    const procs: Proc[] = [];
    if (p.hops === 1) {
      const h2Port = p.family === 'nginx' ? await freePort() : undefined;
      procs.push(start(id, front, ctx.upstreamPort, { h2Port }));
      def.h2Url = `http://127.0.0.1:${h2Port ?? front}/`;
    } else {
      const back = await freePort();
      procs.push(start(`${id}-server`, back, ctx.upstreamPort, { tlsServer }));
      procs.push(start(`${id}-client`, front, back, { tlsClient }));
    }
    def.pgids = procs.map((x) => x.pid);
    def.url = `http://127.0.0.1:${front}/`;
    const ready = await waitFor200(def.url, def.host, 15000, () => procs.every((x) => x.exitCode === undefined));
    if (!ready.ok) def.unavailable = `${p.family} did not answer 200 (last ${ready.last}): ${procs.map((x) => logTail(x, 300)).join(' | ').replace(/\s+/g, ' ')}`;
  }
  return out;
}
