/**
 * A strict, incremental HTTP/1.1 *response* parser for the upstream client (h1-connection.ts).
 * One parser lives per connection and is reused for every response on it. It frames the body as
 * RFC 9112 section 6.3 says (HEAD/1xx/204/304 none, chunked, content-length, else read until
 * close) and refuses what could desync a connection or smuggle a response, as llhttp does in
 * undici's and node's clients: a malformed status line, a header name that is not a token, a
 * control character in a value, obsolete line folding, bare LF, content-length together with
 * transfer-encoding, two content-length fields, a bad chunk size or a missing CRLF after chunk
 * data. Errors are thrown as H1ProtocolError; the connection turns them into upstream errors.
 * Headers become the engine's HeaderMap directly (lower-case names, repeated fields as arrays),
 * so no second copy is made; the head's connection, keep-alive and transfer-encoding fields are
 * the parser's (framing, keep-alive) and stay out of it.
 */
import type { HeaderMap } from './types.ts';

/** A response the parser refused; `code` names the rule it broke (stable, for tests and logs). */
export class H1ProtocolError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'H1ProtocolError';
    this.code = code;
  }
}

/** What the parser reports; one handler per connection. */
export interface H1ResponseHandler {
  /** A final (>= 200) response head. 1xx heads (100, 102, 103) are skipped, as undici does. */
  onResponseHead(status: number, headers: HeaderMap): void;
  /** A piece of the body; a view into the socket's chunk (not copied). */
  onResponseBody(chunk: Buffer): void;
  /** The message is complete; trailers of a chunked body, if any. */
  onResponseComplete(trailers: HeaderMap | undefined): void;
}

// tchar (RFC 9110 section 5.6.2).
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TOKEN[c.charCodeAt(0)] = 1;

// Parser states (numbers, not an enum: the sources run with type stripping only).
const State = { Idle: 0, Head: 1, BodyLength: 2, BodyUntilClose: 3, ChunkSize: 4, ChunkData: 5, ChunkDataEnd: 6, Trailers: 7, Done: 8 } as const;
type State = (typeof State)[keyof typeof State];

// Module constants: a regular expression literal in a function is a new RegExp object each time
// it runs (two per response here were ~0.1 KB per request; issue 16).
const KEEP_ALIVE_TOKEN = /(?:^|,)\s*keep-alive\s*(?:,|$)/;
const CLOSE_TOKEN = /(?:^|,)\s*close\s*(?:,|$)/;
const KEEP_ALIVE_TIMEOUT = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i;
const DIGITS = /^\d+$/;

/** Longest chunk-size line accepted (size + extensions); Envoy and llhttp bound it too. */
const MAX_CHUNK_LINE = 4096;

/** The state of one connection's responses. */
export class H1ResponseParser {
  private state: State = State.Idle;
  private noBody = false;
  /** Bytes of a head, chunk line or trailer section split across reads. */
  private pending: Buffer | undefined;
  private remaining = 0;
  private trailers: HeaderMap | undefined;
  /** The last final response allows the connection to carry another request. */
  keepAlive = false;
  /** Seconds from the response's `keep-alive: timeout=N`, when present. */
  keepAliveTimeoutSec: number | undefined;
  private lastKeepAlive: string | undefined;
  private lastKeepAliveSec: number | undefined;
  /** Status of the final response being received (0 before its head). */
  status = 0;
  /**
   * The head's connection, keep-alive and transfer-encoding fields: read here for framing and
   * kept out of the header map, so the router can forward the map without copying it to drop
   * them (issue 16). Other connection-specific fields stay in the map (the router drops them).
   */
  private connectionField: string | string[] | undefined;
  private keepAliveField: string | string[] | undefined;
  private transferEncodingField: string | string[] | undefined;

  private readonly handler: H1ResponseHandler;
  private readonly maxHeaderSize: number;

  constructor(handler: H1ResponseHandler, maxHeaderSize: number) {
    this.handler = handler;
    this.maxHeaderSize = maxHeaderSize;
  }

  /** Expect a response to a request just sent; `noBody` for HEAD. */
  start(noBody: boolean): void {
    this.state = State.Head;
    this.noBody = noBody;
    this.pending = undefined;
    this.trailers = undefined;
    this.keepAlive = false;
    this.keepAliveTimeoutSec = undefined;
    this.status = 0;
  }

