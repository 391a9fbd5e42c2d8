/**
 * TCP round trips for tests of TCP proxying: a raw echo app, and one connection that sends a
 * message and collects what comes back until the connection closes.
 */
import net, { type AddressInfo } from 'node:net';
import type tls from 'node:tls';

/** A raw TCP echo server on a free loopback port. */
export async function startTcpEcho(): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((c) => c.on('error', () => {}).pipe(c));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

export interface EchoOptions {
  /** `secureConnect` for a TLS client; default `connect`. */
  readonly ready?: 'connect' | 'secureConnect';
  /** Send FIN with the message (half-close), instead of once the whole echo is back. */
  readonly halfClose?: boolean;
  readonly timeoutMs?: number;
}

/** Sends `msg` on a new connection; resolves with every byte read before it closed. */
export function echoOnce(connect: () => net.Socket | tls.TLSSocket, msg: Buffer, opts: EchoOptions = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect();
    const got: Buffer[] = [];
    let n = 0;
    const timer = setTimeout(() => s.destroy(new Error('echo timed out')), opts.timeoutMs ?? 10_000);
    s.on(opts.ready ?? 'connect', () => (opts.halfClose === true ? s.end(msg) : s.write(msg)));
    s.on('data', (d: Buffer) => {
      got.push(d);
      n += d.length;
      if (opts.halfClose !== true && n >= msg.length) s.end();
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(got));
    });
  });
}
