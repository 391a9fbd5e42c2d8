/**
 * The cache between translation and the ADS server, after go-control-plane's `SnapshotCache`:
 * `setSnapshot` is its only write, and every write tells the server (through `watch`) which
 * proxies it can affect, so the server pushes to those. The server only reads: `resources(proxy)`
 * translates the current snapshot for that proxy on first ask and keeps the result until the next
 * snapshot. Proxies alike in everything translation reads share one translation (`key`), so a push
 * to 1,000 sidecars of one workload costs one translate, not 1,000 (and, through the encoder's
 * per-object cache, one encoding).
 */
import { TrellisError } from '../../errors.ts';
import type { XdsResourceSet } from '../../xds/types.ts';
import type { ProxyNode } from '../proxy-node.ts';

/** What a write changed: which proxies it can affect (every one when absent) and why. */
export interface CacheChange {
  readonly affects?: (proxy: ProxyNode) => boolean;
  /** For logs and metrics. */
  readonly reason: string;
  /** Istio's push trigger type for pilot_push_triggers (config, endpoint, secret; default config). */
  readonly type?: string;
}

/** What the ADS server reads. */
export interface ResourceCache {
  /** Every resource `proxy` should have now. */
  resources(proxy: ProxyNode): XdsResourceSet | Promise<XdsResourceSet>;
  /** Calls `listener` after every write; returns the unsubscribe function. */
  watch(listener: (change: CacheChange) => void): () => void;
}

/** How a SnapshotCache turns its snapshot into one proxy's resources. */
export interface SnapshotCacheOptions<S> {
  /** A pure function of its arguments (src/control/translate): its output is cached. */
  translate(snapshot: S, proxy: ProxyNode): XdsResourceSet;
  /** The part of a proxy `translate` reads; proxies with one key share a translation. Default: the node id. */
  key?(proxy: ProxyNode): string;
  /** Most translations kept (default 10,000; the oldest goes first). */
  limit?: number;
}

/** A cache over one snapshot at a time. */
export class SnapshotCache<S> implements ResourceCache {
  readonly #translate: (snapshot: S, proxy: ProxyNode) => XdsResourceSet;
  readonly #key: (proxy: ProxyNode) => string;
  readonly #limit: number;
  readonly #listeners = new Set<(change: CacheChange) => void>();
  readonly #translations = new Map<string, { snapshot: S; set: XdsResourceSet }>();
  #snapshot: S | undefined;

  constructor(opts: SnapshotCacheOptions<S>) {
    this.#translate = opts.translate;
    this.#key = opts.key ?? ((p) => p.id);
    this.#limit = opts.limit ?? 10_000;
  }

  /** The one write: serve `snapshot` from now on, and tell the server what it can affect. */
  setSnapshot(snapshot: S, change: CacheChange = { reason: 'new snapshot' }): void {
    this.#snapshot = snapshot;
    for (const l of [...this.#listeners]) l(change);
  }

  /** The snapshot served now (undefined before the first `setSnapshot`). */
  snapshot(): S | undefined {
    return this.#snapshot;
  }

  resources(proxy: ProxyNode): XdsResourceSet {
    const snapshot = this.#snapshot;
    if (snapshot === undefined) throw new TrellisError('XDS_NO_SNAPSHOT', `no snapshot to translate for proxy ${proxy.id} yet`, { context: { proxy: proxy.id } });
    const key = this.#key(proxy);
    const hit = this.#translations.get(key);
    if (hit !== undefined && hit.snapshot === snapshot) return hit.set;
    const set = this.#translate(snapshot, proxy);
    this.#translations.delete(key);
    this.#translations.set(key, { snapshot, set });
    if (this.#translations.size > this.#limit) this.#translations.delete(this.#translations.keys().next().value as string);
    return set;
  }

  watch(listener: (change: CacheChange) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }
}
