/**
 * When to start a replacement for a proxy worker that died: at once the first time, then with
 * exponentially growing delays while replacements keep dying young, back to no delay once one
 * has lived `stableMs`. A worker that crashes on every start (a config it cannot take, a request
 * that kills it each time) then costs a fork every few seconds instead of a fork storm that
 * starves the workers still serving.
 */
export interface RestartBackoffOptions {
  /** Delay before the second restart in a row; doubles with each further one. */
  readonly baseMs?: number;
  readonly maxMs?: number;
  /** A worker that lived this long resets the count. */
  readonly stableMs?: number;
}

/** Restart delays per worker slot. */
export class RestartBackoff {
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #stableMs: number;
  readonly #crashes = new Map<number, number>();

  constructor(o: RestartBackoffOptions = {}) {
    this.#baseMs = o.baseMs ?? 250;
    this.#maxMs = o.maxMs ?? 30_000;
    this.#stableMs = o.stableMs ?? 30_000;
  }

  /** The worker of `slot` exited after living `livedMs`: how long to wait before starting the next; and how many died young in a row. */
  next(slot: number, livedMs: number): { delayMs: number; inARow: number } {
    const inARow = livedMs >= this.#stableMs ? 1 : (this.#crashes.get(slot) ?? 0) + 1;
    this.#crashes.set(slot, inARow);
    const delayMs = inARow === 1 ? 0 : Math.min(this.#maxMs, this.#baseMs * 2 ** (inARow - 2));
    return { delayMs, inARow };
  }
}
