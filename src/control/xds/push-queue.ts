/**
 * Debounce for config pushes, the way Istio's pilot does it: a burst of changes (a directory of
 * YAML saved at once, a rollout touching many endpoints) becomes one push. A push fires once no
 * trigger arrived for `debounceMs`, or at the latest `maxDelayMs` after the first trigger of the
 * burst, so a steady trickle cannot starve proxies of updates.
 */

export interface PushQueueOptions {
  /** Quiet time before a push (default 100 ms). */
  debounceMs?: number;
  /** Longest a trigger waits (default 1000 ms). */
  maxDelayMs?: number;
  /** Called with the reasons of the triggers it covers. */
  flush(reasons: string[]): void;
}

export class PushQueue {
  readonly #debounceMs: number;
  readonly #maxDelayMs: number;
  readonly #flush: (reasons: string[]) => void;
  #timer: NodeJS.Timeout | undefined;
  #firstAt = 0;
  #reasons: string[] = [];
  #closed = false;

  constructor(opts: PushQueueOptions) {
    this.#debounceMs = opts.debounceMs ?? 100;
    this.#maxDelayMs = opts.maxDelayMs ?? 1000;
    this.#flush = opts.flush;
  }

  /** Records a trigger; the push follows after the debounce. */
  trigger(reason: string): void {
    if (this.#closed) return;
    const now = Date.now();
    if (this.#timer === undefined) this.#firstAt = now;
    else clearTimeout(this.#timer);
    if (this.#reasons.length < 100) this.#reasons.push(reason);
    const wait = Math.max(0, Math.min(this.#debounceMs, this.#firstAt + this.#maxDelayMs - now));
    this.#timer = setTimeout(() => this.flushNow(), wait);
  }

  /** Pushes now whatever is pending. */
  flushNow(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const reasons = this.#reasons;
    this.#reasons = [];
    if (!this.#closed) this.#flush(reasons);
  }

  get pending(): boolean {
    return this.#timer !== undefined;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
