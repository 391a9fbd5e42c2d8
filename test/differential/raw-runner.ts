/**
 * Runs raw cases against Envoy and `trellis proxy` side by side and compares outcome classes:
 * what the client saw (statuses or stream resets, how the connection ended) and what reached each
 * proxy's own recording backends (method, target, headers, body). Cases run in small concurrent
 * batches; when `trellis proxy` dies, it is restarted and the batch is replayed one case at a time
 * to find the case that killed it (its outcome is then `crashed`). A case whose outcomes differ is
 * replayed alone once with a longer quiet time, and counts as a mismatch only if it differs again
 * (a loaded machine can make a slow answer look like no answer).
 */
import type { Rig } from './harness.ts';
import type { Reached, Recorder } from './recorder.ts';

/** Both proxies' view of one case. */
export interface Side<O> {
  outcome: O | 'crashed';
  reached: Reached[];
}

/** The result of one case on both proxies. */
export interface CaseResult<C, O> {
  readonly c: C;
  readonly envoy: Side<O>;
  readonly trellis: Side<O>;
  /** Field-by-field differences (empty when the outcome classes are equal). */
  readonly diff: string[];
  /** The first run differed but the replay did not. */
  readonly flaky: boolean;
}

/** How to play one kind of case. */
export interface CaseKind<C extends { id: string }, O> {
  /** Plays `c` against the proxy listening on `port`. */
  play(port: number, c: C, quietMs: number): Promise<O>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Differences between two values, as `path: envoy=... trellis=...` lines. */
export function diffValues(envoy: unknown, trellis: unknown): string[] {
  const out: string[] = [];
  const walk = (path: string, a: unknown, b: unknown): void => {
    if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
      for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) walk(path === '' ? k : `${path}.${k}`, (a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]);
      return;
    }
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`${path}: envoy=${JSON.stringify(a)} trellis=${JSON.stringify(b)}`);
  };
  walk('', envoy, trellis);
  return out;
}

/** An outcome without its `detail` (error codes and the like: reported, not compared). */
function comparable(o: unknown): unknown {
  if (o === null || typeof o !== 'object' || !('detail' in o)) return o;
  const { detail: _detail, ...rest } = o as Record<string, unknown>;
  return rest;
}

/**
 * Header fields as a comparable map: the order of different field names carries no meaning, and
 * several lines of one field equal one line of their values joined with commas (RFC 9110 section
 * 5.3; set-cookie aside, which requests do not carry), so each name maps to its comma-separated
 * elements (for cookie, its crumbs), trimmed, in order.
 */
function fieldView(headers: readonly [string, string][]): Record<string, string> {
  const byName = new Map<string, string[]>();
  for (const [k, v] of headers) {
    const list = byName.get(k) ?? [];
    // Cookie crumbs: node joins several Cookie lines with '; ' (as RFC 9113 8.2.3 does), Envoy forwards the lines.
    list.push(...v.split(k === 'cookie' ? /[;,]/ : ',').map((x) => x.trim()));
    byName.set(k, list);
  }
  // Empty list elements carry nothing (RFC 9110 section 5.6.1): a field of only empty elements is empty.
  return Object.fromEntries([...byName].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, v.filter((x) => x !== '').join(',')]));
}

/** What reached the backends, in a comparable form (one entry per request id). */
function reachedView(list: Reached[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const r of list) out[r.id] = { cluster: r.cluster, method: r.method, url: r.url, version: r.version, headers: fieldView(r.headers), body: r.body };
  return out;
}

/** Runs cases against both proxies. */
export class RawRunner<C extends { id: string }, O> {
  restarts = 0;
  readonly rig: Rig;
  readonly recorders: { envoy: Recorder; trellis: Recorder };
  readonly kind: CaseKind<C, O>;
  readonly o: { quietMs: number; batch: number; settleMs: number };
  constructor(rig: Rig, recorders: { envoy: Recorder; trellis: Recorder }, kind: CaseKind<C, O>, o: { quietMs: number; batch: number; settleMs: number }) {
    this.rig = rig;
    this.recorders = recorders;
    this.kind = kind;
    this.o = o;
  }

