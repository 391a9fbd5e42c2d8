/**
 * The HTTP/1.1 request head of the upstream client, written as latin1 bytes straight into a
 * shared slab instead of built as a string (issue 16: the header lines joined with `+=` were a
 * chain of V8 cons strings, flattened into one more copy when the socket wrote them: ~1.6 KB of
 * heap per request for a dozen headers, 7% of the bytes the proxy allocated). A head takes the
 * next free bytes of the slab (a fresh slab when it does not fit): nothing is ever written twice,
 * so a buffer still queued on a socket is never touched again. The bytes live outside the V8 heap.
 */
import { h1RequestWritesItself } from './connection-fields.ts';
import type { HeaderMap } from './types.ts';

const SLAB_SIZE = 64 * 1024;
/** Heads larger than this get a buffer of their own rather than most of a slab. */
const MAX_SLAB_HEAD = 8 * 1024;

let slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
let slabUsed = 0;


/** Bytes of the header lines `writeHead` writes for `headers` (names and values are latin1: one byte a character). */
export function headerLinesLength(headers: HeaderMap): number {
  let n = 0;
  for (const name in headers) {
    if (h1RequestWritesItself(name)) continue;
    const v = headers[name];
    if (typeof v === 'string') n += name.length + v.length + 4;
    else for (const one of v) n += name.length + one.length + 4;
  }
  return n;
}

/**
 * `METHOD path HTTP/1.1`, `host`, `connection`, the header lines (hop-by-hop fields left out,
 * an array as one line per value), then `tail` (what ends the head: the blank line, with a
 * content-length or transfer-encoding line and the first chunk size when there is a body).
 * Every string was checked to be latin1 when the request was taken (pool-h1.ts).
 */
export function writeHead(method: string, path: string, authority: string, keepAlive: boolean, headers: HeaderMap, tail: string): Buffer {
  const connection = keepAlive ? 'keep-alive' : 'close';
  // 'METHOD ' + ' HTTP/1.1\r\nhost: ' + '\r\nconnection: ' + '\r\n' = 1 + 17 + 14 + 2.
  const size = method.length + path.length + authority.length + connection.length + 34 + headerLinesLength(headers) + tail.length;
  let buf: Buffer;
  let o: number;
  if (size > MAX_SLAB_HEAD) {
    buf = Buffer.allocUnsafe(size);
    o = 0;
  } else {
    if (slabUsed + size > SLAB_SIZE) {
      slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
      slabUsed = 0;
    }
    buf = slab;
    o = slabUsed;
  }
  const start = o;
  o += buf.write(method, o, 'latin1');
  buf[o++] = 0x20;
  o += buf.write(path, o, 'latin1');
  o += buf.write(' HTTP/1.1\r\nhost: ', o, 'latin1');
  o += buf.write(authority, o, 'latin1');
  o += buf.write('\r\nconnection: ', o, 'latin1');
  o += buf.write(connection, o, 'latin1');
  buf[o++] = 0x0d;
  buf[o++] = 0x0a;
  for (const name in headers) {
    if (h1RequestWritesItself(name)) continue;
    const v = headers[name];
    if (typeof v === 'string') o = line(buf, o, name, v);
    else for (const one of v) o = line(buf, o, name, one);
  }
  o += buf.write(tail, o, 'latin1');
  if (o - start !== size) throw new Error(`request head: wrote ${o - start} bytes, sized ${size}`);
  if (buf === slab) {
    slabUsed = o;
    return slab.subarray(start, o);
  }
  return buf;
}

function line(buf: Buffer, o: number, name: string, value: string): number {
  o += buf.write(name, o, 'latin1');
  buf[o++] = 0x3a;
  buf[o++] = 0x20;
  o += buf.write(value, o, 'latin1');
  buf[o++] = 0x0d;
  buf[o++] = 0x0a;
  return o;
}
