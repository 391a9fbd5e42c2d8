/**
 * Byte-level mutations for the fuzz pass: from a valid (or generated) seed, flip bits, overwrite,
 * insert or delete bytes, duplicate or drop a slice, splice in part of another seed, replace a
 * decimal or a length-looking byte with an extreme value, truncate. A few mutations per input, so
 * most inputs stay close enough to valid to get past the first checks of a parser.
 */
import type { Rng } from '../differential/prng.ts';

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x0d, 0x0a, 0x20, 0x3a, 0x2f, 0x25, 0x2e, 0x5c, 0x09];
const INTERESTING_NUMBERS = ['0', '-1', '4294967295', '4294967296', '18446744073709551616', '99999999999999999999', '0x10', '1e3', ''];

function randomBytes(r: Rng, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = r.int(0, 255);
  return b;
}

/** One mutation of `input` (a new buffer); `pool` supplies material for splices. */
export function mutateOnce(r: Rng, input: Buffer, pool: readonly Buffer[]): Buffer {
  if (input.length === 0) return randomBytes(r, r.int(1, 16));
  const at = r.int(0, input.length - 1);
  switch (r.int(0, 9)) {
    case 0: { // bit flip
      const out = Buffer.from(input);
      out[at] ^= 1 << r.int(0, 7);
      return out;
    }
    case 1: { // interesting byte
      const out = Buffer.from(input);
      out[at] = r.pick(INTERESTING_BYTES);
      return out;
    }
    case 2: // insert random bytes
      return Buffer.concat([input.subarray(0, at), randomBytes(r, r.int(1, 8)), input.subarray(at)]);
    case 3: // delete a slice
      return Buffer.concat([input.subarray(0, at), input.subarray(Math.min(input.length, at + r.int(1, 16)))]);
    case 4: { // duplicate a slice
      const end = Math.min(input.length, at + r.int(1, 64));
      return Buffer.concat([input.subarray(0, end), input.subarray(at, end), input.subarray(end)]);
    }
    case 5: { // splice with another seed
      const other = r.pick(pool);
      const from = r.int(0, Math.max(0, other.length - 1));
      return Buffer.concat([input.subarray(0, at), other.subarray(from, from + r.int(1, 128))]);
    }
    case 6: { // replace a decimal number with an extreme one
      const text = input.toString('latin1');
      const matches = [...text.matchAll(/\d+/g)];
      if (matches.length === 0) return mutateOnce(r, input, pool);
      const m = r.pick(matches);
      return Buffer.from(text.slice(0, m.index) + r.pick(INTERESTING_NUMBERS) + text.slice(m.index + m[0].length), 'latin1');
    }
    case 7: { // a 32-bit big-endian field (protobuf lengths, HTTP/2 frame fields) set to an extreme
      const out = Buffer.from(input);
      if (at + 4 <= out.length) out.writeUInt32BE(r.pick([0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x00ffffff]), at);
      return out;
    }
    case 8: // truncate
      return input.subarray(0, at);
    default: { // repeat a byte many times (length and counter overflows)
      const run = Buffer.alloc(r.pick([16, 256, 4096]), input[at]);
      return Buffer.concat([input.subarray(0, at), run, input.subarray(at)]);
    }
  }
}

/** 1-4 mutations of a seed picked from `pool`; rarely pure random bytes. */
export function mutate(r: Rng, pool: readonly Buffer[]): Buffer {
  if (r.chance(0.03)) return randomBytes(r, r.int(1, 512));
  let out = r.pick(pool);
  for (let i = r.int(1, 4); i > 0; i--) out = mutateOnce(r, out, pool);
  return out;
}
