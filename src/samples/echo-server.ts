/**
 * The echo backend used by the conformance runner, the end-to-end tests and `trellis up`: it
 * answers the way the Gateway API conformance suite's echo-basic server does (JSON with path,
 * host, method, proto, headers, namespace, ingress, service, pod), including `?delay=`, the
 * `/retry/...` failure script and `X-Echo-Set-Header`, and serves the conformance gRPC echo
 * service on the same port (HTTP/1.1, h2c, and TLS with ALPN when given a certificate).
 */
import type http2 from 'node:http2';
import { acceptWebSocketEcho } from './websocket-echo.ts';
import { startDualServer, type AnyRequest, type AnyResponse, type DualServer } from './sniff-server.ts';
import { encodeEchoResponse, grpcFrame, GrpcEchoService, type EchoAssertions } from './grpc-echo-codec.ts';

export interface EchoIdentity {
  namespace: string;
  service: string;
  /** Pod name, `<deployment>-<hash>-<hash>` like a Kubernetes pod. */
  pod: string;
  ingress?: string;
}

export interface EchoServerOptions extends EchoIdentity {
  host?: string;
  port?: number;
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** Where to write `Echoing back request made to ...` lines; default stdout. */
  log?: (line: string) => void;
}

/** Go's canonical header form (`x-echo-set-header` -> `X-Echo-Set-Header`), as echo-basic reports names. */
export function canonicalHeaderName(name: string): string {
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_m, sep: string, c: string) => sep + c.toUpperCase());
}

/** Parses Go-style durations used by `?delay=` (`1s`, `500ms`, `1.5s`); undefined when invalid. */
export function parseGoDuration(text: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let pos = 0;
  if (text === '' ) return undefined;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) return undefined;
    total += Number(m[1]) * unit[m[2]];
    pos = re.lastIndex;
  }
  return total;
}

