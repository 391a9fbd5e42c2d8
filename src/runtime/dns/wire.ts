/**
 * The few bits of the DNS wire format (RFC 1035 section 4) the runtime's responder needs: parse a
 * standard query with one question, and build its answer (A records, NXDOMAIN, NODATA, FORMERR).
 * Parsing is defensive: anything that is not a well-formed query yields undefined (the responder
 * then stays silent, as resolvers expect from a server that cannot parse a packet).
 */

/** Record types we name. */
export const DnsType = Object.freeze({ A: 1, AAAA: 28, ANY: 255 });

/** A parsed query: what the responder needs to answer it. */
export interface DnsQuery {
  readonly id: number;
  /** Recursion desired (copied into the answer). */
  readonly rd: boolean;
  /** Lower-case name without the trailing dot (`reviews.default.svc.cluster.local`). */
  readonly name: string;
  readonly qtype: number;
  readonly qclass: number;
  /** The question section's bytes, echoed in the answer. */
  readonly question: Buffer;
}

/** Parses a query packet; undefined when it is not a well-formed standard query with one question. */
export function parseQuery(msg: Buffer): DnsQuery | undefined {
  if (msg.length < 12 || msg.length > 4096) return undefined;
  const flags = msg.readUInt16BE(2);
  const qr = flags >> 15;
  const opcode = (flags >> 11) & 0xf;
  if (qr !== 0 || opcode !== 0 || msg.readUInt16BE(4) !== 1) return undefined;
  let off = 12;
  const labels: string[] = [];
  let nameLen = 0;
  for (;;) {
    if (off >= msg.length) return undefined;
    const len = msg[off];
    if (len === 0) {
      off++;
      break;
    }
    if (len > 63) return undefined; // compression pointers or reserved label types: not in a question we accept
    if (off + 1 + len > msg.length) return undefined;
    nameLen += len + 1;
    if (nameLen > 255) return undefined;
    labels.push(msg.toString('latin1', off + 1, off + 1 + len).toLowerCase());
    off += 1 + len;
  }
  if (off + 4 > msg.length) return undefined;
  const qtype = msg.readUInt16BE(off);
  const qclass = msg.readUInt16BE(off + 2);
  off += 4;
  return { id: msg.readUInt16BE(0), rd: (flags & 0x0100) !== 0, name: labels.join('.'), qtype, qclass, question: Buffer.from(msg.subarray(12, off)) };
}

/** Response codes we send. */
export const Rcode = Object.freeze({ NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4 });

/** Builds an authoritative answer to `q`: `addresses` as A records (each `ttl` seconds), with `rcode`. */
export function buildAnswer(q: DnsQuery, rcode: number, addresses: readonly string[] = [], ttl = 5): Buffer {
  const answers = addresses.map((ip) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // name: pointer to the question's name at offset 12
    rr.writeUInt16BE(DnsType.A, 2);
    rr.writeUInt16BE(1, 4); // class IN
    rr.writeUInt32BE(ttl, 6);
    rr.writeUInt16BE(4, 10);
    ip.split('.').forEach((o, i) => rr.writeUInt8(Number(o) & 255, 12 + i));
    return rr;
  });
  const head = Buffer.alloc(12);
  head.writeUInt16BE(q.id, 0);
  // QR=1, opcode 0, AA=1, RD copied, RA=1 (we answer every name we know; there is nothing to recurse to)
  head.writeUInt16BE(0x8000 | 0x0400 | (q.rd ? 0x0100 : 0) | 0x0080 | (rcode & 0xf), 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(answers.length, 6);
  return Buffer.concat([head, q.question, ...answers]);
}