  async #trellisAlive(): Promise<boolean> {
    // A process that just took an uncaught exception needs a moment to be reported as exited.
    await sleep(5);
    return this.rig.trellis.child.exitCode === null && this.rig.trellis.child.signalCode === null;
  }

  async #once(c: C, quietMs: number): Promise<{ envoy: Side<O>; trellis: Side<O> }> {
    const [e, t] = await Promise.all([
      this.kind.play(this.rig.envoyPort, c, quietMs),
      this.kind.play(this.rig.trellisPort, c, quietMs),
    ]);
    await sleep(this.o.settleMs);
    return { envoy: { outcome: e, reached: this.recorders.envoy.take(c.id) }, trellis: { outcome: t, reached: this.recorders.trellis.take(c.id) } };
  }

  #compare(r: { envoy: Side<O>; trellis: Side<O> }): string[] {
    return diffValues(
      { outcome: comparable(r.envoy.outcome), reached: reachedView(r.envoy.reached) },
      { outcome: comparable(r.trellis.outcome), reached: reachedView(r.trellis.reached) },
    );
  }

  /** One case alone, restarting trellis if it died; its outcome is then `crashed`. */
  async #alone(c: C, quietMs: number): Promise<{ envoy: Side<O>; trellis: Side<O> }> {
    const r = await this.#once(c, quietMs);
    if (!(await this.#trellisAlive())) {
      r.trellis.outcome = 'crashed';
      this.restarts++;
      await this.rig.restartTrellis();
    }
    return r;
  }

  /**
   * Runs every case; `onResult` sees each result as it is decided. A difference that `explained`
   * accepts (a known class) is not replayed: the replay only guards against a slow answer
   * producing an unexplained mismatch.
   */
  async run(cases: readonly C[], onResult: (r: CaseResult<C, O>) => void, explained: (c: C, r: { envoy: Side<O>; trellis: Side<O> }, diff: string[]) => boolean = () => false): Promise<void> {
    for (let i = 0; i < cases.length; i += this.o.batch) {
      const batch = cases.slice(i, i + this.o.batch);
      let results = await Promise.all(batch.map((c) => this.#once(c, this.o.quietMs)));
      if (!(await this.#trellisAlive())) {
        // Someone in this batch killed it: replay one at a time to find out who.
        this.restarts++;
        await this.rig.restartTrellis();
        results = [];
        for (const c of batch) results.push(await this.#alone(c, this.o.quietMs));
      }
      // Replay the cases that differed, with a longer quiet time, before believing the difference.
      const replayQuiet = Math.max(this.o.quietMs * 3, 2000);
      const differing = batch.map((_, k) => k).filter((k) => {
        if (results[k].trellis.outcome === 'crashed') return false;
        const diff = this.#compare(results[k]);
        return diff.length > 0 && !explained(batch[k], results[k], diff);
      });
      const replays = new Map<number, { envoy: Side<O>; trellis: Side<O> }>();
      if (differing.length > 0) {
        const again = await Promise.all(differing.map((k) => this.#once(batch[k], replayQuiet)));
        if (!(await this.#trellisAlive())) {
          this.restarts++;
          await this.rig.restartTrellis();
          for (const k of differing) replays.set(k, await this.#alone(batch[k], replayQuiet));
        } else {
          differing.forEach((k, i) => replays.set(k, again[i]));
        }
      }
      for (let k = 0; k < batch.length; k++) {
        const r = replays.get(k) ?? results[k];
        const diff = this.#compare(r);
        onResult({ c: batch[k], envoy: r.envoy, trellis: r.trellis, diff, flaky: replays.has(k) && diff.length === 0 });
      }
    }
  }
}
