/**
 * A small HPACK (RFC 7541) codec for the raw HTTP/2 differential and fuzz tests: the encoder
 * writes exactly the representation it is told to (literal with or without indexing, indexed,
 * Huffman or raw strings, table-size updates), including invalid ones a real client never sends;
 * the decoder reads what Envoy and node's nghttp2 send back (static + dynamic table, Huffman).
 * Checked against node's own HPACK in hpack.test.ts.
 */

/** RFC 7541 Appendix A. Index 1-based: STATIC[0] is index 1. */
const STATIC: readonly (readonly [string, string])[] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'], [':scheme', 'http'],
  [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'], [':status', '304'], [':status', '400'],
  [':status', '404'], [':status', '500'], ['accept-charset', ''], ['accept-encoding', 'gzip, deflate'], ['accept-language', ''],
  ['accept-ranges', ''], ['accept', ''], ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''],
  ['cache-control', ''], ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''], ['expect', ''],
  ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''],
  ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''], ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''],
  ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
];

/**
 * Code length in bits of each symbol of RFC 7541 Appendix B (0-255, then EOS). The code is
 * canonical (codes assigned in order of length, then symbol), so lengths are all it takes.
 */
const HUFFMAN_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

const EOS = 256;
/** codes[s] for each symbol, and a decoding map from (length, code) to symbol. */
const CODES: number[] = new Array<number>(257);
const DECODE = new Map<number, number>();
{
  const order = [...HUFFMAN_LENGTHS.keys()].sort((a, b) => HUFFMAN_LENGTHS[a] - HUFFMAN_LENGTHS[b] || a - b);
  let code = 0;
  let prevLen = HUFFMAN_LENGTHS[order[0]];
  order.forEach((sym, i) => {
    const len = HUFFMAN_LENGTHS[sym];
    if (i > 0) code = (code + 1) * 2 ** (len - prevLen);
    prevLen = len;
    CODES[sym] = code;
    DECODE.set(len * 2 ** 32 + code, sym);
  });
}

/** A malformed header block (the decoder's only error). */
export class HpackError extends Error {}

/** Huffman-encodes bytes (padding with the EOS prefix, all ones). */
export function huffmanEncode(data: Uint8Array): Buffer {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const b of data) {
    const len = HUFFMAN_LENGTHS[b];
    const code = CODES[b];
    for (let i = len - 1; i >= 0; i--) {
      acc = (acc << 1) | (Math.floor(code / 2 ** i) & 1);
      if (++bits === 8) {
        out.push(acc);
        acc = 0;
        bits = 0;
      }
    }
  }
  if (bits > 0) out.push(((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) & 0xff);
  return Buffer.from(out);
}

/** Huffman-decodes; throws HpackError on EOS in the data, over-long or non-ones padding. */
export function huffmanDecode(data: Uint8Array): Buffer {
  const out: number[] = [];
  let code = 0;
  let len = 0;
  for (const byte of data) {
    for (let i = 7; i >= 0; i--) {
      code = code * 2 + ((byte >> i) & 1);
      len++;
      const sym = DECODE.get(len * 2 ** 32 + code);
      if (sym !== undefined) {
        if (sym === EOS) throw new HpackError('EOS in Huffman string');
        out.push(sym);
        code = 0;
        len = 0;
      } else if (len > 30) {
        throw new HpackError('bad Huffman code');
      }
    }
  }
  if (len > 7 || code !== 2 ** len - 1) throw new HpackError('bad Huffman padding');
  return Buffer.from(out);
}

