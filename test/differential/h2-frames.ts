/**
 * Raw HTTP/2 frames (RFC 9113 section 4 and 6) for the raw differential and fuzz tests: building
 * any frame, valid or not, byte for byte, and reading the frames a server sends back.
 */

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FrameType = {
  DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9,
} as const;

export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

export const Setting = {
  HEADER_TABLE_SIZE: 1, ENABLE_PUSH: 2, MAX_CONCURRENT_STREAMS: 3, INITIAL_WINDOW_SIZE: 4, MAX_FRAME_SIZE: 5, MAX_HEADER_LIST_SIZE: 6,
  ENABLE_CONNECT_PROTOCOL: 8,
} as const;

/** Error code names for diagnostics (RFC 9113 section 7). */
export const ERROR_NAMES = ['NO_ERROR', 'PROTOCOL_ERROR', 'INTERNAL_ERROR', 'FLOW_CONTROL_ERROR', 'SETTINGS_TIMEOUT', 'STREAM_CLOSED',
  'FRAME_SIZE_ERROR', 'REFUSED_STREAM', 'CANCEL', 'COMPRESSION_ERROR', 'CONNECT_ERROR', 'ENHANCE_YOUR_CALM', 'INADEQUATE_SECURITY', 'HTTP_1_1_REQUIRED'];

/** One frame: 9-byte header (24-bit length, type, flags, reserved bit + 31-bit stream id) and payload. */
export function frame(type: number, flags: number, streamId: number, payload: Uint8Array = Buffer.alloc(0), lengthOverride?: number): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(lengthOverride ?? payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId >>> 0, 5);
  return Buffer.concat([h, payload]);
}

export function settings(pairs: readonly (readonly [number, number])[], ack = false): Buffer {
  const p = Buffer.alloc(pairs.length * 6);
  pairs.forEach(([id, v], i) => {
    p.writeUInt16BE(id, i * 6);
    p.writeUInt32BE(v >>> 0, i * 6 + 2);
  });
  return frame(FrameType.SETTINGS, ack ? Flag.ACK : 0, 0, p);
}

export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

export function rstStream(streamId: number, code: number): Buffer {
  return frame(FrameType.RST_STREAM, 0, streamId, u32(code));
}

export function windowUpdate(streamId: number, increment: number): Buffer {
  return frame(FrameType.WINDOW_UPDATE, 0, streamId, u32(increment));
}

export function ping(data = Buffer.alloc(8), ack = false): Buffer {
  return frame(FrameType.PING, ack ? Flag.ACK : 0, 0, data);
}

export function goaway(lastStreamId: number, code: number): Buffer {
  return frame(FrameType.GOAWAY, 0, 0, Buffer.concat([u32(lastStreamId), u32(code)]));
}

export function priority(streamId: number, dependsOn: number, weight: number, exclusive = false): Buffer {
  return frame(FrameType.PRIORITY, 0, streamId, Buffer.concat([u32((exclusive ? 0x80000000 : 0) + dependsOn), Buffer.from([weight & 0xff])]));
}

/** A HEADERS frame; with `pad`, PADDED and a pad-length byte that may exceed the payload (bad padding). */
export function headers(streamId: number, block: Uint8Array, o: { endStream?: boolean; endHeaders?: boolean; pad?: number; padLengthByte?: number; priority?: { dependsOn: number; weight: number } } = {}): Buffer {
  let flags = (o.endStream ? Flag.END_STREAM : 0) | (o.endHeaders === false ? 0 : Flag.END_HEADERS);
  const parts: Buffer[] = [];
  if (o.pad !== undefined) {
    flags |= Flag.PADDED;
    parts.push(Buffer.from([o.padLengthByte ?? o.pad]));
  }
  if (o.priority) {
    flags |= Flag.PRIORITY;
    parts.push(u32(o.priority.dependsOn), Buffer.from([o.priority.weight]));
  }
  parts.push(Buffer.from(block));
  if (o.pad !== undefined) parts.push(Buffer.alloc(o.pad));
  return frame(FrameType.HEADERS, flags, streamId, Buffer.concat(parts));
}

export function continuation(streamId: number, block: Uint8Array, endHeaders: boolean): Buffer {
  return frame(FrameType.CONTINUATION, endHeaders ? Flag.END_HEADERS : 0, streamId, block);
}

export function data(streamId: number, body: Uint8Array, o: { endStream?: boolean; pad?: number; padLengthByte?: number } = {}): Buffer {
  let flags = o.endStream ? Flag.END_STREAM : 0;
  if (o.pad === undefined) return frame(FrameType.DATA, flags, streamId, body);
  flags |= Flag.PADDED;
  return frame(FrameType.DATA, flags, streamId, Buffer.concat([Buffer.from([o.padLengthByte ?? o.pad]), Buffer.from(body), Buffer.alloc(o.pad)]));
}

/** A received frame. */
export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** Splits a byte stream into frames as bytes arrive; `push` returns the frames completed so far. */
export class FrameReader {
  #buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: Frame[] = [];
    while (this.#buf.length >= 9) {
      const len = this.#buf.readUIntBE(0, 3);
      if (this.#buf.length < 9 + len) break;
      out.push({ type: this.#buf[3], flags: this.#buf[4], streamId: this.#buf.readUInt32BE(5) & 0x7fffffff, payload: this.#buf.subarray(9, 9 + len) });
      this.#buf = this.#buf.subarray(9 + len);
    }
    return out;
  }
}

/** The header block fragment of a HEADERS or PUSH_PROMISE frame, without padding and priority. */
export function headerFragment(f: Frame): Buffer {
  let p = f.payload;
  let pad = 0;
  if (f.flags & Flag.PADDED) {
    pad = p[0];
    p = p.subarray(1);
  }
  if (f.type === FrameType.HEADERS && f.flags & Flag.PRIORITY) p = p.subarray(5);
  return p.subarray(0, Math.max(0, p.length - pad));
}
