/**
 * The control plane's config path, one direction (DESIGN.md): the store emits changes and
 * diagnostics -> the config gate decides what is served (config-gate.ts) -> a MeshSnapshot is
 * built from it, reusing what did not change -> the snapshot cache's only write, `setSnapshot`,
 * tells the ADS server which proxies the change can affect (xds/cache.ts), and the server
 * translates and pushes. A change that serves nothing new (a file that stopped parsing: its last
 * good version stays) builds no snapshot. New findings are logged once each when they appear.
 */
import type { Diagnostic } from '../config/resource.ts';
import type { ConfigStore } from '../config/store/types.ts';
import { describeError } from '../errors.ts';
import { ConfigGate } from './config-gate.ts';
import { affectsProxy, buildSnapshot, type MeshSettings, type MeshSnapshot } from './snapshot/index.ts';
import type { JwksLookup } from './snapshot/snapshot.ts';
import type { SnapshotCache } from './xds/cache.ts';
import { ControlPlaneMetrics } from './monitoring.ts';

/** Structured logger shape (pino-compatible). */
export interface PipelineLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

export interface ConfigPipelineOptions {
  readonly store: ConfigStore;
  readonly cache: SnapshotCache<MeshSnapshot>;
  readonly mesh?: Partial<MeshSettings>;
  /** The mesh CA's trust bundle at start (PEM roots); `setTrustBundle` replaces it. */
  readonly trustBundle?: readonly string[];
  readonly log: PipelineLogger;
  /** Fetched JWKS: looked up while building, told each new snapshot (what to fetch); `keysChanged` rebuilds. */
  readonly keys?: { readonly lookup: JwksLookup; want(snapshot: MeshSnapshot): void };
}

/**
 * Worth an operator's attention: errors, what the gate decided to serve instead, and the store's
 * warnings (such as DUPLICATE_RESOURCE: a second definition of a name, in another file, that is
 * ignored); the analysis' warnings are left to `analyze` and the debug endpoint.
 */
function notable(d: Diagnostic, storeWarnings: ReadonlySet<string>): boolean {
  return d.severity === 'error' || d.code === 'LAST_KNOWN_GOOD' || d.code === 'NOT_SERVED' || storeWarnings.has(identity(d));
}

function identity(d: Diagnostic): string {
  const r = d.resource;
  return `${d.code}|${r?.kind ?? ''}/${r?.namespace ?? ''}/${r?.name ?? ''}|${d.file ?? ''}|${d.line ?? ''}|${d.message}`;
}

/** Runs the config path from a store into a snapshot cache until `close()`. */
export class ConfigPipeline {
  readonly gate: ConfigGate;
  readonly #store: ConfigStore;
  readonly #cache: SnapshotCache<MeshSnapshot>;
  readonly #mesh: Partial<MeshSettings> | undefined;
  readonly #log: PipelineLogger;
  readonly #unwatch: Array<() => void>;
  readonly #keys: ConfigPipelineOptions['keys'];
  #trustBundle: readonly string[];
  #snapshot: MeshSnapshot;
  #logged = new Set<string>();

  constructor(opts: ConfigPipelineOptions) {
    this.#store = opts.store;
    this.#cache = opts.cache;
    this.#mesh = opts.mesh;
    this.#log = opts.log;
    this.#trustBundle = opts.trustBundle ?? [];
    this.#keys = opts.keys;
    this.gate = new ConfigGate(opts.store, { domainSuffix: opts.mesh?.domainSuffix, rootNamespace: opts.mesh?.rootNamespace });
    this.#logNew(this.gate.update().diagnostics);
    this.#snapshot = this.#build();
    this.#cache.setSnapshot(this.#snapshot, { reason: 'initial config' });
    this.#unwatch = [
      opts.store.watch((events) => this.#run(`${events.length} config change(s)`, ControlPlaneMetrics.triggerType(events))),
      opts.store.watchDiagnostics(() => this.#run('config diagnostics changed', 'config')),
    ];
  }

  /** The snapshot served now. */
  snapshot(): MeshSnapshot {
    return this.#snapshot;
  }

  /** Current diagnostics: the store's (schema), the analysis', and the gate's decisions. */
  diagnostics(): readonly Diagnostic[] {
    return this.gate.diagnostics();
  }

  /** A new trust bundle is a new snapshot (same config), for every proxy (ROOTCA). */
  setTrustBundle(bundle: readonly string[]): void {
    this.#trustBundle = bundle;
    this.#snapshot = this.#build(this.#snapshot);
    this.#cache.setSnapshot(this.#snapshot, { reason: `trust bundle changed (${bundle.length} root(s))`, type: 'secret' });
  }

  /** Fetched keys changed: a new snapshot (same config) for every proxy. */
  keysChanged(reason: string): void {
    this.#snapshot = this.#build(this.#snapshot);
    this.#cache.setSnapshot(this.#snapshot, { reason, type: 'config' });
  }

  close(): void {
    for (const off of this.#unwatch.splice(0)) off();
  }

  /** `type` is Istio's push trigger type (pilot_push_triggers). */
  #run(reason: string, type: string): void {
    try {
      const { changed, diagnostics } = this.gate.update();
      this.#logNew(diagnostics);
      if (changed.length === 0) return;
      this.#snapshot = this.#build(this.#snapshot);
      const rootNamespace = this.#snapshot.mesh.rootNamespace;
      this.#cache.setSnapshot(this.#snapshot, { affects: (p) => affectsProxy(changed, p, rootNamespace), reason, type });
    } catch (err) {
      // Never let a bad config take the control plane down: keep serving the last snapshot.
      this.#log.error({ error: describeError(err), store: this.#store.revision }, 'config update failed; the previous snapshot is still served');
    }
  }

  #build(previous?: MeshSnapshot): MeshSnapshot {
    const next = buildSnapshot(this.gate, { mesh: this.#mesh, trustBundle: this.#trustBundle, jwks: this.#keys?.lookup }, previous);
    this.#keys?.want(next);
    return next;
  }

  #logNew(diagnostics: readonly Diagnostic[]): void {
    const now = new Set<string>();
    const storeWarnings = new Set(this.#store.diagnostics().filter((d) => d.severity === 'warning').map(identity));
    for (const d of diagnostics) {
      if (!notable(d, storeWarnings)) continue;
      const key = identity(d);
      now.add(key);
      if (!this.#logged.has(key)) this.#log.warn({ code: d.code, resource: d.resource, file: d.file, line: d.line, field: d.fieldPath }, d.message);
    }
    this.#logged = now;
  }
}