  /** True between start() and the end of the response. */
  get busy(): boolean {
    return this.state !== State.Idle && this.state !== State.Done;
  }

  /** True when the body ends only with the connection (no length, not chunked). */
  get readsUntilClose(): boolean {
    return this.state === State.BodyUntilClose;
  }

  /**
   * Feeds bytes read from the socket. Returns how many were consumed: less than `chunk.length`
   * only when the response completed and bytes follow it (which the caller must not read as
   * another response). Throws H1ProtocolError.
   */
  execute(chunk: Buffer): number {
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      switch (this.state) {
        case State.Head: {
          const r = this.readHead(chunk, pos);
          if (r < 0) return len;
          pos = r;
          break;
        }
        case State.BodyLength: {
          const n = Math.min(this.remaining, len - pos);
          this.remaining -= n;
          this.handler.onResponseBody(pos === 0 && n === len ? chunk : chunk.subarray(pos, pos + n));
          pos += n;
          if (this.remaining === 0) this.complete();
          break;
        }
        case State.BodyUntilClose:
          this.handler.onResponseBody(pos === 0 ? chunk : chunk.subarray(pos));
          return len;
        case State.ChunkSize: {
          const r = this.readChunkSize(chunk, pos);
          if (r < 0) return len;
          pos = r;
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.remaining, len - pos);
          this.remaining -= n;
          this.handler.onResponseBody(chunk.subarray(pos, pos + n));
          pos += n;
          if (this.remaining === 0) {
            this.state = State.ChunkDataEnd;
            this.remaining = 2;
          }
          break;
        }
        case State.ChunkDataEnd: {
          // The CRLF after chunk data, possibly split across reads.
          const expect = this.remaining === 2 ? 13 : 10;
          if (chunk[pos] !== expect) throw new H1ProtocolError('H1_INVALID_CHUNK', 'chunk data not followed by CRLF');
          pos++;
          if (--this.remaining === 0) this.state = State.ChunkSize;
          break;
        }
        case State.Trailers: {
          const r = this.readTrailers(chunk, pos);
          if (r < 0) return len;
          pos = r;
          break;
        }
        case State.Idle:
        case State.Done:
          return pos;
      }
      if ((this.state as State) === State.Done) return pos;
    }
    return pos;
  }

  /**
   * The connection ended (FIN, or a reset where undici accepts one): completes a body read until
   * close; anything else unfinished is an error.
   */
  finish(): void {
    if (this.state === State.BodyUntilClose) {
      this.complete();
      return;
    }
    if (this.busy) throw new H1ProtocolError('H1_INCOMPLETE', this.state === State.Head ? 'connection closed before response headers' : 'connection closed mid-response');
  }

  private complete(): void {
    this.state = State.Done;
    const t = this.trailers;
    this.trailers = undefined;
    this.handler.onResponseComplete(t);
  }

  /** The last section found (section()): its bytes are sectionBuf[sectionStart, sectionEnd). Fields, not an object per head. */
  private sectionBuf: Buffer | undefined;
  private sectionStart = 0;
  private sectionEnd = 0;

  /**
   * Accumulates bytes until a blank line; returns where the section ends in `chunk` (its bytes in
   * the section fields) or -1 when more is needed.
   */
  private section(chunk: Buffer, pos: number, limit: number, what: string): number {
    let buf = chunk;
    let start = pos;
    let from = pos;
    if (this.pending !== undefined) {
      from = Math.max(0, this.pending.length - 3);
      buf = Buffer.concat([this.pending, chunk.subarray(pos)]);
      start = 0;
      this.pending = undefined;
    }
    const at = buf.indexOf('\r\n\r\n', from, 'latin1');
    if (at < 0) {
      if (buf.length - start > limit) throw new H1ProtocolError('H1_HEADERS_TOO_LARGE', `${what} larger than ${limit} bytes`);
      this.pending = buf === chunk ? Buffer.from(chunk.subarray(start)) : buf.subarray(start);
      return -1;
    }
    if (at - start > limit) throw new H1ProtocolError('H1_HEADERS_TOO_LARGE', `${what} larger than ${limit} bytes`);
    // `next` is in `chunk`'s coordinates: the bytes taken from it up to the blank line.
    this.sectionBuf = buf;
    this.sectionStart = start;
    this.sectionEnd = at;
    return buf === chunk ? at + 4 : pos + (at + 4 - (buf.length - (chunk.length - pos)));
  }

  private readHead(chunk: Buffer, pos: number): number {
    const next = this.section(chunk, pos, this.maxHeaderSize, 'response head');
    if (next < 0) return next;
    const head = this.sectionBuf!.toString('latin1', this.sectionStart, this.sectionEnd);
    this.sectionBuf = undefined;
    const lineEnd = head.indexOf('\r\n');
    const status = parseStatusLine(head, lineEnd < 0 ? head.length : lineEnd);
    const http10 = head.charCodeAt(7) === 48;
    const headers: HeaderMap = {};
    this.connectionField = this.keepAliveField = this.transferEncodingField = undefined;
    if (lineEnd >= 0) parseFields(head, lineEnd + 2, headers, this);
    if (status < 200) {
      // 101 to a request that asked for no upgrade could only desync the connection.
      if (status === 101) throw new H1ProtocolError('H1_UNEXPECTED_UPGRADE', 'unexpected 101 Switching Protocols');
      return next;
    }
    this.status = status;
    this.frame(status, headers, http10);
    this.handler.onResponseHead(status, headers);
    if ((this.state as State) === State.Done) this.complete();
    return next;
  }

  /** Body framing and keep-alive from the final head (RFC 9112 sections 6.3 and 9.3). */
  private frame(status: number, headers: HeaderMap, http10: boolean): void {
    const te = this.transferEncodingField;
    const cl = headers['content-length'];
    if (te !== undefined && cl !== undefined) throw new H1ProtocolError('H1_CONFLICTING_LENGTH', 'content-length together with transfer-encoding');
    if (typeof cl === 'object') throw new H1ProtocolError('H1_CONFLICTING_LENGTH', 'several content-length fields');
    const conn = this.connectionField;
    const connTokens = conn === undefined ? '' : (typeof conn === 'string' ? conn : conn.join(',')).toLowerCase();
    this.keepAlive = http10 ? KEEP_ALIVE_TOKEN.test(connTokens) : !CLOSE_TOKEN.test(connTokens);
    const ka = this.keepAliveField;
    if (this.keepAlive && typeof ka === 'string') {
      // A server sends the same value on every response: parse it once per connection.
      if (ka !== this.lastKeepAlive) {
        const m = KEEP_ALIVE_TIMEOUT.exec(ka);
        this.lastKeepAlive = ka;
        this.lastKeepAliveSec = m === null ? undefined : Number(m[1]);
      }
      this.keepAliveTimeoutSec = this.lastKeepAliveSec;
    }
    if (this.noBody || status === 204 || status === 304) {
      this.state = State.Done;
      return;
    }
    if (te !== undefined) {
      const codings = (typeof te === 'string' ? te : te.join(',')).toLowerCase();
      const last = codings.slice(codings.lastIndexOf(',') + 1).trim();
      if (last === 'chunked') {
        this.state = State.ChunkSize;
      } else {
        this.state = State.BodyUntilClose;
        this.keepAlive = false;
      }
      return;
    }
    if (cl !== undefined) {
      if (cl.length === 0 || cl.length > 15 || !DIGITS.test(cl)) throw new H1ProtocolError('H1_INVALID_CONTENT_LENGTH', `invalid content-length '${cl.slice(0, 32)}'`);
      this.remaining = Number(cl);
      this.state = this.remaining === 0 ? State.Done : State.BodyLength;
      return;
    }
    this.state = State.BodyUntilClose;
    this.keepAlive = false;
  }

  private readChunkSize(chunk: Buffer, pos: number): number {
    let buf = chunk;
    let start = pos;
    if (this.pending !== undefined) {
      buf = Buffer.concat([this.pending, chunk.subarray(pos)]);
      start = 0;
    }
    const at = buf.indexOf(10, start);
    if (at < 0) {
      if (buf.length - start > MAX_CHUNK_LINE) throw new H1ProtocolError('H1_INVALID_CHUNK', 'chunk size line too long');
      this.pending = buf === chunk ? Buffer.from(chunk.subarray(start)) : buf;
      return -1;
    }
    const next = buf === chunk ? at + 1 : pos + (at + 1 - this.pending!.length);
    this.pending = undefined;
    if (at - start > MAX_CHUNK_LINE) throw new H1ProtocolError('H1_INVALID_CHUNK', 'chunk size line too long');
    if (at === start || buf[at - 1] !== 13) throw new H1ProtocolError('H1_INVALID_CHUNK', 'chunk size line not ended by CRLF');
    let size = 0;
    let i = start;
    for (; i < at - 1; i++) {
      const c = buf[i];
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
      if (d < 0) break;
      if (i - start >= 13) throw new H1ProtocolError('H1_INVALID_CHUNK', 'chunk size too large');
      size = size * 16 + d;
    }
    if (i === start) throw new H1ProtocolError('H1_INVALID_CHUNK', 'invalid chunk size');
    if (i < at - 1) {
      // Only chunk extensions may follow the size: ";" then no control characters.
      if (buf[i] !== 59) throw new H1ProtocolError('H1_INVALID_CHUNK', 'invalid chunk size');
      for (let j = i + 1; j < at - 1; j++) {
        const c = buf[j];
        if ((c < 32 && c !== 9) || c === 127) throw new H1ProtocolError('H1_INVALID_CHUNK', 'invalid chunk extension');
      }
    }
    if (size === 0) {
      this.state = State.Trailers;
    } else {
      this.remaining = size;
      this.state = State.ChunkData;
    }
    return next;
  }

  private readTrailers(chunk: Buffer, pos: number): number {
    // The common case: no trailers, the last chunk is followed by a bare CRLF.
    if (this.pending === undefined && chunk.length - pos >= 2 && chunk[pos] === 13 && chunk[pos + 1] === 10) {
      this.complete();
      return pos + 2;
    }
    // A section ending in CRLF CRLF; prefix a CRLF so "no trailers, CRLF split across reads" and
    // "trailer lines" are both found by one search.
    if (this.pending === undefined) this.pending = Buffer.from('\r\n', 'latin1');
    const next = this.section(chunk, pos, this.maxHeaderSize, 'trailer section');
    if (next < 0) return next;
    const text = this.sectionEnd > this.sectionStart + 2 ? this.sectionBuf!.toString('latin1', this.sectionStart + 2, this.sectionEnd) : '';
    this.sectionBuf = undefined;
    if (text.length > 0) {
      const trailers: HeaderMap = {};
      parseFields(text, 0, trailers);
      this.trailers = trailers;
    }
    this.complete();
    return next;
  }

  /** A head's field that goes to the parser instead of the map; false for any other. */
  takeConnectionField(name: string, value: string): boolean {
    if (name === 'connection') this.connectionField = withLine(this.connectionField, value);
    else if (name === 'keep-alive') this.keepAliveField = withLine(this.keepAliveField, value);
    else if (name === 'transfer-encoding') this.transferEncodingField = withLine(this.transferEncodingField, value);
    else return false;
    return true;
  }
}

