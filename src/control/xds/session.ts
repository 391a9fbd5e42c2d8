/**
 * What one ADS stream (SotW or delta) shares: who the proxy is (parsed from the Node in its first
 * request), its current encoded resource set (regenerated on push), what it was sent (for
 * `/debug/config_dump`), its status row, and a serial work queue so requests and pushes on one
 * stream are handled strictly one after the other even though generation may be async.
 */
import { randomUUID } from 'node:crypto';
import { describeError } from '../../errors.ts';
import type { NodeJson } from '../../xds/ads-wire.ts';
import type { XdsJson, XdsResourceSet } from '../../xds/types.ts';
import { proxyNodeFromXds, type ProxyNode } from '../proxy-node.ts';
import { encodeAndCheck, type EncodedResource, type EncodedSet } from './resources.ts';
import type { StatusTracker } from './status.ts';

/** Minimal structured logger (pino's shape). */
export interface XdsLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export const silentLogger: XdsLogger = { info() {}, warn() {} };

/** What the server gives every stream. */
export interface SessionDeps {
  /** Every resource `proxy` should have now (the cache's read). */
  resources(proxy: ProxyNode): XdsResourceSet | Promise<XdsResourceSet>;
  status: StatusTracker;
  log: XdsLogger;
  controlPlaneId: string;
  /** 'reject': an inconsistent set is not served (the previous one stays); 'warn': served, reported. */
  consistency: 'warn' | 'reject';
  /** Longest LDS/RDS wait for new EDS clusters to be subscribed after a CDS push (warming.ts). */
  warmingHoldMs: number;
  /** Monitoring (istiod's pilot_* metrics). */
  observer?: XdsObserver;
}

/** What monitoring hears from the xDS server. */
export interface XdsObserver {
  /** A response of `type` (CDS, EDS, LDS, RDS, SDS) went out: bytes of its resources, seconds since its push began. */
  sent?(type: string, bytes: number, seconds: number | undefined): void;
  /** A proxy NACKed a response of `type`. */
  rejected?(type: string): void;
  /** Generating a proxy's resources failed. */
  internalError?(): void;
  /** A push was triggered, with its reason type (config, endpoint, secret). */
  triggered?(type: string): void;
  /** A proxy's push finished `seconds` after the change that triggered it. */
  converged?(seconds: number): void;
}

const empty: EncodedSet = { types: new Map(), errors: [] };

export class ProxySession {
  readonly connectionId = randomUUID();
  readonly mode: 'sotw' | 'delta';
  readonly peer: string;
  readonly deps: SessionDeps;
  proxy: ProxyNode | undefined;
  current: EncodedSet | undefined;
  /**
   * What was sent and not removed since, per type URL: a SotW response's resource list (shared by
   * every stream sent the same list, so 1,000 streams hold one copy), or a per-name map (delta).
   */
  readonly #sent = new Map<string, readonly EncodedResource[] | Map<string, XdsJson>>();
  dirty = false;
  closed = false;
  /** performance.now() when the current push began (regeneration), for pilot_xds_push_time. */
  pushStartedAt: number | undefined;
  #queue: Promise<void> = Promise.resolve();
  #nonce = 0;

  constructor(deps: SessionDeps, mode: 'sotw' | 'delta', peer: string) {
    this.deps = deps;
    this.mode = mode;
    this.peer = peer;
  }

  /** Runs `fn` after everything queued before it; errors go to `onError`. */
  run(fn: () => void | Promise<void>, onError: (err: unknown) => void): void {
    this.#queue = this.#queue.then(async () => {
      if (this.closed) return;
      try {
        await fn();
      } catch (err) {
        onError(err);
      }
    });
  }

  /** Resolves once everything queued so far has run. */
  idle(): Promise<void> {
    return this.#queue;
  }

  nextNonce(): string {
    this.#nonce++;
    return `${this.#nonce}`;
  }

  /** Registers the proxy on its first request and generates its first set. */
  async init(node: NodeJson): Promise<void> {
    const proxy = proxyNodeFromXds({ id: node.id, cluster: node.cluster, metadata: node.metadata, user_agent_name: node.user_agent_name, extensions: node.extensions });
    this.proxy = proxy;
    this.deps.status.connect({
      id: proxy.id,
      connectionId: this.connectionId,
      mode: this.mode,
      peer: this.peer,
      connectedAt: new Date().toISOString(),
      node: { id: node.id ?? '', cluster: node.cluster, user_agent_name: node.user_agent_name, metadata: node.metadata },
      proxy,
    });
    this.deps.log.info({ proxy: proxy.id, mode: this.mode, peer: this.peer }, 'xds: proxy connected');
    await this.regenerate();
  }

  /** Regenerates this proxy's set; on failure keeps the previous one. True when a new set is in place. */
  async regenerate(): Promise<boolean> {
    const proxy = this.proxy;
    if (proxy === undefined) return false;
    this.dirty = false;
    this.pushStartedAt = performance.now();
    let set: XdsResourceSet;
    try {
      set = await this.deps.resources(proxy);
    } catch (err) {
      this.deps.status.counters.generateErrors++;
      this.deps.observer?.internalError?.();
      this.deps.status.problems(this.connectionId, [`generate failed: ${describeError(err)}`]);
      this.deps.log.warn({ proxy: proxy.id, err: describeError(err) }, 'xds: generating resources failed; keeping the previous set');
      return false;
    }
    const { encoded, inconsistent } = encodeAndCheck(set);
    const problems = [...encoded.errors, ...inconsistent];
    this.deps.status.problems(this.connectionId, problems);
    if (problems.length > 0) this.deps.log.warn({ proxy: proxy.id, problems }, 'xds: problems in generated resources');
    // Never served, not even as a first set: the proxy waits for a consistent one (DESIGN.md).
    if (inconsistent.length > 0 && this.deps.consistency === 'reject') return false;
    this.current = encoded;
    return true;
  }

  /** Resources of one type in the current set. */
  resourcesOf(typeUrl: string): ReadonlyMap<string, EncodedResource> {
    return (this.current ?? empty).types.get(typeUrl)?.resources ?? new Map();
  }

  /** Records a response: `replaceAll` (SotW) keeps `resources` itself, so pass a list that is not mutated later. */
  recordSent(typeUrl: string, resources: readonly EncodedResource[], removed: Iterable<string>, replaceAll: boolean): void {
    if (replaceAll) {
      this.#sent.set(typeUrl, resources);
      return;
    }
    let m = this.#sent.get(typeUrl);
    if (!(m instanceof Map)) {
      const base = m ?? [];
      m = new Map(base.map((r) => [r.name, r.json]));
      this.#sent.set(typeUrl, m);
    }
    for (const r of resources) m.set(r.name, r.json);
    for (const name of removed) m.delete(name);
  }

  /** Type URLs something was sent for. */
  sentTypes(): string[] {
    return [...this.#sent.keys()];
  }

  /** The resources of a type sent and not removed since, as our JSON. */
  sentResources(typeUrl: string): XdsJson[] {
    const m = this.#sent.get(typeUrl);
    if (m === undefined) return [];
    return m instanceof Map ? [...m.values()] : m.map((r) => r.json);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.deps.status.disconnect(this.connectionId);
    if (this.proxy !== undefined) this.deps.log.info({ proxy: this.proxy.id, mode: this.mode }, 'xds: proxy disconnected');
  }
}
