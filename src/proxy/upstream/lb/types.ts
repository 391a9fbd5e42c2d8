/**
 * The one load balancer interface every policy implements. An LB is built over a fixed list of
 * hosts (the caller rebuilds it when membership, weights, health or ejection change) and picks one
 * per request. Which hosts are eligible (health, ejection, priority, locality, panic) is decided
 * above, in `host-selector.ts`; an LB only spreads load over what it was given.
 */

/** What an LB needs to know of a host. */
export interface LbHost {
  /** Stable identity, `address:port`; also the ring hash / maglev key. */
  readonly key: string;
  /** load_balancing_weight, >= 1. */
  readonly weight: number;
  /** Requests in flight to this host (LEAST_REQUEST). */
  readonly activeRequests: number;
}

/** Per-pick input. */
export interface PickContext {
  /** Hash from the route's hash policy; absent = no affinity (hash LBs then pick randomly). */
  readonly hashKey?: string | number | undefined;
}

/** Policy options from the cluster (see cluster-config.ts for defaults). */
export interface LbOptions {
  /** Uniform [0, 1) source; seeded in tests. */
  readonly random: () => number;
  readonly ringHash?: { readonly minRingSize: number; readonly maxRingSize: number };
  readonly maglevTableSize?: number;
  readonly leastRequest?: { readonly choiceCount: number; readonly activeRequestBias: number };
}

/** A load balancer over a fixed host list. */
export interface LoadBalancer<H extends LbHost> {
  /** A host, or undefined when the list is empty. */
  pick(ctx: PickContext): H | undefined;
}

/** Builds an LB for a host list. */
export type LbFactory = <H extends LbHost>(hosts: readonly H[], opts: LbOptions) => LoadBalancer<H>;

/** Deterministic PRNG (mulberry32) for tests and for seeding; returns [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
