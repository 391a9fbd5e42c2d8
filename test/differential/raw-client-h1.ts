/**
 * Plays one generated HTTP/1.1 case against a proxy over a raw socket and reduces what happened
 * to its outcome class: the statuses of the responses that came back (interim ones included), and
 * how the connection ended: `closed` by the proxy, `kept` (a canary request sent after the last
 * expected response was answered on the same connection) or `pending` (the proxy still waits for
 * bytes: nothing more came within the quiet time).
 */
import net from 'node:net';
import { CASE_HEADER } from './recorder.ts';

/** How a connection ended. */
export type ConnectionEnd = 'kept' | 'closed' | 'pending';

/** What a proxy did with one HTTP/1.1 case. */
export interface H1Outcome {
  statuses: number[];
  end: ConnectionEnd;
  /** The canary's status when the connection was kept. */
  canary?: number;
  /** Response bytes that could not be parsed (a proxy answering with something not HTTP/1.x). */
  garbage?: string;
}

interface Parsed {
  status: number;
  close: boolean;
  tunnel: boolean;
}

/** Incremental HTTP/1.x response parser; `methods` are the requests' methods in order (HEAD has no body). */
class ResponseParser {
  #buf: Buffer = Buffer.alloc(0);
  #methods: string[];
  #body: { kind: 'length'; left: number } | { kind: 'chunked'; state: 'size' | 'data' | 'trailer'; left: number } | { kind: 'eof' } | undefined;
  #current: Parsed | undefined;
  #headSkip = 0;
  readonly done: Parsed[] = [];
  interim: number[] = [];
  garbage: string | undefined;
  tunnel = false;

  constructor(methods: readonly string[]) {
    this.#methods = [...methods];
  }

  push(chunk: Buffer): void {
    if (this.tunnel || this.garbage !== undefined) return;
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    while (this.#step()) { /* parse as far as the bytes go */ }
  }

  /** The connection closed: a response delimited by close is complete. */
  eof(): void {
    if (this.#current !== undefined && this.#body?.kind === 'eof') this.#finish();
  }

  /** Every response seen, interim and final, in order. */
  get statuses(): number[] {
    return this.#order;
  }
  #order: number[] = [];

  #finish(): void {
    this.done.push(this.#current!);
    this.#current = undefined;
    this.#body = undefined;
  }

  #step(): boolean {
    if (this.#current === undefined) {
      if (this.#headSkip > 0 && this.#buf.length > 0 && !'HTTP/'.startsWith(this.#buf.toString('latin1', 0, Math.min(5, this.#buf.length)))) {
        const n = Math.min(this.#headSkip, this.#buf.length);
        this.#buf = this.#buf.subarray(n);
        this.#headSkip -= n;
        return this.#buf.length > 0;
      }
      this.#headSkip = 0;
      const end = this.#buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (!'HTTP/'.startsWith(this.#buf.toString('latin1', 0, Math.min(5, this.#buf.length)))) this.garbage = this.#buf.toString('latin1').slice(0, 80);
        return false;
      }
      const head = this.#buf.toString('latin1', 0, end).split('\r\n');
      this.#buf = this.#buf.subarray(end + 4);
      const m = /^HTTP\/\d\.\d (\d{3})/.exec(head[0]);
      if (m === null) {
        this.garbage = head[0].slice(0, 80);
        return false;
      }
      const status = Number(m[1]);
      this.#order.push(status);
      if (status < 200 && status !== 101) {
        this.interim.push(status);
        return true;
      }
      const h = new Map<string, string>();
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) h.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim().toLowerCase());
      }
      const method = this.#methods.shift() ?? 'GET';
      const tunnel = status === 101 || (method === 'CONNECT' && status >= 200 && status < 300);
      this.#current = { status, close: (h.get('connection') ?? '').includes('close'), tunnel };
      if (tunnel) {
        this.tunnel = true;
        this.#finish();
        return false;
      }
      // A HEAD response has no body, except a codec error answered before the method was known
      // (Envoy's 400 has one): such bytes are skipped when they come instead of a next response.
      if (method === 'HEAD') this.#headSkip = Number(h.get('content-length') ?? 0);
      if (method === 'HEAD' || status === 204 || status === 304) this.#body = { kind: 'length', left: 0 };
      else if ((h.get('transfer-encoding') ?? '').includes('chunked')) this.#body = { kind: 'chunked', state: 'size', left: 0 };
      else if (h.has('content-length')) this.#body = { kind: 'length', left: Number(h.get('content-length')) };
      else this.#body = { kind: 'eof' };
    }
    const b = this.#body!;
    if (b.kind === 'eof') {
      this.#buf = Buffer.alloc(0);
      return false;
    }
    if (b.kind === 'length' || b.state === 'data') {
      const take = Math.min(b.left, this.#buf.length);
      b.left -= take;
      this.#buf = this.#buf.subarray(take);
      if (b.left > 0) return false;
      if (b.kind === 'length') this.#finish();
      else b.state = 'size';
      return true;
    }
    const eol = this.#buf.indexOf('\r\n');
    if (eol < 0) return false;
    const line = this.#buf.toString('latin1', 0, eol);
    this.#buf = this.#buf.subarray(eol + 2);
    if (b.state === 'trailer') {
      if (line === '') this.#finish();
      return true;
    }
    if (line === '') return true; // CRLF after chunk data
    const size = parseInt(line, 16);
    if (size === 0) b.state = 'trailer';
    else {
      b.state = 'data';
      b.left = size;
    }
    return true;
  }
}

