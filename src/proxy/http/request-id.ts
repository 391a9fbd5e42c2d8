/**
 * x-request-id values: random (version 4) UUIDs, as Envoy's UUID request id extension makes them.
 * `crypto.randomUUID()` builds each string from some twenty concatenated pieces (about half a KB of
 * garbage per request); here a batch of ids is written as ASCII into one buffer from one
 * `randomFillSync`, and each id is one 36-byte string sliced out of it.
 */
import { randomFillSync } from 'node:crypto';

const BATCH = 128;
const random = Buffer.alloc(16 * BATCH);
const text = Buffer.alloc(36 * BATCH);
const HEX = Buffer.from('0123456789abcdef', 'latin1');
let next = BATCH;

function refill(): void {
  randomFillSync(random);
  for (let i = 0; i < BATCH; i++) {
    const r = i * 16;
    // RFC 9562 section 5.4: version 4 in the high nibble of byte 6, variant 10 in byte 8.
    random[r + 6] = (random[r + 6] & 0x0f) | 0x40;
    random[r + 8] = (random[r + 8] & 0x3f) | 0x80;
    let t = i * 36;
    for (let b = 0; b < 16; b++) {
      if (b === 4 || b === 6 || b === 8 || b === 10) text[t++] = 0x2d; // '-'
      const v = random[r + b];
      text[t++] = HEX[v >> 4];
      text[t++] = HEX[v & 0x0f];
    }
  }
  next = 0;
}

/** A new random UUID (8-4-4-4-12 lower-case hex). */
export function newRequestId(): string {
  if (next === BATCH) refill();
  const at = next++ * 36;
  return text.toString('latin1', at, at + 36);
}
