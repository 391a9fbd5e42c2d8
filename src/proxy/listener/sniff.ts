/**
 * Protocol sniffing on a new connection (Envoy's tls_inspector + http_inspector): peeks at the
 * first bytes without consuming them and says whether the client speaks TLS (with SNI and ALPN),
 * HTTP/2 with prior knowledge, HTTP/1.x, or something else (opaque TCP). The wait for first bytes
 * is bounded so that server-speaks-first protocols (MySQL, SMTP) are not stalled: when the client
 * stays silent, the connection is treated as opaque TCP.
 */
import type net from 'node:net';
import { looksLikeTls, parseClientHello } from './client-hello.ts';

export type SniffedProtocol =
  | { transport: 'tls'; serverName: string; alpn: string[] }
  | { transport: 'raw_buffer'; application: 'h2c' | 'http/1.1' | 'tcp' };

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const METHODS = ['GET ', 'POST ', 'PUT ', 'DELETE ', 'HEAD ', 'OPTIONS ', 'PATCH ', 'CONNECT ', 'TRACE '];
/** Enough bytes to see any ClientHello we care about. */
const MAX_PEEK = 16 * 1024;

function classifyPlain(buf: Buffer): { done: boolean; result?: SniffedProtocol } {
  const n = Math.min(buf.length, H2_PREFACE.length);
  if (buf.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) {
    return n === H2_PREFACE.length ? { done: true, result: { transport: 'raw_buffer', application: 'h2c' } } : { done: false };
  }
  const head = buf.toString('latin1', 0, Math.min(buf.length, 8));
  for (const m of METHODS) {
    if (head.length >= m.length ? head.startsWith(m) : m.startsWith(head)) {
      return head.length >= m.length ? { done: true, result: { transport: 'raw_buffer', application: 'http/1.1' } } : { done: false };
    }
  }
  return { done: true, result: { transport: 'raw_buffer', application: 'tcp' } };
}

/**
 * Waits for enough bytes to decide, then puts them back (`unshift`) so the next consumer sees the
 * whole stream. Resolves `tcp` when nothing arrives within `timeoutMs` or the bytes fit no protocol.
 * With `detectTls` false (a plaintext HTTP chain, which only needs h2c told from HTTP/1.1), bytes
 * that look like a TLS record are not waited on as a ClientHello.
 */
export function sniffProtocol(socket: net.Socket, timeoutMs: number, detectTls = true): Promise<SniffedProtocol> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (result: SniffedProtocol) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.pause();
      if (size > 0) socket.unshift(Buffer.concat(chunks, size));
      resolve(result);
    };
    const decide = () => {
      const buf = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
      if (detectTls && looksLikeTls(buf)) {
        const hello = parseClientHello(buf);
        if (hello.kind === 'hello') return finish({ transport: 'tls', serverName: hello.serverName, alpn: hello.alpn });
        if (hello.kind === 'invalid' || size >= MAX_PEEK) return finish({ transport: 'raw_buffer', application: 'tcp' });
        return;
      }
      const plain = classifyPlain(buf);
      if (plain.done && plain.result) finish(plain.result);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      decide();
    };
    const onEnd = () => finish({ transport: 'raw_buffer', application: 'tcp' });
    const timer = setTimeout(() => finish({ transport: 'raw_buffer', application: 'tcp' }), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    // Listeners accept with pauseOnConnect so no byte is read before we look.
    socket.resume();
  });
}