/** The canary request sent on a connection that looks kept alive. */
export function canaryRequest(caseId: string): Buffer {
  return Buffer.from(`GET /b/canary HTTP/1.1\r\nHost: diff.example\r\n${CASE_HEADER}: ${caseId}.canary\r\n\r\n`, 'latin1');
}

/** Options of one run. */
export interface RunOptions {
  /** Nothing received for this long (after the last write) ends the case as `pending`. */
  readonly quietMs: number;
  /** Upper bound on the whole case. */
  readonly maxMs?: number;
}

/** Plays `chunks` to 127.0.0.1:port; `methods` are the request methods written. */
export function runH1(port: number, caseId: string, chunks: readonly Buffer[], methods: readonly string[], o: RunOptions): Promise<H1Outcome> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const parser = new ResponseParser(methods);
    let canarySent = false;
    let settled = false;
    let quiet: NodeJS.Timeout | undefined;
    const finish = (end: ConnectionEnd) => {
      if (settled) return;
      settled = true;
      clearTimeout(quiet);
      clearTimeout(cap);
      sock.destroy();
      // The canary's own answer is not part of the case's responses.
      const out: H1Outcome = { statuses: end === 'kept' ? parser.statuses.slice(0, -1) : parser.statuses, end };
      if (end === 'kept') out.canary = parser.statuses.at(-1);
      if (parser.garbage !== undefined) out.garbage = parser.garbage;
      resolve(out);
    };
    const cap = setTimeout(() => finish('pending'), o.maxMs ?? 10_000);
    const armQuiet = () => {
      clearTimeout(quiet);
      quiet = setTimeout(() => finish(canarySent ? 'closed' : 'pending'), canarySent ? Math.max(o.quietMs, 2000) : o.quietMs);
    };
    const check = () => {
      const finals = parser.done.length;
      if (canarySent) {
        if (finals > methods.length) finish('kept');
        return;
      }
      if (parser.tunnel || parser.garbage !== undefined) return finish('closed');
      // A final response that says `connection: close` ends the connection whatever the proxy's
      // delayed-close timer does with the socket afterwards.
      if (parser.done.at(-1)?.close === true) return finish('closed');
      if (finals >= methods.length) {
        canarySent = true;
        sock.write(canaryRequest(caseId));
        armQuiet();
      }
    };
    sock.on('data', (c: Buffer) => {
      parser.push(c);
      armQuiet();
      check();
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      parser.eof();
      if (!settled && canarySent && parser.done.length > methods.length) return finish('kept');
      finish('closed');
    });
    sock.on('connect', async () => {
      for (let i = 0; i < chunks.length && !sock.destroyed; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 5));
        sock.write(chunks[i]);
      }
      armQuiet();
    });
  });
}
