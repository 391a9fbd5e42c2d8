/**
 * Reads SNI and ALPN out of a TLS ClientHello without terminating TLS (what Envoy's
 * tls_inspector listener filter does), so filter chains can be chosen by server name and
 * passthrough can forward the untouched bytes. Parses only what it needs, bounds-checked at every
 * step: malformed input yields `invalid`, never an exception.
 */

export type ClientHelloResult =
  | { kind: 'incomplete' }
  | { kind: 'invalid' }
  | { kind: 'hello'; serverName: string; alpn: string[] };

/** TLS record header says handshake (22), major version 3. */
export function looksLikeTls(buf: Buffer): boolean {
  return buf.length >= 1 && buf[0] === 0x16 && (buf.length < 2 || buf[1] === 0x03);
}

/** Parses the first record(s) of a connection. Handles a ClientHello split over several records. */
export function parseClientHello(buf: Buffer): ClientHelloResult {
  // Reassemble handshake bytes from consecutive handshake records.
  const parts: Buffer[] = [];
  let off = 0;
  let total = 0;
  let needed = -1;
  while (off + 5 <= buf.length) {
    if (buf[off] !== 0x16 || buf[off + 1] !== 0x03) return { kind: 'invalid' };
    const len = buf.readUInt16BE(off + 3);
    if (len === 0 || len > 16384 + 2048) return { kind: 'invalid' };
    if (off + 5 + len > buf.length) {
      parts.push(buf.subarray(off + 5));
      total += buf.length - off - 5;
      break;
    }
    parts.push(buf.subarray(off + 5, off + 5 + len));
    total += len;
    off += 5 + len;
    const hs = Buffer.concat(parts);
    if (hs.length >= 4) {
      if (hs[0] !== 0x01) return { kind: 'invalid' };
      needed = 4 + hs.readUIntBE(1, 3);
      if (needed > 64 * 1024) return { kind: 'invalid' };
      if (hs.length >= needed) return parseHandshake(hs.subarray(0, needed));
    }
  }
  void total;
  void needed;
  return { kind: 'incomplete' };
}

function parseHandshake(hs: Buffer): ClientHelloResult {
  let p = 4 + 2 + 32; // header, client_version, random
  const need = (n: number) => p + n <= hs.length;
  if (!need(1)) return { kind: 'invalid' };
  p += 1 + hs[p]; // session id
  if (!need(2)) return { kind: 'invalid' };
  p += 2 + hs.readUInt16BE(p); // cipher suites
  if (!need(1)) return { kind: 'invalid' };
  p += 1 + hs[p]; // compression methods
  let serverName = '';
  const alpn: string[] = [];
  if (p === hs.length) return { kind: 'hello', serverName, alpn };
  if (!need(2)) return { kind: 'invalid' };
  const extEnd = p + 2 + hs.readUInt16BE(p);
  p += 2;
  if (extEnd > hs.length) return { kind: 'invalid' };
  while (p + 4 <= extEnd) {
    const type = hs.readUInt16BE(p);
    const len = hs.readUInt16BE(p + 2);
    const start = p + 4;
    const end = start + len;
    if (end > extEnd) return { kind: 'invalid' };
    if (type === 0 && len >= 2) {
      // server_name: list of (type, len, name); host_name type 0.
      let q = start + 2;
      while (q + 3 <= end) {
        const nameType = hs[q];
        const nameLen = hs.readUInt16BE(q + 1);
        if (q + 3 + nameLen > end) return { kind: 'invalid' };
        if (nameType === 0) serverName = hs.toString('latin1', q + 3, q + 3 + nameLen).toLowerCase();
        q += 3 + nameLen;
      }
    } else if (type === 16 && len >= 2) {
      let q = start + 2;
      while (q < end) {
        const l = hs[q];
        if (q + 1 + l > end) return { kind: 'invalid' };
        alpn.push(hs.toString('latin1', q + 1, q + 1 + l));
        q += 1 + l;
      }
    }
    p = end;
  }
  return { kind: 'hello', serverName, alpn };
}