/** `HTTP/1.x SSS reason`, the status line head[0, end) (no slice of it unless it is refused); returns the status. */
function parseStatusLine(head: string, end: number): number {
  // "HTTP/1.1 200" is 12 characters; the reason phrase may be empty.
  if (end < 12 || !head.startsWith('HTTP/1.') || (head.charCodeAt(7) !== 48 && head.charCodeAt(7) !== 49) || head.charCodeAt(8) !== 32) {
    throw new H1ProtocolError('H1_INVALID_STATUS_LINE', `invalid status line '${printable(head.slice(0, end))}'`);
  }
  const a = head.charCodeAt(9) - 48;
  const b = head.charCodeAt(10) - 48;
  const c = head.charCodeAt(11) - 48;
  if (a < 1 || a > 9 || b < 0 || b > 9 || c < 0 || c > 9 || (end > 12 && head.charCodeAt(12) !== 32)) {
    throw new H1ProtocolError('H1_INVALID_STATUS_LINE', `invalid status line '${printable(head.slice(0, end))}'`);
  }
  for (let i = 13; i < end; i++) {
    const ch = head.charCodeAt(i);
    if ((ch < 32 && ch !== 9) || ch === 127) throw new H1ProtocolError('H1_INVALID_STATUS_LINE', 'control character in reason phrase');
  }
  return a * 100 + b * 10 + c;
}

