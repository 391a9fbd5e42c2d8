/**
 * A log that cannot be flooded from outside: the first event of each kind is written at once,
 * then at most one line per kind per interval, carrying how many were left out since. What
 * traffic can trigger (protocol errors, contained bugs on a connection's path) is logged through
 * it, so a client sending a million bad requests costs a few log lines, not a million.
 */

/** The proxy's log function (pino underneath in the CLI). */
export type ProxyLog = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

/** Rate-limited logging per event kind. */
export class RateLimitedLog {
  readonly #log: ProxyLog | undefined;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #kinds = new Map<string, { last: number; suppressed: number }>();

  constructor(log: ProxyLog | undefined, intervalMs = 60_000, now: () => number = Date.now) {
    this.#log = log;
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  /** Logs `msg` unless an event of `kind` was logged less than an interval ago (then it is counted). */
  event(kind: string, level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
    if (this.#log === undefined) return;
    const now = this.#now();
    const k = this.#kinds.get(kind);
    if (k !== undefined && now - k.last < this.#intervalMs) {
      k.suppressed++;
      return;
    }
    const suppressed = k?.suppressed ?? 0;
    // Kinds are a small fixed vocabulary (error codes); the cap only guards against misuse.
    if (k === undefined && this.#kinds.size >= 1000) this.#kinds.clear();
    this.#kinds.set(kind, { last: now, suppressed: 0 });
    this.#log(level, msg, suppressed > 0 ? { ...fields, kind, suppressedSinceLast: suppressed } : { ...fields, kind });
  }
}
