/**
 * A reflector keeps one kind's objects current, as client-go's does: list (in pages), then watch
 * from the list's resourceVersion with bookmarks, following each event's resourceVersion. A watch
 * that ends (the server's timeout, a restarted API server, a dropped connection) resumes from the
 * last resourceVersion; `410 Gone` (that version left the server's window) relists, and the sink
 * gets the new full state to diff, so nothing is lost or replayed twice. Errors back off
 * exponentially with jitter and never clear what the reflector holds: a transient failure leaves
 * the last-known-good objects in force. A CRD that is not installed (404) reads as "no objects"
 * and is retried slowly, so installing it later is picked up.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { apiStatus } from './kubernetes-rest.ts';
import type { KubeObject, KubeRest, WatchEvent } from './kubernetes-rest.ts';
import { collectionPath } from './kubernetes-kinds.ts';
import type { KubeKind } from './kubernetes-kinds.ts';
import { TrellisError } from '../../errors.ts';

/** Where a reflector delivers what it sees. */
export interface ReflectorSink {
  /** The complete current set, after a (re)list; the sink diffs it against what it held. */
  replace(kind: KubeKind, objects: readonly KubeObject[]): void;
  /** One change from the watch. */
  event(kind: KubeKind, type: 'ADDED' | 'MODIFIED' | 'DELETED', object: KubeObject): void;
  /** A failed list or watch (already being retried). */
  error(kind: KubeKind, err: unknown): void;
}

/** Reflector timing; every field has a default. */
export interface ReflectorOptions {
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** First retry delay after an error (ms). Default 200. */
  readonly backoffInitialMs?: number;
  /** Longest retry delay (ms). Default 30000. */
  readonly backoffMaxMs?: number;
  /** Retry period for a kind whose CRD is not installed (ms). Default 10000. */
  readonly absentRetryMs?: number;
  /** Server-side watch timeout range in seconds (client-go uses 5-10 minutes). */
  readonly watchTimeoutSeconds?: readonly [number, number];
}

/** How a reflector stands. */
export type ReflectorState = 'starting' | 'synced' | 'absent' | 'failing';

export class Reflector {
  readonly kind: KubeKind;
  readonly #rest: KubeRest;
  readonly #sink: ReflectorSink;
  readonly #opts: Required<Omit<ReflectorOptions, 'labelSelector' | 'fieldSelector'>> & Pick<ReflectorOptions, 'labelSelector' | 'fieldSelector'>;
  readonly #abort = new AbortController();
  #stopWatch: (() => void) | undefined;
  #resourceVersion: string | undefined;
  #state: ReflectorState = 'starting';
  #failures = 0;
  #firstSync: () => void = () => {};
  /** Resolves once the first list completed (or the kind was found absent, or the first attempt failed with 401/403). */
  readonly firstSync: Promise<void>;
  /** Lists done (the first one and every relist): a test reads it to see a 410 relist happen. */
  lists = 0;

  constructor(rest: KubeRest, kind: KubeKind, sink: ReflectorSink, options: ReflectorOptions = {}) {
    this.#rest = rest;
    this.kind = kind;
    this.#sink = sink;
    this.#opts = {
      backoffInitialMs: options.backoffInitialMs ?? 200,
      backoffMaxMs: options.backoffMaxMs ?? 30_000,
      absentRetryMs: options.absentRetryMs ?? 10_000,
      watchTimeoutSeconds: options.watchTimeoutSeconds ?? [300, 600],
      labelSelector: options.labelSelector,
      fieldSelector: options.fieldSelector,
    };
    this.firstSync = new Promise((resolve) => (this.#firstSync = resolve));
  }

  get state(): ReflectorState {
    return this.#state;
  }

  /** Starts the list/watch loop (runs until stop()). */
  start(): void {
    void this.#loop();
  }

  stop(): void {
    this.#abort.abort();
    this.#stopWatch?.();
  }

  get #stopped(): boolean {
    return this.#abort.signal.aborted;
  }

  async #loop(): Promise<void> {
    const path = collectionPath(this.kind);
    const selectors = { labelSelector: this.#opts.labelSelector, fieldSelector: this.#opts.fieldSelector };
    while (!this.#stopped) {
      try {
        if (this.#resourceVersion === undefined) {
          const list = await this.#rest.listAll(path, selectors);
          if (this.#stopped) return;
          this.lists++;
          this.#resourceVersion = list.metadata?.resourceVersion ?? '';
          this.#sink.replace(this.kind, list.items);
          this.#state = 'synced';
          this.#failures = 0;
          this.#firstSync();
        }
        const began = Date.now();
        await this.#watchOnce(path, selectors);
        this.#failures = 0;
        // A server that keeps closing streams at once must not turn this loop into a busy one.
        if (Date.now() - began < 1000) await this.#sleep(this.#opts.backoffInitialMs);
      } catch (err) {
        if (this.#stopped) return;
        const status = apiStatus(err);
        if (status === 410) {
          this.#resourceVersion = undefined; // relist now
          continue;
        }
        if (status === 404 && this.kind.crd) {
          // The CRD is not installed (or was removed): no objects of this kind.
          this.#resourceVersion = undefined;
          if (this.#state !== 'absent') this.#sink.replace(this.kind, []);
          this.#state = 'absent';
          this.#firstSync();
          await this.#sleep(this.#opts.absentRetryMs);
          continue;
        }
        this.#state = 'failing';
        this.#failures++;
        this.#sink.error(this.kind, err);
        // Without permission there is nothing to wait for at startup: report it and keep trying.
        if (status === 401 || status === 403) this.#firstSync();
        await this.#sleep(this.#backoff());
      }
    }
  }

  #backoff(): number {
    const exp = Math.min(this.#opts.backoffMaxMs, this.#opts.backoffInitialMs * 2 ** Math.min(this.#failures - 1, 20));
    return exp / 2 + Math.random() * (exp / 2);
  }

  async #sleep(ms: number): Promise<void> {
    try {
      await sleep(ms, undefined, { signal: this.#abort.signal });
    } catch {
      // stopped
    }
  }

  /** One watch stream; resolves when it ends cleanly, rejects with its error (410 included). */
  #watchOnce(path: string, selectors: Record<string, string | undefined>): Promise<void> {
    const [lo, hi] = this.#opts.watchTimeoutSeconds;
    const timeoutSeconds = Math.round(lo + Math.random() * (hi - lo));
    return new Promise<void>((resolve, reject) => {
      let failed: unknown;
      const onEvent = (e: WatchEvent): void => {
        if (e.type === 'ERROR') {
          const code = typeof e.object.code === 'number' ? e.object.code : 500;
          failed = Object.assign(new TrellisError('KUBE_WATCH', `watch ${path}: ${code} ${e.object.reason ?? ''} ${e.object.message ?? ''}`.trim()), { statusCode: code });
          this.#stopWatch?.();
          reject(failed);
          return;
        }
        const rv = e.object.metadata?.resourceVersion;
        if (e.type !== 'BOOKMARK') this.#sink.event(this.kind, e.type, e.object);
        if (rv !== undefined && rv !== '') this.#resourceVersion = rv;
      };
      this.#stopWatch = this.#rest.watch(path, { ...selectors, resourceVersion: this.#resourceVersion, timeoutSeconds }, onEvent, (err) => {
        if (failed !== undefined) return;
        if (err === null || err === undefined) resolve();
        else reject(err);
      });
    });
  }
}
