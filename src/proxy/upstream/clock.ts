/**
 * The time seam of the upstream side. Outlier detection, DNS refresh and idle timers read time and
 * schedule work only through a `Clock`, so tests drive them with `ManualClock` (advance time by
 * hand, fire due timers synchronously) and stay fast and deterministic.
 */

/** A cancellable timer handle. */
export interface ClockTimer {
  cancel(): void;
}

/** Time and timers. `now()` is milliseconds. */
export interface Clock {
  now(): number;
  /** Run `fn` once after `ms`. The timer does not keep the process alive. */
  setTimeout(fn: () => void, ms: number): ClockTimer;
  /** Run `fn` every `ms`. The timer does not keep the process alive. */
  setInterval(fn: () => void, ms: number): ClockTimer;
}

/** The real clock: `performance.now()` offset to epoch and unref'd node timers. */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    t.unref();
    return { cancel: () => clearInterval(t) };
  },
};

interface ManualTimer {
  at: number;
  every: number; // 0 for one-shot
  fn: () => void;
  cancelled: boolean;
}

/** A clock for tests: time only moves when `advance()` is called; due timers run in order. */
export class ManualClock implements Clock {
  #now: number;
  #timers: ManualTimer[] = [];

  constructor(start = 1_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    return this.#add(fn, ms, 0);
  }

  setInterval(fn: () => void, ms: number): ClockTimer {
    return this.#add(fn, ms, Math.max(1, ms));
  }

  /** Move time forward by `ms`, running every timer that falls due on the way, in time order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.#timers) if (!t.cancelled && t.at <= end && (next === undefined || t.at < next.at)) next = t;
      if (next === undefined) break;
      this.#now = next.at;
      if (next.every > 0) next.at += next.every;
      else next.cancelled = true;
      next.fn();
    }
    this.#timers = this.#timers.filter((t) => !t.cancelled);
    this.#now = end;
  }

  #add(fn: () => void, ms: number, every: number): ClockTimer {
    const t: ManualTimer = { at: this.#now + Math.max(0, ms), every, fn, cancelled: false };
    this.#timers.push(t);
    return { cancel: () => { t.cancelled = true; } };
  }
}