/** A field's value with one more line (several lines: an array, as in the header map). */
function withLine(prev: string | string[] | undefined, value: string): string | string[] {
  if (prev === undefined) return value;
  if (typeof prev === 'string') return [prev, value];
  prev.push(value);
  return prev;
}

/**
 * Header or trailer lines from `from` to the end of `text` (lines separated by CRLF) into `out`;
 * a head's connection fields to `head` instead.
 */
function parseFields(text: string, from: number, out: HeaderMap, head?: H1ResponseParser): void {
  let pos = from;
  const end = text.length;
  while (pos < end) {
    let eol = text.indexOf('\r\n', pos);
    if (eol < 0) eol = end;
    const colon = text.indexOf(':', pos);
    if (colon <= pos || colon > eol) throw new H1ProtocolError('H1_INVALID_HEADER', `invalid header line '${printable(text.slice(pos, Math.min(eol, pos + 64)))}'`);
    for (let i = pos; i < colon; i++) {
      const c = text.charCodeAt(i);
      if (c > 127 || TOKEN[c] === 0) throw new H1ProtocolError('H1_INVALID_HEADER', `invalid header name '${printable(text.slice(pos, colon))}'`);
    }
    let vs = colon + 1;
    let ve = eol;
    while (vs < ve && (text.charCodeAt(vs) === 32 || text.charCodeAt(vs) === 9)) vs++;
    while (ve > vs && (text.charCodeAt(ve - 1) === 32 || text.charCodeAt(ve - 1) === 9)) ve--;
    for (let i = vs; i < ve; i++) {
      const c = text.charCodeAt(i);
      // CR, LF (bare line ends), NUL and the other controls; HTAB is allowed.
      if ((c < 32 && c !== 9) || c === 127) throw new H1ProtocolError('H1_INVALID_HEADER', `control character in header '${printable(text.slice(pos, colon))}'`);
    }
    const name = knownName(text, pos, colon) ?? text.slice(pos, colon).toLowerCase();
    const value = text.slice(vs, ve);
    if (head === undefined || !head.takeConnectionField(name, value)) addField(out, name, value);
    pos = eol + 2;
  }
}

