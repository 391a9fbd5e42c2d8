/**
 * Plays one generated HTTP/2 case against a proxy over a raw prior-knowledge h2c socket and
 * reduces what happened to its outcome class: per request stream, the final status, `reset`
 * (RST_STREAM) or `none`; for the connection, `closed` (GOAWAY or the socket closed) or `kept` (a
 * PING sent after the streams settled was acknowledged). Error codes are kept for reports but not
 * compared. The server's SETTINGS are acknowledged as a client must.
 */
import net from 'node:net';
import { ERROR_NAMES, Flag, FrameReader, FrameType, headerFragment, ping, settings, type Frame } from './h2-frames.ts';
import { HpackDecoder } from './hpack.ts';

/** What a proxy did with one HTTP/2 case. */
export interface H2Outcome {
  /** Stream id -> `status:NNN`, `reset` or `none`. */
  streams: Record<string, string>;
  conn: 'kept' | 'closed';
  /** Not compared: error codes and the like, for reports. */
  detail: string[];
}

const CANARY_PING = Buffer.from('canary!!');

/** Plays `chunks` to 127.0.0.1:port; `streams` are the request streams to report on. */
export function runH2(port: number, chunks: readonly Buffer[], streams: readonly number[], o: { quietMs: number; maxMs?: number }): Promise<H2Outcome> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const reader = new FrameReader();
    const hpack = new HpackDecoder();
    const state = new Map<number, string>(streams.map((s) => [s, 'none']));
    const settled = new Set<number>();
    const detail: string[] = [];
    let headerBlock: { sid: number; parts: Buffer[]; endStream: boolean } | undefined;
    let goaway = false;
    let written = false;
    let acks = 0;
    let pingSent = false;
    let done = false;
    let quiet: NodeJS.Timeout | undefined;
    const finish = (conn: 'kept' | 'closed') => {
      if (done) return;
      done = true;
      clearTimeout(quiet);
      clearTimeout(cap);
      sock.destroy();
      resolve({ streams: Object.fromEntries([...state].map(([k, v]) => [String(k), v])), conn, detail });
    };
    const cap = setTimeout(() => finish('closed'), o.maxMs ?? 10_000);
    const sendPing = () => {
      if (pingSent || done) return;
      pingSent = true;
      sock.write(ping(CANARY_PING));
      armQuiet();
    };
    const armQuiet = () => {
      clearTimeout(quiet);
      // Streams that never settle (a proxy waiting for more) are `none`; then ask whether the connection lives.
      quiet = setTimeout(() => (pingSent || goaway ? finish('closed') : sendPing()), pingSent ? Math.max(o.quietMs, 2000) : o.quietMs);
    };
    const settle = (sid: number, v: string) => {
      if (!state.has(sid) || settled.has(sid)) return;
      state.set(sid, v);
      settled.add(sid);
    };
    const onHeaders = (sid: number, block: Buffer, endStream: boolean) => {
      let fields: [string, string][];
      try {
        fields = hpack.decode(block);
      } catch (err) {
        detail.push(`undecodable response headers: ${(err as Error).message}`);
        return;
      }
      const status = fields.find(([n]) => n === ':status')?.[1];
      if (status !== undefined && Number(status) >= 200 && state.get(sid) === 'none') state.set(sid, `status:${status}`);
      if (endStream) settled.add(sid);
    };
    const onFrame = (f: Frame) => {
      if (headerBlock !== undefined && f.type === FrameType.CONTINUATION) {
        headerBlock.parts.push(f.payload);
        if (f.flags & Flag.END_HEADERS) {
          onHeaders(headerBlock.sid, Buffer.concat(headerBlock.parts), headerBlock.endStream);
          headerBlock = undefined;
        }
        return;
      }
      switch (f.type) {
        case FrameType.SETTINGS:
          // Acknowledged once the case is written: an ACK sent between the preface and the case's
          // own SETTINGS would make the ACK the client's first frame (a connection error).
          if (!(f.flags & Flag.ACK)) {
            if (written) sock.write(settings([], true));
            else acks++;
          }
          break;
        case FrameType.HEADERS:
          if (f.flags & Flag.END_HEADERS) onHeaders(f.streamId, headerFragment(f), (f.flags & Flag.END_STREAM) !== 0);
          else headerBlock = { sid: f.streamId, parts: [headerFragment(f)], endStream: (f.flags & Flag.END_STREAM) !== 0 };
          break;
        case FrameType.DATA:
          if (f.flags & Flag.END_STREAM) settled.add(f.streamId);
          break;
        case FrameType.RST_STREAM:
          detail.push(`RST_STREAM ${f.streamId} ${ERROR_NAMES[f.payload.readUInt32BE(0)] ?? f.payload.readUInt32BE(0)}`);
          if (state.get(f.streamId) === 'none') settle(f.streamId, 'reset');
          settled.add(f.streamId);
          break;
        case FrameType.GOAWAY:
          goaway = true;
          detail.push(`GOAWAY last=${f.payload.readUInt32BE(0) & 0x7fffffff} ${ERROR_NAMES[f.payload.readUInt32BE(4)] ?? f.payload.readUInt32BE(4)}`);
          break;
        case FrameType.PING:
          if (f.flags & Flag.ACK && f.payload.equals(CANARY_PING)) return finish(goaway ? 'closed' : 'kept');
          break;
      }
    };
    sock.on('data', (c: Buffer) => {
      for (const f of reader.push(c)) onFrame(f);
      if (goaway) {
        // After GOAWAY, streams above last-stream-id will never be answered; give the rest a moment.
        armQuiet();
        if (streams.every((s) => settled.has(s))) finish('closed');
        return;
      }
      if (!pingSent && streams.every((s) => settled.has(s))) sendPing();
      else armQuiet();
    });
    sock.on('error', () => {});
    sock.on('close', () => finish('closed'));
    sock.on('connect', async () => {
      for (let i = 0; i < chunks.length && !sock.destroyed; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 2));
        sock.write(chunks[i]);
      }
      written = true;
      for (; acks > 0 && !sock.destroyed; acks--) sock.write(settings([], true));
      armQuiet();
    });
  });
}
