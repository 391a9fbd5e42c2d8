/**
 * The stateless-ish policies: ROUND_ROBIN (smooth weighted round robin, as nginx does it: same
 * long-run shares as Envoy's EDF scheduler, and no bursts to the heaviest host), RANDOM (weighted
 * random over a prefix-sum table) and LEAST_REQUEST (Envoy: with equal weights, power of N random
 * choices picking the fewest active requests; with unequal weights, weight / (active + 1)^bias —
 * Envoy feeds those into its EDF scheduler, we draw a weighted random over them, same expectation).
 */
import type { LbHost, LbOptions, LoadBalancer, PickContext } from './types.ts';

function allEqual(hosts: readonly LbHost[]): boolean {
  for (const h of hosts) if (h.weight !== hosts[0].weight) return false;
  return true;
}

/** Smooth weighted round robin. */
export function roundRobin<H extends LbHost>(hosts: readonly H[], opts: LbOptions): LoadBalancer<H> {
  const n = hosts.length;
  if (n === 0) return { pick: () => undefined };
  // Envoy starts each worker at a random offset so proxies do not all hit host 0 first.
  let next = Math.floor(opts.random() * n);
  if (allEqual(hosts)) {
    return { pick: () => hosts[next++ % n] };
  }
  const current = new Float64Array(n);
  let total = 0;
  for (const h of hosts) total += h.weight;
  return {
    pick() {
      let best = 0;
      for (let i = 0; i < n; i++) {
        current[i] += hosts[i].weight;
        if (current[i] > current[best]) best = i;
      }
      current[best] -= total;
      return hosts[best];
    },
  };
}

/** Weighted random. */
export function random<H extends LbHost>(hosts: readonly H[], opts: LbOptions): LoadBalancer<H> {
  const n = hosts.length;
  if (n === 0) return { pick: () => undefined };
  if (allEqual(hosts)) return { pick: () => hosts[Math.floor(opts.random() * n)] };
  const cumulative = new Float64Array(n);
  let sum = 0;
  hosts.forEach((h, i) => { sum += h.weight; cumulative[i] = sum; });
  return {
    pick() {
      const r = opts.random() * sum;
      let lo = 0;
      let hi = n - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cumulative[mid] > r) hi = mid;
        else lo = mid + 1;
      }
      return hosts[lo];
    },
  };
}

/** Least request. */
export function leastRequest<H extends LbHost>(hosts: readonly H[], opts: LbOptions): LoadBalancer<H> {
  const n = hosts.length;
  if (n === 0) return { pick: () => undefined };
  const choices = opts.leastRequest?.choiceCount ?? 2;
  const bias = opts.leastRequest?.activeRequestBias ?? 1;
  if (allEqual(hosts)) {
    return {
      pick(_ctx: PickContext) {
        let best = hosts[Math.floor(opts.random() * n)];
        for (let c = 1; c < choices; c++) {
          const h = hosts[Math.floor(opts.random() * n)];
          if (h.activeRequests < best.activeRequests) best = h;
        }
        return best;
      },
    };
  }
  const dyn = new Float64Array(n);
  return {
    pick() {
      let sum = 0;
      for (let i = 0; i < n; i++) {
        const h = hosts[i];
        dyn[i] = bias === 0 ? h.weight : h.weight / Math.pow(h.activeRequests + 1, bias);
        sum += dyn[i];
      }
      let r = opts.random() * sum;
      for (let i = 0; i < n; i++) {
        r -= dyn[i];
        if (r < 0) return hosts[i];
      }
      return hosts[n - 1];
    },
  };
}
