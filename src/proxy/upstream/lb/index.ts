/**
 * Load balancer policies by their Envoy `lb_policy` name. Everything above this folder asks for
 * an LB through `lbFactory(policy)` and never names an implementation.
 */
import type { LbPolicy } from '../cluster-config.ts';
import { maglev, ringHash } from './hash.ts';
import { leastRequest, random, roundRobin } from './simple.ts';
import type { LbFactory } from './types.ts';

export type { LbFactory, LbHost, LbOptions, LoadBalancer, PickContext } from './types.ts';
export { seededRandom } from './types.ts';

/** Every policy, for the shared LB test suite. */
export const lbFactories: Readonly<Record<LbPolicy, LbFactory>> = Object.freeze({
  ROUND_ROBIN: roundRobin,
  LEAST_REQUEST: leastRequest,
  RANDOM: random,
  RING_HASH: ringHash,
  MAGLEV: maglev,
});

/** The factory for a policy. */
export function lbFactory(policy: LbPolicy): LbFactory {
  return lbFactories[policy];
}
