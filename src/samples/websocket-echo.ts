/**
 * A minimal RFC 6455 WebSocket echo for the echo server's `/ws` (what the Gateway API
 * conformance backend serves): the handshake, then every text/binary message comes back as is,
 * pings get pongs, close is answered. Fragmented messages are reassembled; frames over 16 MiB and
 * unmasked client frames close the connection (protocol error), never the process.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_FRAME = 16 * 1024 * 1024;

function frame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, len]) : len < 65536 ? Buffer.from([0x80 | opcode, 126, len >> 8, len & 0xff]) : Buffer.alloc(10);
  if (len >= 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, payload]);
}

/** Completes the handshake on an HTTP/1.1 Upgrade request and echoes messages; false if not a WebSocket request. */
export function acceptWebSocketEcho(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
  const key = req.headers['sec-websocket-key'];
  if (String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket' || typeof key !== 'string') return false;
  const accept = createHash('sha1').update(key + GUID).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  let buf: Buffer = head.length > 0 ? Buffer.from(head) : Buffer.alloc(0);
  let message: Buffer[] = [];
  let messageOpcode = 0;
  socket.on('error', () => socket.destroy());
  const fail = () => {
    socket.end(frame(8, Buffer.from([0x03, 0xea])));
  };
  const drain = () => {
    for (;;) {
      if (buf.length < 2) return;
      const fin = (buf[0] & 0x80) !== 0;
      const opcode = buf[0] & 0x0f;
      const masked = (buf[1] & 0x80) !== 0;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        const big = buf.readBigUInt64BE(2);
        if (big > BigInt(MAX_FRAME)) return fail();
        len = Number(big);
        off = 10;
      }
      if (!masked || len > MAX_FRAME) return fail();
      if (buf.length < off + 4 + len) return;
      const mask = buf.subarray(off, off + 4);
      const payload = Buffer.from(buf.subarray(off + 4, off + 4 + len));
      for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
      buf = buf.subarray(off + 4 + len);
      if (opcode === 8) {
        socket.end(frame(8, payload.subarray(0, 2)));
        return;
      }
      if (opcode === 9) {
        socket.write(frame(10, payload));
        continue;
      }
      if (opcode === 10) continue;
      if (opcode === 1 || opcode === 2) {
        messageOpcode = opcode;
        message = [payload];
      } else if (opcode === 0) {
        message.push(payload);
      } else {
        return fail();
      }
      if (fin) {
        socket.write(frame(messageOpcode, Buffer.concat(message)));
        message = [];
      }
    }
  };
  socket.on('data', (d: Buffer) => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
    drain();
  });
  drain();
  return true;
}
