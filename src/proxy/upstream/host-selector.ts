/**
 * Choosing a host for a request across priority levels and localities, as Envoy does it:
 * priority load from each level's health (available/total x overprovisioning factor, capped at
 * 100%, normalized when the total is below 100%); a level whose availability is below the panic
 * threshold (only considered when normalized total health < 100%) balances over all its hosts;
 * with locality-weighted LB a locality is picked by weight x its own availability, then the
 * policy's LB runs inside it. LBs are rebuilt lazily after `invalidate()` (membership, health or
 * ejection changed), never per request.
 */
import type { Host } from './host.ts';
import type { LbFactory, LbOptions, LoadBalancer, PickContext } from './lb/types.ts';
import { hashOf } from './lb/hash.ts';

export interface SelectorOptions {
  readonly factory: LbFactory;
  readonly lb: LbOptions;
  readonly panicThreshold: number;
  readonly overprovisioningFactor: number;
  /** Locality-weighted LB (ignored by hash policies, as in Envoy). */
  readonly localityWeighted: boolean;
  readonly hashPolicy: boolean;
}

interface LocalityState {
  weight: number;
  lb: LoadBalancer<Host>;
  current: number; // smooth WRR state across localities
}

interface PriorityState {
  load: number; // 0..1
  panic: boolean;
  lb: LoadBalancer<Host> | undefined; // when not locality weighted
  localities: LocalityState[];
}

/** Picks hosts over a cluster's current host list. */
export class HostSelector {
  #hosts: readonly Host[] = [];
  #opts: SelectorOptions;
  #state: PriorityState[] | undefined;

  constructor(opts: SelectorOptions) {
    this.#opts = opts;
  }

  /** Replace the host list (order matters only for determinism). */
  setHosts(hosts: readonly Host[], opts?: SelectorOptions): void {
    this.#hosts = hosts;
    if (opts !== undefined) this.#opts = opts;
    this.#state = undefined;
  }

  /** Health or ejection changed: rebuild LBs on the next pick. */
  invalidate(): void {
    this.#state = undefined;
  }

  /** Priority loads and panic flags, for /clusters and tests. */
  priorityLoads(): { priority: number; load: number; panic: boolean }[] {
    return this.#build().map((p, priority) => ({ priority, load: p.load, panic: p.panic }));
  }

  /**
   * A host for the request, avoiding `avoid` keys when another choice exists (retry previous_hosts):
   * up to `reselects` re-picks (Envoy's host_selection_retry_max_attempts, default 1), then the
   * last pick stands.
   */
  pick(ctx: PickContext, avoid?: readonly string[], reselects = 1): Host | undefined {
    let host = this.#pickOnce(ctx);
    if (avoid !== undefined && avoid.length > 0) {
      for (let i = 0; i < reselects && host !== undefined && avoid.includes(host.key); i++) {
        host = this.#pickOnce(ctx.hashKey === undefined ? ctx : { hashKey: `${String(ctx.hashKey)}#${i + 1}` });
      }
    }
    return host;
  }

  #pickOnce(ctx: PickContext): Host | undefined {
    const state = this.#build();
    if (state.length === 0) return undefined;
    // Hash policies choose the priority from the hash so affinity survives; others draw at random.
    const r = ctx.hashKey !== undefined && this.#opts.hashPolicy ? Number(hashOf(ctx.hashKey) % 10000n) / 10000 : this.#opts.lb.random();
    let acc = 0;
    let chosen = state[state.length - 1];
    for (const p of state) {
      acc += p.load;
      if (r < acc) {
        chosen = p;
        break;
      }
    }
    if (chosen.lb !== undefined) return chosen.lb.pick(ctx);
    return pickLocality(chosen.localities)?.pick(ctx);
  }

  #build(): PriorityState[] {
    if (this.#state !== undefined) return this.#state;
    const o = this.#opts;
    const levels: Host[][] = [];
    for (const h of this.#hosts) (levels[h.priority] ??= []).push(h);
    for (let i = 0; i < levels.length; i++) levels[i] ??= [];
    const health = levels.map((hosts) => {
      if (hosts.length === 0) return 0;
      const avail = hosts.filter((h) => h.available).length;
      return Math.min(1, (o.overprovisioningFactor * avail) / hosts.length);
    });
    const total = health.reduce((a, b) => a + b, 0);
    const normalizedTotal = Math.min(1, total);
    const state: PriorityState[] = levels.map((hosts, i) => {
      const availFraction = hosts.length === 0 ? 0 : hosts.filter((h) => h.available).length / hosts.length;
      const panic = hosts.length > 0 && normalizedTotal < 1 && availFraction < o.panicThreshold;
      return { load: 0, panic, lb: undefined, localities: [] };
    });
    if (total === 0) {
      // Nothing available anywhere: Envoy sends everything to P0 in panic mode.
      if (state.length > 0) {
        const first = levels.findIndex((l) => l.length > 0);
        if (first >= 0) {
          state[first].load = 1;
          state[first].panic = o.panicThreshold > 0;
        }
      }
    } else {
      let remaining = 1;
      for (let i = 0; i < levels.length; i++) {
        const load = Math.min(remaining, health[i] / normalizedTotal);
        state[i].load = load;
        remaining -= load;
      }
    }
    levels.forEach((hosts, i) => {
      const s = state[i];
      if (s.load === 0) return;
      const eligible = s.panic ? hosts : hosts.filter((h) => h.available);
      if (!o.localityWeighted || o.hashPolicy) {
        s.lb = o.factory(eligible, o.lb);
        return;
      }
      const groups = new Map<string, Host[]>();
      for (const h of hosts) {
        const k = `${h.locality.region}/${h.locality.zone}/${h.locality.subZone}`;
        const g = groups.get(k) ?? [];
        g.push(h);
        groups.set(k, g);
      }
      for (const g of groups.values()) {
        const el = s.panic ? g : g.filter((h) => h.available);
        const availability = s.panic ? 1 : Math.min(1, (o.overprovisioningFactor * el.length) / g.length);
        const weight = (g[0].localityWeight ?? 0) * availability;
        if (weight > 0 && el.length > 0) s.localities.push({ weight, lb: o.factory(el, o.lb), current: 0 });
      }
    });
    this.#state = state;
    return state;
  }
}

function pickLocality(ls: LocalityState[]): LoadBalancer<Host> | undefined {
  if (ls.length === 0) return undefined;
  let total = 0;
  let best = ls[0];
  for (const l of ls) {
    l.current += l.weight;
    total += l.weight;
    if (l.current > best.current) best = l;
  }
  best.current -= total;
  return best.lb;
}
