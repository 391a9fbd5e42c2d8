/**
 * One reconcile round at a time, as a controller's work queue runs one key: asking for a round
 * while one runs makes exactly one more run after it (however often it was asked), and every
 * caller gets the promise of the work that covers its request. `pause` runs between repeated
 * rounds and may stop the repetition (a controller that lost its lease).
 */
export class SerialRounds {
  readonly #round: () => Promise<void>;
  readonly #pause: () => Promise<boolean>;
  #running: Promise<void> | undefined;
  #again = false;

  /** `round` must not reject (log inside it); `pause` resolves false to stop repeating. */
  constructor(round: () => Promise<void>, pause: () => Promise<boolean> = async () => true) {
    this.#round = round;
    this.#pause = pause;
  }

  /** Runs a round now, or one more after the current one. */
  run(): Promise<void> {
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.#round();
      } while (this.#again && (await this.#pause()));
    })().finally(() => (this.#running = undefined));
    return this.#running;
  }

  /** From inside a round: run once more after it (a write to retry). */
  repeat(): void {
    this.#again = true;
  }

  /** The round in progress, if any (to wait for on close). */
  get current(): Promise<void> | undefined {
    return this.#running;
  }
}