/** HPACK integer with an n-bit prefix; `first` carries the representation's flag bits. */
export function encodeInt(value: number, prefixBits: number, first: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

function encodeString(s: string | Uint8Array, huffman: boolean): number[] {
  const raw = typeof s === 'string' ? Buffer.from(s, 'latin1') : Buffer.from(s);
  const body = huffman ? huffmanEncode(raw) : raw;
  return [...encodeInt(body.length, 7, huffman ? 0x80 : 0), ...body];
}

/** How one header field is represented on the wire. */
export type FieldRep =
  | { kind: 'literal'; name: string; value: string; index?: 'never' | 'without' | 'incremental'; huffman?: boolean }
  | { kind: 'indexed'; index: number }
  | { kind: 'name-ref'; nameIndex: number; value: string; index?: 'never' | 'without' | 'incremental'; huffman?: boolean }
  | { kind: 'size-update'; size: number };

const LITERAL_FLAGS = { never: [0x10, 4], without: [0x00, 4], incremental: [0x40, 6] } as const;

/** Encodes fields exactly as represented (no table of its own: the caller decides indexes). */
export function encodeBlock(fields: readonly FieldRep[]): Buffer {
  const out: number[] = [];
  for (const f of fields) {
    if (f.kind === 'indexed') out.push(...encodeInt(f.index, 7, 0x80));
    else if (f.kind === 'size-update') out.push(...encodeInt(f.size, 5, 0x20));
    else {
      const [flag, bits] = LITERAL_FLAGS[f.index ?? 'without'];
      if (f.kind === 'name-ref') out.push(...encodeInt(f.nameIndex, bits, flag), ...encodeString(f.value, f.huffman ?? false));
      else out.push(...encodeInt(0, bits, flag), ...encodeString(f.name, f.huffman ?? false), ...encodeString(f.value, f.huffman ?? false));
    }
  }
  return Buffer.from(out);
}

/** Plain literal-without-indexing fields: what most generated requests use. */
export function literalBlock(headers: readonly (readonly [string, string])[]): Buffer {
  return encodeBlock(headers.map(([name, value]) => ({ kind: 'literal', name, value })));
}

/** A decoder with its own dynamic table, one per connection direction. */
export class HpackDecoder {
  #table: [string, string][] = [];
  #size = 0;
  #max = 4096;

  /** Decodes one complete header block into [name, value] pairs (latin1 strings). */
  decode(block: Uint8Array): [string, string][] {
    const out: [string, string][] = [];
    let pos = 0;
    const int = (prefixBits: number): number => {
      if (pos >= block.length) throw new HpackError('truncated integer');
      const max = (1 << prefixBits) - 1;
      let v = block[pos++] & max;
      if (v < max) return v;
      let m = 1;
      for (;;) {
        if (pos >= block.length) throw new HpackError('truncated integer');
        const b = block[pos++];
        v += (b & 0x7f) * m;
        m *= 128;
        if ((b & 0x80) === 0) return v;
        if (m > 2 ** 28) throw new HpackError('integer overflow');
      }
    };
    const str = (): string => {
      if (pos >= block.length) throw new HpackError('truncated string');
      const huff = (block[pos] & 0x80) !== 0;
      const len = int(7);
      if (pos + len > block.length) throw new HpackError('truncated string');
      const bytes = block.subarray(pos, pos + len);
      pos += len;
      return (huff ? huffmanDecode(bytes) : Buffer.from(bytes)).toString('latin1');
    };
    const entry = (i: number): readonly [string, string] => {
      if (i >= 1 && i <= STATIC.length) return STATIC[i - 1];
      const d = this.#table[i - STATIC.length - 1];
      if (d === undefined) throw new HpackError(`index ${i} out of range`);
      return d;
    };
    while (pos < block.length) {
      const b = block[pos];
      if (b & 0x80) {
        const i = int(7);
        if (i === 0) throw new HpackError('index 0');
        const [n, v] = entry(i);
        out.push([n, v]);
      } else if ((b & 0xe0) === 0x20) {
        this.#max = int(5);
        this.#evict(0);
      } else {
        const incremental = (b & 0xc0) === 0x40;
        const i = int(incremental ? 6 : 4);
        const name = i === 0 ? str() : entry(i)[0];
        const value = str();
        out.push([name, value]);
        if (incremental) this.#add(name, value);
      }
    }
    return out;
  }

  #add(name: string, value: string): void {
    const size = name.length + value.length + 32;
    this.#evict(size);
    if (size <= this.#max) {
      this.#table.unshift([name, value]);
      this.#size += size;
    }
  }

  #evict(incoming: number): void {
    while (this.#table.length > 0 && this.#size + incoming > this.#max) {
      const [n, v] = this.#table.pop()!;
      this.#size -= n.length + v.length + 32;
    }
  }
}
