/**
 * A deliberately light ADS client transport for the control-plane benchmark: gRPC framing over
 * node:http2 directly, so a thousand simulated proxies sharing the control plane's two cores cost
 * little more than the bytes they receive. A real proxy decodes on its own CPU (Envoy in C++);
 * grpc-js on the client side would copy every message into one buffer and run its call stack per
 * message, which on one machine measures the clients rather than the control plane.
 *
 * Responses are scanned, not decoded: the top-level fields of a DiscoveryResponse (version, type
 * URL, nonce) are read across the received chunks without joining them; the message's chunks are
 * handed over so a caller that needs the resources (names to follow from CDS/LDS) can join them.
 */
import { connect, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { discoveryRequestWire, type DiscoveryRequestMsg } from '../src/xds/ads-wire.ts';

/** The top-level fields of one DiscoveryResponse, plus its raw bytes as received. */
export interface ScannedResponse {
  version: string;
  typeUrl: string;
  nonce: string;
  resourceCount: number;
  /** The message's bytes as a list of chunk views (join with Buffer.concat when needed). */
  parts: Buffer[];
}

const AdsPath = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
// Envoy's default HTTP/2 windows (256 MiB); grpc-js's 64 KiB would stall large responses.
const Window = 256 * 1024 * 1024;

/** Reads bytes across a list of chunks. */
class Cursor {
  #parts: Buffer[];
  #i = 0;
  #off = 0;
  constructor(parts: Buffer[]) {
    this.#parts = parts;
  }
  get done(): boolean {
    while (this.#i < this.#parts.length && this.#off >= this.#parts[this.#i].length) {
      this.#off -= this.#parts[this.#i].length;
      this.#i++;
    }
    return this.#i >= this.#parts.length;
  }
  byte(): number {
    if (this.done) throw new Error('truncated message');
    return this.#parts[this.#i][this.#off++];
  }
  varint(): number {
    let v = 0;
    for (let shift = 0; ; shift += 7) {
      const b = this.byte();
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
  }
  skip(n: number): void {
    this.#off += n;
  }
  string(n: number): string {
    const out = Buffer.allocUnsafe(n);
    for (let k = 0; k < n; k++) out[k] = this.byte();
    return out.toString('utf8');
  }
}

/** Scans a DiscoveryResponse's top-level fields (all length-delimited) without decoding resources. */
export function scanDiscoveryResponse(parts: Buffer[]): ScannedResponse {
  const res: ScannedResponse = { version: '', typeUrl: '', nonce: '', resourceCount: 0, parts };
  const c = new Cursor(parts);
  while (!c.done) {
    const key = c.varint();
    if ((key & 7) !== 2) throw new Error(`unexpected wire type ${key & 7} in DiscoveryResponse`);
    const len = c.varint();
    const field = key >>> 3;
    if (field === 1) res.version = c.string(len);
    else if (field === 4) res.typeUrl = c.string(len);
    else if (field === 5) res.nonce = c.string(len);
    else {
      if (field === 2) res.resourceCount++;
      c.skip(len);
    }
  }
  return res;
}

/** Splits the gRPC byte stream into messages (5-byte prefix + body) without copying bodies. */
class MessageSplitter {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #need = -1;
  readonly #onMessage: (parts: Buffer[]) => void;
  constructor(onMessage: (parts: Buffer[]) => void) {
    this.#onMessage = onMessage;
  }
  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    for (;;) {
      if (this.#need < 0) {
        if (this.#buffered < 5) return;
        const head = this.#take(5);
        const prefix = head.length === 1 ? head[0] : Buffer.concat(head);
        if (prefix[0] !== 0) throw new Error('compressed gRPC messages are not expected');
        this.#need = prefix.readUInt32BE(1);
      }
      if (this.#buffered < this.#need) return;
      const parts = this.#take(this.#need);
      this.#need = -1;
      this.#onMessage(parts);
    }
  }
  #take(n: number): Buffer[] {
    const out: Buffer[] = [];
    this.#buffered -= n;
    while (n > 0) {
      const first = this.#chunks[0];
      if (first.length <= n) {
        out.push(first);
        this.#chunks.shift();
        n -= first.length;
      } else {
        out.push(first.subarray(0, n));
        this.#chunks[0] = first.subarray(n);
        n = 0;
      }
    }
    return out;
  }
}

/** One HTTP/2 connection to the ADS server; streams are opened on it. */
export class LightAdsConnection {
  readonly session: ClientHttp2Session;
  constructor(address: string) {
    this.session = connect(`http://${address}`, { settings: { initialWindowSize: Window }, maxSessionMemory: 1024 });
    this.session.on('connect', () => this.session.setLocalWindowSize(Window));
    this.session.on('error', (err) => process.stderr.write(`ads connection: ${err.message}\n`));
  }

  /** Opens a StreamAggregatedResources call. */
  open(onResponse: (res: ScannedResponse) => void, onEnd: (why: string) => void): LightAdsStream {
    const stream = this.session.request({ ':method': 'POST', ':path': AdsPath, 'content-type': 'application/grpc', te: 'trailers' });
    const splitter = new MessageSplitter((parts) => onResponse(scanDiscoveryResponse(parts)));
    stream.on('data', (chunk: Buffer) => splitter.push(chunk));
    stream.on('trailers', (t) => {
      if (t['grpc-status'] !== undefined && t['grpc-status'] !== '0') onEnd(`grpc-status ${String(t['grpc-status'])}: ${String(t['grpc-message'] ?? '')}`);
    });
    stream.on('error', (err) => onEnd(err.message));
    return new LightAdsStream(stream);
  }

  close(): void {
    this.session.close();
  }
}

/** The request side of one ADS stream. */
export class LightAdsStream {
  readonly #stream: ClientHttp2Stream;
  constructor(stream: ClientHttp2Stream) {
    this.#stream = stream;
  }
  write(req: DiscoveryRequestMsg): void {
    const body = discoveryRequestWire.serialize(req);
    const framed = Buffer.allocUnsafe(body.length + 5);
    framed[0] = 0;
    framed.writeUInt32BE(body.length, 1);
    body.copy(framed, 5);
    this.#stream.write(framed);
  }
  end(): void {
    this.#stream.end();
  }
}
