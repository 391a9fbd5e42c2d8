/**
 * A small seeded PRNG (mulberry32) and the choice helpers the differential generator uses, so a
 * printed seed reproduces the exact route tables and requests of a failing run.
 */

/** A seeded random source with helpers; every method advances the same stream. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0;
    let t = this.#s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  /** A weighted pick: [[weight, value], ...]. */
  weighted<T>(items: readonly (readonly [number, T])[]): T {
    const total = items.reduce((a, [w]) => a + w, 0);
    let r = this.next() * total;
    for (const [w, v] of items) {
      if (r < w) return v;
      r -= w;
    }
    return items[items.length - 1][1];
  }

  /** Randomly flips the case of some letters. */
  mangleCase(s: string): string {
    return [...s].map((c) => (this.chance(0.3) ? (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()) : c)).join('');
  }
}
