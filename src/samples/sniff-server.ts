/**
 * One plaintext port that speaks HTTP/1.1 and HTTP/2 with prior knowledge (h2c), as the
 * conformance echo server and our sample services must: the first bytes of a connection decide
 * (the HTTP/2 connection preface starts with `PRI * HTTP/2.0`). Optionally TLS with ALPN h2/http1.1.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import http from '../node-http.ts';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export type AnyRequest = IncomingMessage | http2.Http2ServerRequest;
/** The part of http.ServerResponse and http2.Http2ServerResponse our handlers use (their union is not callable). */
export interface AnyResponse {
  writeHead(status: number, headers?: Record<string, string | number | string[]>): unknown;
  setHeader(name: string, value: string | number | readonly string[]): unknown;
  end(data?: string | Uint8Array): unknown;
  readonly headersSent: boolean;
}
export type Handler = (req: AnyRequest, res: AnyResponse) => void;
type NodeHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface DualServer {
  readonly port: number;
  readonly address: string;
  /** Stops accepting, closes idle connections and destroys the rest after `graceMs`. */
  close(graceMs?: number): Promise<void>;
}

export interface DualServerOptions {
  host?: string;
  port?: number;
  /** PEM key and certificate: serve TLS (ALPN h2, http/1.1) instead of plaintext. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** HTTP/1.1 Upgrade requests (WebSocket); without it they are refused. */
  onUpgrade?: (req: IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => void;
}

/** Starts a server answering HTTP/1.1 and h2c (or TLS h2/http1.1) on one port with `handler`. */
export async function startDualServer(handler: Handler, opts: DualServerOptions = {}): Promise<DualServer> {
  const h1 = http.createServer({ keepAliveTimeout: 65_000 }, handler as NodeHandler);
  if (opts.onUpgrade) h1.on('upgrade', opts.onUpgrade);
  const h2 = http2.createServer({}, handler as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
  const sockets = new Set<net.Socket>();
  const dispatch = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.once('readable', () => {
      const head: Buffer | null = socket.read();
      if (head === null) {
        socket.once('readable', () => dispatch(socket));
        return;
      }
      socket.unshift(head);
      const n = Math.min(head.length, H2_PREFACE.length);
      const isH2 = head.subarray(0, n).equals(H2_PREFACE.subarray(0, n)) && n >= 3;
      (isH2 ? h2 : h1).emit('connection', socket);
    });
  };
  let server: net.Server;
  if (opts.tls) {
    const secure = tls.createServer({ ...opts.tls, ALPNProtocols: ['h2', 'http/1.1'] }, (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      (socket.alpnProtocol === 'h2' ? h2 : h1).emit('connection', socket);
    });
    server = secure;
  } else {
    server = net.createServer(dispatch);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as net.AddressInfo;
  return {
    port: addr.port,
    address: addr.address,
    async close(graceMs = 200) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        h1.closeIdleConnections();
        const timer = setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, graceMs);
        timer.unref();
        if (sockets.size === 0) clearTimeout(timer);
      });
    },
  };
}
