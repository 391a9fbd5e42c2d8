/**
 * Hash-based policies. RING_HASH (Ketama, as Envoy builds it): each host gets ring entries
 * proportional to its normalized weight, keyed `address:port_i` hashed with xxHash64, the ring
 * scaled so the lightest host gets at least one entry while staying within
 * [minimum_ring_size, maximum_ring_size]; a request takes the first entry clockwise of its hash,
 * so adding a host only moves the keys that land on the new host's entries. MAGLEV: Google's
 * Maglev lookup table (size prime, default 65537) with Envoy's weighted fill; better balance and
 * O(1) lookup at the cost of slightly more remapping on change.
 */
import type { LbHost, LbOptions, LoadBalancer, PickContext } from './types.ts';
import { xxhash64 } from './xxhash64.ts';

/** The 64-bit hash of a request's hash key (numbers are taken as the hash itself). */
export function hashOf(key: string | number): bigint {
  return typeof key === 'number' ? BigInt.asUintN(64, BigInt(Math.trunc(key))) : xxhash64(key);
}

/** Ring hash LB. */
export function ringHash<H extends LbHost>(hosts: readonly H[], opts: LbOptions): LoadBalancer<H> {
  const n = hosts.length;
  if (n === 0) return { pick: () => undefined };
  const minSize = opts.ringHash?.minRingSize ?? 1024;
  const maxSize = opts.ringHash?.maxRingSize ?? 8_388_608;
  let total = 0;
  for (const h of hosts) total += h.weight;
  let minNorm = 1;
  for (const h of hosts) minNorm = Math.min(minNorm, h.weight / total);
  const scale = Math.min(Math.ceil(minNorm * minSize) / minNorm, maxSize);
  const entries: { hash: bigint; host: number }[] = [];
  let target = 0;
  let current = 0;
  hosts.forEach((h, idx) => {
    target += scale * (h.weight / total);
    let i = 0;
    while (current < target) {
      entries.push({ hash: xxhash64(`${h.key}_${i}`), host: idx });
      i++;
      current++;
    }
  });
  entries.sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
  const hashes = new BigUint64Array(entries.length);
  const owners = new Uint32Array(entries.length);
  entries.forEach((e, i) => { hashes[i] = e.hash; owners[i] = e.host; });
  return {
    pick(ctx: PickContext) {
      if (hashes.length === 0) return undefined;
      const h = ctx.hashKey === undefined ? BigInt(Math.floor(opts.random() * 2 ** 53)) * 2048n : hashOf(ctx.hashKey);
      let lo = 0;
      let hi = hashes.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (hashes[mid] < h) lo = mid + 1;
        else hi = mid;
      }
      return hosts[owners[lo === hashes.length ? 0 : lo]];
    },
  };
}

/** Maglev LB. */
export function maglev<H extends LbHost>(hosts: readonly H[], opts: LbOptions): LoadBalancer<H> {
  const n = hosts.length;
  if (n === 0) return { pick: () => undefined };
  const size = opts.maglevTableSize ?? 65537;
  const bigSize = BigInt(size);
  let maxWeight = 0;
  for (const h of hosts) maxWeight = Math.max(maxWeight, h.weight);
  const offset = hosts.map((h) => Number(xxhash64(h.key) % bigSize));
  const skip = hosts.map((h) => Number(xxhash64(h.key, 1n) % (bigSize - 1n)) + 1);
  const weight = hosts.map((h) => h.weight / maxWeight);
  const next = new Array<number>(n).fill(0);
  const count = new Array<number>(n).fill(0);
  const table = new Int32Array(size).fill(-1);
  let filled = 0;
  for (let iteration = 1; filled < size; iteration++) {
    for (let i = 0; i < n && filled < size; i++) {
      // Envoy's weighted maglev: a host takes a slot in this round only while its share is behind its weight.
      if (iteration * weight[i] < count[i]) continue;
      let c = (offset[i] + skip[i] * next[i]) % size;
      while (table[c] >= 0) {
        next[i]++;
        c = (offset[i] + skip[i] * next[i]) % size;
      }
      table[c] = i;
      next[i]++;
      count[i]++;
      filled++;
    }
  }
  return {
    pick(ctx: PickContext) {
      const h = ctx.hashKey === undefined ? BigInt(Math.floor(opts.random() * 2 ** 53)) : hashOf(ctx.hashKey);
      return hosts[table[Number(h % bigSize)]];
    },
  };
}
