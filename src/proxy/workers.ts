/**
 * `--concurrency N`: N worker processes share the proxy's listeners, the way Envoy runs N
 * worker threads. The primary process holds the one xDS stream and the admin ports; its
 * ConfigApplier sends every accepted-for-validation update to all workers over IPC and ACKs only
 * when every worker applied it (any worker's error is the NACK message, and workers that did
 * apply keep serving; the next update converges them). Workers bind listeners with SO_REUSEPORT
 * so the kernel spreads connections without the primary touching them. Stats and /clusters are
 * summed over workers on request. Circuit-breaker counts and outlier detection's consecutive
 * failure counts live in memory shared by all workers (breaker-counts.ts, outlier-counts.ts: the
 * primary names a slot per cluster in every CDS update and zeroes a dead worker's share), so
 * `maxRequests: 10` means 10 for the proxy, not 10 per worker; an ejection one worker enforces is
 * relayed to the others.
 */
import cluster, { type Worker } from 'node:cluster';
import { TypeUrl, type XdsJson, type XdsTypeUrl } from '../xds/types.ts';
import { TrellisError } from '../errors.ts';
import type { ConfigApplier } from './xds-client/ads-client.ts';
import type { DataPlaneOptions } from './data-plane.ts';
import type { Stat } from './admin/stats-format.ts';
import type { ClusterStatus } from './admin/admin-server.ts';
import { SharedCountTable, SlotAssigner, sharedMemory } from './upstream/breaker-counts.ts';
import { SharedHostCountTable, type HostCountsProvider } from './upstream/outlier-counts.ts';
import type { OutlierReason } from './upstream/outlier-detector.ts';
import { mergeFamilies, type ExportedFamily } from '../telemetry/metric-store.ts';
import { RestartBackoff } from './restart-backoff.ts';

/** Where a worker finds the shared breaker counts: the inherited stdio slot of the memfd. */
const SharedFdInWorker = 4;

type ClusterView = ClusterStatus[];

type ToWorker =
  | { kind: 'apply'; seq: number; typeUrl: XdsTypeUrl; resources: [string, XdsJson][]; slots?: [string, number][] }
  | { kind: 'stats'; seq: number }
  | { kind: 'istio'; seq: number }
  | { kind: 'clusters'; seq: number }
  | { kind: 'shutdown'; seq: number; timeoutMs: number }
  | { kind: 'eject'; seq: number; cluster: string; host: string; reason: OutlierReason };

type FromWorker =
  | { kind: 'done'; seq: number; error?: string }
  | { kind: 'stats'; seq: number; stats: Stat[] }
  | { kind: 'istio'; seq: number; families: ExportedFamily[] }
  | { kind: 'clusters'; seq: number; clusters: ClusterView }
  | { kind: 'up' }
  | { kind: 'eject'; cluster: string; host: string; reason: OutlierReason }
  /** The worker is about to die of an uncaught error: what it was, for the primary's log. */
  | { kind: 'fatal'; error: string };

/** The primary side: forks workers and fans config out to them. */
export class WorkerPool implements ConfigApplier {
  readonly #workers: Worker[] = [];
  #seq = 0;
  readonly #pending = new Map<string, { resolve: (m: FromWorker) => void; reject: (e: Error) => void }>();
  #closing = false;
  /** The last state applied per type, replayed to a worker that restarts. */
  readonly #applied = new Map<XdsTypeUrl, [string, XdsJson][]>();

  /** Shared breaker and outlier counts (undefined when the addon is unavailable: per-worker counts, logged). */
  #shared: { table: SharedCountTable; hosts: SharedHostCountTable; slots: SlotAssigner; bytes: number } | undefined;
  #lastSlots: [string, number][] = [];
  readonly #backoff = new RestartBackoff();
  readonly #restartTimers = new Set<NodeJS.Timeout>();