/**
 * Response field names most backends send, lower-case, by length: a name found here costs no
 * slice and no lower-casing (two strings per field, ~60 bytes; issue 16).
 */
const KNOWN_NAMES: (readonly string[] | undefined)[] = [];
for (const n of [
  'age', 'date', 'etag', 'vary', 'server', 'expires', 'location', 'connection', 'keep-alive', 'set-cookie', 'grpc-status',
  'content-type', 'x-powered-by', 'grpc-message', 'accept-ranges', 'cache-control', 'last-modified', 'content-length',
  'content-encoding', 'transfer-encoding', 'x-content-type-options', 'access-control-allow-origin', 'x-envoy-upstream-service-time',
]) ((KNOWN_NAMES[n.length] ??= []) as string[]).push(n);

/** The interned lower-case name of the field name text[from, to), when it is a known one. */
function knownName(text: string, from: number, to: number): string | undefined {
  const list = KNOWN_NAMES[to - from];
  if (list === undefined) return undefined;
  for (let k = 0; k < list.length; k++) {
    const n = list[k];
    let i = 0;
    for (; i < n.length; i++) {
      const c = text.charCodeAt(from + i);
      const want = n.charCodeAt(i);
      // Letters compare without case (A-Z is a-z minus 32); every other character exactly.
      if (c !== want && !(want >= 97 && want <= 122 && c === want - 32)) break;
    }
    if (i === n.length) return n;
  }
  return undefined;
}

function addField(out: HeaderMap, name: string, value: string): void {
  const prev = out[name];
  // Names like constructor or __proto__ read inherited values: only own fields are earlier lines.
  if (prev === undefined || !Object.hasOwn(out, name)) {
    // A field named __proto__ must stay a field, not replace the object's prototype.
    if (name === '__proto__') Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
    else out[name] = value;
  } else {
    out[name] = withLine(prev, value);
  }
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`).slice(0, 80);
}
