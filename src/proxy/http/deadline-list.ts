/**
 * Coarse-grained timeouts for per-request waits that almost never fire (stream idle timeouts,
 * route timeouts): instead of a node `Timeout` per request, the waiting objects themselves are
 * the links of one list per duration, ordered by when their wait (re)started, with one node timer
 * per list armed for the oldest entry. Starting, restarting (activity on an idle timeout) and
 * ending a wait are a few pointer writes and allocate nothing; the timer is re-armed only when
 * the oldest entry's deadline passes (an entry that ended long before leaves it armed, and its
 * firing re-arms for the new oldest). An entry fires no earlier than its own deadline, as
 * `setTimeout` would; lists live as long as the process (one per distinct duration).
 */

/** An object that waits in a DeadlineList (one list at a time). */
export interface DeadlineEntry {
  /** Internal links of the list the entry is in; start them undefined. */
  deadlinePrev: DeadlineEntry | undefined;
  deadlineNext: DeadlineEntry | undefined;
  deadlineList: DeadlineList | undefined;
  /** `performance.now()` when the wait (re)started. */
  deadlineFrom: number;
  /** The wait's duration passed without a restart. */
  onDeadline(): void;
}

/** The entries waiting for one duration, oldest first, and the timer for the oldest. */
export class DeadlineList {
  readonly ms: number;
  private head: DeadlineEntry | undefined;
  private tail: DeadlineEntry | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(ms: number) {
    this.ms = ms;
  }

  /** Start (or restart) `e`'s wait now: it becomes the newest entry. */
  start(e: DeadlineEntry): void {
    if (e.deadlineList !== undefined) e.deadlineList.unlink(e);
    e.deadlineFrom = performance.now();
    e.deadlineList = this;
    e.deadlinePrev = this.tail;
    e.deadlineNext = undefined;
    if (this.tail !== undefined) this.tail.deadlineNext = e;
    else this.head = e;
    this.tail = e;
    if (this.timer === undefined) this.arm(this.ms);
  }

  /** End `e`'s wait (no-op when it is not waiting here). */
  stop(e: DeadlineEntry): void {
    if (e.deadlineList === this) this.unlink(e);
  }

  private unlink(e: DeadlineEntry): void {
    const { deadlinePrev: prev, deadlineNext: next } = e;
    if (prev !== undefined) prev.deadlineNext = next;
    else this.head = next;
    if (next !== undefined) next.deadlinePrev = prev;
    else this.tail = prev;
    e.deadlinePrev = e.deadlineNext = e.deadlineList = undefined;
  }

  private arm(delay: number): void {
    this.timer = setTimeout(sweep, delay, this);
    this.timer.unref();
  }

  /** The timer fired: end and fire every entry whose wait is over, re-arm for the oldest left. */
  sweep(): void {
    this.timer = undefined;
    const now = performance.now();
    // Entries fired here may start or stop others (a reply, a reset): take one at a time from the head.
    for (let e = this.head; e !== undefined; e = this.head) {
      const wait = e.deadlineFrom + this.ms - now;
      if (wait > 0) {
        // (An entry fired below may have started a wait, and armed a later timer.)
        if (this.timer !== undefined) clearTimeout(this.timer);
        this.arm(Math.ceil(wait));
        return;
      }
      this.unlink(e);
      try {
        e.onDeadline();
      } catch {
        // A failing entry must not keep the others waiting; its owner contains its own errors.
      }
    }
  }
}

function sweep(list: DeadlineList): void {
  list.sweep();
}

const lists = new Map<number, DeadlineList>();

/** The shared list for waits of `ms` milliseconds (ms > 0). */
export function deadlineList(ms: number): DeadlineList {
  let l = lists.get(ms);
  if (l === undefined) lists.set(ms, (l = new DeadlineList(ms)));
  return l;
}