  static async start(count: number, log?: (level: 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void): Promise<WorkerPool> {
    const pool = new WorkerPool();
    pool.#shareCounts(count, log);
    await Promise.all(Array.from({ length: count }, (_, column) => pool.#fork(column, log)));
    return pool;
  }

  #shareCounts(columns: number, log?: (level: 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void): void {
    const mem = sharedMemory();
    if (typeof mem === 'string') {
      log?.('warn', `circuit breakers and outlier detection count per worker: ${mem}`);
      return;
    }
    try {
      const bytes = sharedBytes(columns);
      const fd = mem.createSharedFd(bytes);
      const { table, hosts } = sharedTables(mem.mapShared(fd, bytes), columns);
      this.#shared = { table, hosts, slots: new SlotAssigner(table), bytes };
      // Workers inherit the memfd as stdio slot 4 (the cluster module needs 'ipc' in the list).
      cluster.setupPrimary({ stdio: ['inherit', 'inherit', 'inherit', 'ipc', fd] });
    } catch (err) {
      log?.('warn', `circuit breakers and outlier detection count per worker: ${(err as Error).message}`);
    }
  }

  #fork(column: number, log?: (level: 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void): Promise<void> {
    const shared = this.#shared;
    const w = cluster.fork({
      TRELLIS_PROXY_WORKER: '1',
      TRELLIS_WORKER_COUNTS: shared ? `${SharedFdInWorker}:${shared.bytes}:${shared.table.columns}:${column}` : '',
    });
    this.#workers.push(w);
    const startedAt = Date.now();
    let fatal: string | undefined;
    w.on('message', (m: FromWorker) => {
      if (m.kind === 'up') return;
      if (m.kind === 'fatal') {
        fatal = m.error;
        return;
      }
      if (m.kind === 'eject') {
        // One worker's outlier detection ejected a host: every other worker avoids it too.
        for (const other of this.#workers) if (other !== w && other.isConnected()) other.send({ ...m, seq: 0 }, undefined, undefined, () => {});
        return;
      }
      const p = this.#pending.get(`${w.id}:${m.seq}`);
      if (p) {
        this.#pending.delete(`${w.id}:${m.seq}`);
        p.resolve(m);
      }
    });
    w.on('exit', (code, signal) => {
      const i = this.#workers.indexOf(w);
      if (i >= 0) this.#workers.splice(i, 1);
      for (const [key, p] of this.#pending) {
        if (key.startsWith(`${w.id}:`)) {
          this.#pending.delete(key);
          p.reject(new TrellisError('PROXY_WORKER_EXIT', `worker ${w.id} exited (${signal ?? code})`));
        }
      }
      // Its requests died with it: release what it held before a replacement takes its column.
      shared?.table.zeroColumn(column, shared.slots.inUse());
      shared?.hosts.zeroColumn(column);
      if (!this.#closing) {
        const { delayMs, inARow } = this.#backoff.next(column, Date.now() - startedAt);
        const why = fatal?.split('\n')[0] ?? (signal ? `killed by ${signal}` : `exit code ${code}`);
        log?.('error', `proxy worker died (${why}); starting a new one${delayMs > 0 ? ` in ${delayMs} ms (${inARow} died young in a row)` : ''}`,
          { worker: w.id, code, signal, error: fatal, livedMs: Date.now() - startedAt, restartInMs: delayMs });
        const timer = setTimeout(() => {
          this.#restartTimers.delete(timer);
          if (this.#closing) return;
          this.#fork(column, log).then(() => this.#replay(this.#workers[this.#workers.length - 1]), (err: Error) => log?.('error', `proxy worker did not start: ${err.message}`, { column }));
        }, delayMs);
        this.#restartTimers.add(timer);
      }
    });
    return new Promise((resolve, reject) => {
      w.once('message', (m: FromWorker) => (m.kind === 'up' ? resolve()
        : reject(new TrellisError('PROXY_WORKER_EXIT', m.kind === 'fatal' ? `worker failed to start: ${m.error}` : `unexpected first message '${m.kind}'`))));
      w.once('exit', (code) => reject(new TrellisError('PROXY_WORKER_EXIT', `worker exited during start (${code})`)));
    });
  }

  async #replay(w: Worker | undefined): Promise<void> {
    if (!w) return;
    for (const [typeUrl, resources] of this.#applied) await this.#ask(w, { kind: 'apply', seq: 0, typeUrl, resources, ...(typeUrl === TypeUrl.Cluster ? { slots: this.#lastSlots } : {}) });
  }

  #ask(w: Worker, msg: ToWorker): Promise<FromWorker> {
    const seq = ++this.#seq;
    return new Promise((resolve, reject) => {
      this.#pending.set(`${w.id}:${seq}`, { resolve, reject });
      if (!w.isConnected()) {
        this.#pending.delete(`${w.id}:${seq}`);
        reject(new TrellisError('PROXY_WORKER_EXIT', `worker ${w.id} is gone`));
        return;
      }
      // With a callback, a send to a worker that just died is an error here, not an uncaught EPIPE.
      w.send({ ...msg, seq }, undefined, undefined, (err) => {
        if (err && this.#pending.delete(`${w.id}:${seq}`)) reject(new TrellisError('PROXY_WORKER_EXIT', `worker ${w.id}: ${err.message}`, { cause: err }));
      });
    });
  }

  async apply(typeUrl: XdsTypeUrl, resources: ReadonlyMap<string, XdsJson>): Promise<void> {
    const entries = [...resources];
    // Every cluster gets its slot before any worker builds it, the same slot in every worker.
    const slots = typeUrl === TypeUrl.Cluster && this.#shared ? (this.#lastSlots = this.#shared.slots.assign(resources.keys())) : undefined;
    const replies = await Promise.all(this.#workers.map((w) => this.#ask(w, { kind: 'apply', seq: 0, typeUrl, resources: entries, ...(slots ? { slots } : {}) })));
    const errors = [...new Set(replies.map((r) => (r.kind === 'done' ? r.error : undefined)).filter((e): e is string => !!e))];
    if (errors.length > 0) throw new TrellisError('XDS_INVALID', errors.join('; '));
    this.#applied.set(typeUrl, entries);
  }

  /** Stats summed over workers by name. */
  async stats(): Promise<Stat[]> {
    const all = await Promise.all(this.#workers.map((w) => this.#ask(w, { kind: 'stats', seq: 0 })));
    const sum = new Map<string, Stat>();
    for (const r of all) {
      if (r.kind !== 'stats') continue;
      for (const s of r.stats) {
        const prev = sum.get(s.name);
        sum.set(s.name, prev ? { ...prev, value: prev.value + s.value } : s);
      }
    }
    return [...sum.values()];
  }

  /** Istio's metric families summed over workers series by series. */
  async istioMetrics(): Promise<ExportedFamily[]> {
    const all = await Promise.all(this.#workers.map((w) => this.#ask(w, { kind: 'istio', seq: 0 })));
    return mergeFamilies(all.flatMap((r) => (r.kind === 'istio' ? [r.families] : [])));
  }

  /** /clusters merged over workers: counters summed per host. */
  async clusters(): Promise<ClusterView> {
    const all = await Promise.all(this.#workers.map((w) => this.#ask(w, { kind: 'clusters', seq: 0 })));
    const byName = new Map<string, ClusterStatus>();
    for (const r of all) {
      if (r.kind !== 'clusters') continue;
      for (const c of r.clusters) {
        const have = byName.get(c.name);
        if (!have) {
          byName.set(c.name, structuredClone(c));
          continue;
        }
        for (const h of c.hosts) {
          const mine = have.hosts.find((x) => x.address === h.address);
          if (!mine) {
            have.hosts.push(structuredClone(h));
            continue;
          }
          mine.activeRequests += h.activeRequests;
          mine.healthy &&= h.healthy;
          mine.flags = [...new Set([...mine.flags, ...h.flags])];
          for (const [k, v] of Object.entries(h.stats)) mine.stats[k] = (mine.stats[k] ?? 0) + v;
        }
      }
    }
    return [...byName.values()];
  }

  async shutdown(timeoutMs: number): Promise<void> {
    this.#closing = true;
    for (const t of this.#restartTimers) clearTimeout(t);
    await Promise.all(this.#workers.map((w) => this.#ask(w, { kind: 'shutdown', seq: 0, timeoutMs }).catch(() => undefined)));
    for (const w of this.#workers) w.kill();
  }
}

/** The worker side: one DataPlane driven by the primary's messages. Resolves when told to shut down. */
export async function runWorker(opts: DataPlaneOptions): Promise<void> {
  // The primary may be gone (crash, shutdown race): a failed reply must not crash the worker.
  const reply = (m: FromWorker) => {
    if (process.connected) process.send?.(m, undefined, undefined, () => {});
  };
  // Containment keeps traffic from throwing past a connection; should something still escape,
  // the primary learns what before the worker dies (then restarts it, with backoff).
  process.on('uncaughtException', (err) => {
    opts.log?.('error', 'proxy worker: uncaught error, exiting', { error: err?.stack ?? String(err) });
    const exit = () => process.exit(70);
    if (process.connected) process.send?.({ kind: 'fatal', error: String(err?.stack ?? err).slice(0, 4000) } satisfies FromWorker, undefined, undefined, exit);
    else exit();
    setTimeout(exit, 1000).unref();
  });
  // Loaded here, not at the top: the primary imports this module for WorkerPool and holds no data
  // plane (the primary sends nothing before the worker's 'up').
  const { DataPlane } = await import('./data-plane.ts');
  const counts = sharedCounts(process.env.TRELLIS_WORKER_COUNTS, opts.log);
  const dp = new DataPlane({
    ...opts,
    reusePort: true,
    ...(counts ? { breakerCounts: counts.forCluster, outlierCounts: counts.hostsOf } : {}),
    onOutlierEjection: (cluster, host, reason) => reply({ kind: 'eject', cluster, host, reason }),
  });
  return new Promise((resolve) => {
    process.on('message', (m: ToWorker) => {
      switch (m.kind) {
        case 'apply':
          if (m.slots) counts?.setSlots(m.slots);
          void dp.apply(m.typeUrl, new Map(m.resources)).then(
            () => reply({ kind: 'done', seq: m.seq }),
            (err: Error) => reply({ kind: 'done', seq: m.seq, error: err.message }),
          );
          return;
        case 'stats':
          reply({ kind: 'stats', seq: m.seq, stats: dp.stats() });
          return;
        case 'clusters':
          reply({ kind: 'clusters', seq: m.seq, clusters: dp.clusterView() });
          return;
        case 'istio':
          reply({ kind: 'istio', seq: m.seq, families: dp.istioMetrics() });
          return;
        case 'eject':
          dp.clusters.ejectFromPeer(m.cluster, m.host, m.reason);
          return;
        case 'shutdown':
          void dp.shutdown(m.timeoutMs).finally(() => {
            reply({ kind: 'done', seq: m.seq });
            resolve();
          });
          return;
      }
    });
    // The primary going away (crash, SIGKILL) must not leave orphaned workers serving.
    process.on('disconnect', () => void dp.shutdown(1000).finally(() => process.exit(0)));
    reply({ kind: 'up' });
  });
}

/** The memfd: breaker counts, then consecutive outlier counts. */
function sharedBytes(columns: number): number {
  return SharedCountTable.bytes(columns) + SharedHostCountTable.bytes(columns);
}

/** The two tables over the memfd's mapping (the primary's and every worker's view alike). */
function sharedTables(buffer: ArrayBuffer, columns: number): { table: SharedCountTable; hosts: SharedHostCountTable } {
  return { table: new SharedCountTable(buffer, columns), hosts: new SharedHostCountTable(buffer, SharedCountTable.bytes(columns), columns) };
}

/** The worker's view of the shared breaker counts named by TRELLIS_WORKER_COUNTS (`fd:bytes:columns:column`). */
function sharedCounts(spec: string | undefined, log: DataPlaneOptions['log']) {
  if (spec === undefined || spec === '') return undefined;
  const [fd, bytes, columns, column] = spec.split(':').map(Number);
  const mem = sharedMemory();
  try {
    if (typeof mem === 'string') throw new Error(mem);
    const { table, hosts } = sharedTables(mem.mapShared(fd, bytes), columns);
    let slots = new Map<string, number>();
    return {
      setSlots(list: [string, number][]): void {
        slots = new Map(list);
      },
      forCluster: (name: string) => {
        const slot = slots.get(name);
        return slot === undefined ? undefined : table.counts(slot, column);
      },
      hostsOf: (name: string): HostCountsProvider | undefined => {
        const slot = slots.get(name);
        if (slot === undefined) return undefined;
        return { counts: (index) => hosts.counts(slot, index, column), hostsChanged: () => hosts.zeroCluster(slot) };
      },
    };
  } catch (err) {
    log?.('warn', `circuit breakers and outlier detection count per worker: ${(err as Error).message}`);
    return undefined;
  }
}