function headerMap(req: AnyRequest): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.startsWith(':')) continue;
    const key = canonicalHeaderName(name);
    (out[key] ??= []).push(raw[i + 1]);
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Per-uuid attempt counters for the `/retry/` script; bounded so a long run cannot grow it forever. */
class AttemptCounter {
  #counts = new Map<string, number>();
  next(uuid: string): number {
    const n = (this.#counts.get(uuid) ?? 0) + 1;
    this.#counts.delete(uuid);
    this.#counts.set(uuid, n);
    if (this.#counts.size > 10_000) this.#counts.delete(this.#counts.keys().next().value as string);
    return n;
  }
}

/** Starts an echo server; resolves once listening. */
export async function startEchoServer(opts: EchoServerOptions): Promise<DualServer> {
  const log = opts.log ?? ((line: string) => process.stdout.write(line + '\n'));
  const attempts = new AttemptCounter();

  const handleGrpc = (req: AnyRequest, res: http2.Http2ServerResponse, authority: string) => {
    const path = req.url ?? '';
    req.resume();
    req.on('end', () => {
      if (res.stream.destroyed) return;
      const method = path.slice(path.lastIndexOf('/') + 1);
      const service = path.slice(1, path.lastIndexOf('/'));
      if (service !== GrpcEchoService || (method !== 'Echo' && method !== 'EchoTwo')) {
        // Trailers-only response, as gRPC servers answer UNIMPLEMENTED: ONE HEADERS frame with
        // END_STREAM (the compat writeHead+end sends an extra empty DATA frame, which gRPC
        // clients read as "call ended without gRPC status").
        res.stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': `unimplemented: ${path}` }, { endStream: true });
        return;
      }
      const headers: { key: string; value: string }[] = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2) headers.push({ key: req.rawHeaders[i].toLowerCase(), value: req.rawHeaders[i + 1] });
      const assertions: EchoAssertions = {
        fully_qualified_method: path,
        headers,
        authority,
        context: { namespace: opts.namespace, ingress: opts.ingress ?? '', service_name: opts.service, pod: opts.pod },
      };
      log(`Echoing back request made to ${path} to client (${req.socket?.remoteAddress ?? ''})`);
      res.writeHead(200, { 'content-type': 'application/grpc' });
      res.addTrailers({ 'grpc-status': '0' });
      res.end(grpcFrame(encodeEchoResponse(assertions)));
    });
  };

  const handler = async (req: AnyRequest, res: AnyResponse) => {
    try {
      const isH2 = req.httpVersionMajor === 2;
      const host = (isH2 ? (req.headers[':authority'] as string | undefined) : req.headers.host) ?? '';
      const url = req.url ?? '/';
      if (isH2 && String(req.headers['content-type'] ?? '').startsWith('application/grpc')) {
        handleGrpc(req, res as http2.Http2ServerResponse, host);
        return;
      }
      const query = new URL(url, 'http://x').searchParams;
      // Drain the body: echo-basic does not echo it, but keep-alive needs it consumed.
      for await (const _chunk of req) void _chunk;

      if (url.startsWith('/retry/')) {
        const uuid = query.get('uuid') ?? '';
        const succeedAfter = Number(query.get('succeedAfter') ?? '0');
        const attempt = attempts.next(uuid);
        if (attempt <= succeedAfter) {
          const delay = parseGoDuration(query.get('delayRetry') ?? '');
          if (delay) await sleep(delay);
          const code = query.get('responseCode');
          if (code) {
            res.writeHead(Number(code));
            res.end();
          } else {
            req.socket?.resetAndDestroy?.();
            req.socket?.destroy();
          }
          return;
        }
      }
      const delay = query.get('delay');
      if (delay !== null) {
        const ms = parseGoDuration(delay);
        if (ms === undefined) {
          res.writeHead(400, { 'content-type': 'text/plain' });
          res.end(`invalid delay ${delay}\n`);
          return;
        }
        await sleep(ms);
      }
      const setHeader = req.headers['x-echo-set-header'];
      const extra: Record<string, string[]> = {};
      if (typeof setHeader === 'string' && setHeader !== '') {
        for (const pair of setHeader.split(',')) {
          const idx = pair.indexOf(':');
          if (idx <= 0) continue;
          const name = pair.slice(0, idx).trim();
          (extra[name] ??= []).push(pair.slice(idx + 1).trim());
        }
      }
      const tlsSocket = req.socket as import('node:tls').TLSSocket;
      const body: Record<string, unknown> = {
        path: url,
        host,
        method: req.method,
        proto: isH2 ? 'HTTP/2.0' : `HTTP/${req.httpVersion}`,
        headers: headerMap(req),
        namespace: opts.namespace,
        ingress: opts.ingress ?? '',
        service: opts.service,
        pod: opts.pod,
      };
      if (typeof tlsSocket.getProtocol === 'function' && tlsSocket.encrypted) {
        body.tls = {
          version: tlsSocket.getProtocol(),
          serverName: (tlsSocket as unknown as { servername?: string }).servername ?? '',
          negotiatedProtocol: tlsSocket.alpnProtocol || '',
          cipherSuite: tlsSocket.getCipher()?.name ?? '',
        };
      }
      log(`Echoing back request made to ${url} to client (${req.socket?.remoteAddress ?? ''})`);
      const payload = JSON.stringify(body);
      for (const [name, values] of Object.entries(extra)) res.setHeader(name, values);
      res.setHeader('content-type', 'application/json');
      res.setHeader('x-content-type-options', 'nosniff');
      res.setHeader('content-length', Buffer.byteLength(payload));
      res.writeHead(200);
      res.end(payload);
    } catch (err) {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`echo: ${(err as Error).message}\n`);
      } else {
        req.socket?.destroy();
      }
    }
  };
  return startDualServer((req, res) => void handler(req, res), {
    host: opts.host,
    port: opts.port,
    tls: opts.tls,
    onUpgrade: (req, socket, head) => {
      if (req.url?.split('?')[0] === '/ws' && acceptWebSocketEcho(req, socket, head)) {
        log(`Echoing back websocket connection made to ${req.url} to client (${req.socket.remoteAddress ?? ''})`);
        return;
      }
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n');
    },
  });
}
