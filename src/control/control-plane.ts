/**
 * Assembles the control plane: config stores (one watched file store per config directory,
 * merged) -> semantic gate -> MeshSnapshot -> translate -> ADS server, plus the debug HTTP server.
 * Every store change rebuilds the snapshot (reusing what did not change) and pushes to the
 * proxies the change affects. Translation is cached per proxy and snapshot version, since the
 * same proxy is asked for its resources on connect, on every push and for config dumps.
 */
import { join } from 'node:path';
import type { Diagnostic, Resource } from '../config/resource.ts';
import type { ConfigStore } from '../config/store/types.ts';
import { openFileStore } from '../config/store/file.ts';
import { CompositeStore } from '../config/store/composite.ts';
import { ConfigGate } from './config-gate.ts';
import { buildSnapshot, affectsProxy, type MeshSnapshot, type MeshSettings } from './snapshot/index.ts';
import { translate } from './translate/index.ts';
import { createXdsServer, type XdsLogger, type XdsServer } from './xds/server.ts';
import { createDebugHttpServer, type DebugHttpServer } from './xds/debug-http.ts';
import type { ProxyNode } from './proxy-node.ts';
import type { XdsResourceSet } from '../xds/types.ts';
import { describeError } from '../errors.ts';
import { CertificateAuthority } from './ca/authority.ts';
import { addCaService } from './ca/ca-service.ts';
import type { CaAuthenticator } from './ca/authenticator.ts';
import type { CaMaterialSource } from './ca/ca-files.ts';
import { tokenFileAuthenticator } from './ca/tokens.ts';
import type { KeyAlgorithm } from '../pki/keys.ts';
import { TypeUrl } from '../xds/types.ts';
import { ControlPlaneMetrics } from './monitoring.ts';

export interface ControlPlaneOptions {
  /** Directories (or files) of mesh config, watched; merged in order (earlier wins duplicates). */
  configPaths: readonly string[];
  /** Or an existing store (tests, embedding); used instead of configPaths when given. */
  store?: ConfigStore;
  host?: string;
  xdsPort?: number;
  debugPort?: number;
  mesh?: Partial<MeshSettings>;
  debounceMs?: number;
  log?: ControlLogger;
  /** The mesh CA: signs workload CSRs (CreateCertificate on the xDS port) and provides ROOTCA. */
  ca?: ControlPlaneCaOptions;
}

export interface ControlPlaneCaOptions {
  /** CA directory in Istio's plug-in layout (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem). */
  readonly dir?: string;
  /** Create a self-signed root when the directory is empty (false: a plug-in CA whose files must exist). */
  readonly selfSigned?: boolean;
  /** Or another source of the material (a Kubernetes Secret), instead of `dir`. */
  readonly source?: CaMaterialSource;
  /** Where per-workload tokens are recorded (src/control/ca/tokens.ts); undefined = no such tokens. */
  readonly tokenDir?: string;
  /** More ways to authenticate callers (Kubernetes TokenReview), asked after the token directory. */
  readonly authenticators?: readonly CaAuthenticator[];
  readonly keyAlgorithm?: KeyAlgorithm;
  /** Default workload certificate lifetime (24 h). */
  readonly defaultTtlMs?: number;
  /** How often the CA directory is checked for new material (1 s). */
  readonly pollMs?: number;
}

/** Structured logger shape (pino-compatible). */
export interface ControlLogger extends XdsLogger {
  error(obj: Record<string, unknown>, msg: string): void;
}

export interface ControlPlane {
  readonly xdsPort: number;
  readonly debugPort: number;
  readonly xds: XdsServer;
  /** The snapshot currently served. */
  snapshot(): MeshSnapshot;
  /** Current diagnostics: store (schema) and semantic, with the gate's decisions. */
  diagnostics(): readonly Diagnostic[];
  /** The mesh CA, when one runs. */
  readonly ca: CertificateAuthority | undefined;
  close(): Promise<void>;
}

/**
 * The part of a ProxyNode translation depends on: everything but the node id, its IPs and its
 * workload name, which translate() never reads (test/control-shared-translate.test.ts holds it to
 * that). Istio shares generated config between alike proxies the same way.
 */
export function translationKey(p: ProxyNode): string {
  return JSON.stringify([p.kind, p.namespace, p.labels, p.serviceAccount, p.clusterId, p.captureMode, p.metadata]);
}

/** The version istio_build reports. */
export const TrellisVersion = '0.1.0';

const silent: ControlLogger = { info() {}, warn() {}, error() {} };

/** Starts a control plane; resolves once the first snapshot is built and both servers listen. */
export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const log = opts.log ?? silent;
  let store: ConfigStore;
  if (opts.store) store = opts.store;
  else {
    const stores = await Promise.all(opts.configPaths.map((p) => openFileStore(p, { onError: (err) => log.warn({ path: p, error: describeError(err) }, 'config store error') })));
    store = stores.length === 1 ? stores[0] : new CompositeStore(stores.map((s, i) => ({ store: s, name: opts.configPaths[i] })));
  }
  await store.ready();
  const allResources = (): Resource[] => store.types().flatMap((t) => [...store.list(t)]);

  const trustDomain = opts.mesh?.trustDomain ?? 'cluster.local';
  let ca: CertificateAuthority | undefined;
  if (opts.ca !== undefined) {
    try {
      ca = await CertificateAuthority.open({
        source: opts.ca.source, dir: opts.ca.dir, selfSigned: opts.ca.selfSigned, trustDomain, keyAlgorithm: opts.ca.keyAlgorithm, defaultTtlMs: opts.ca.defaultTtlMs, pollMs: opts.ca.pollMs,
        // Next to the token records: the CA's own state, never in a plug-in CA's directory.
        ...(opts.ca.tokenDir !== undefined ? { stateFile: join(opts.ca.tokenDir, 'issued-certificates.json') } : {}),
        log: (level, msg, fields) => log[level === 'info' ? 'info' : level === 'warn' ? 'warn' : 'error'](fields ?? {}, msg),
      });
    } catch (err) {
      if (!opts.store) await store.close();
      throw err;
    }
  }
  const gate = new ConfigGate({ domainSuffix: opts.mesh?.domainSuffix, rootNamespace: opts.mesh?.rootNamespace });
  let gateDiagnostics: readonly Diagnostic[] = [];
  let snapshot: MeshSnapshot;
  const cache = new Map<string, { version: number; set: XdsResourceSet }>();

  const rebuild = (): readonly Resource[] => {
    const result = gate.update(allResources());
    gateDiagnostics = result.diagnostics;
    if (result.changed.length > 0 || snapshot === undefined) snapshot = buildSnapshot(gate, { mesh: opts.mesh, trustBundle: ca?.trustBundle() }, snapshot);
    for (const d of result.diagnostics) {
      if (d.severity === 'error' || d.code === 'LAST_KNOWN_GOOD' || d.code === 'NOT_SERVED') {
        log.warn({ code: d.code, resource: d.resource, file: d.file, line: d.line, field: d.fieldPath }, d.message);
      }
    }
    return result.changed;
  };
  rebuild();

  const generate = (proxy: ProxyNode): XdsResourceSet => {
    // Proxies alike in everything translation reads share one translation (and, through the
    // encoder's per-object cache, one encoding): a push to 1,000 sidecars of one workload costs
    // one translate, not 1,000. The node's content is the key, so a reconnect with other metadata
    // never reuses old output.
    const key = translationKey(proxy);
    const hit = cache.get(key);
    if (hit && hit.version === snapshot.version) return hit.set;
    const set = translate(snapshot, proxy);
    cache.delete(key);
    cache.set(key, { version: snapshot.version, set });
    if (cache.size > 10_000) cache.delete(cache.keys().next().value as string);
    return set;
  };

  // Store problems (parse and schema errors, and warnings such as DUPLICATE_RESOURCE: a second
  // definition of a name, in another file, that is ignored) are logged once each when they
  // appear. A file that fails to parse changes no resource, so the store emits no watch event for
  // it: a short poll catches those.
  let loggedStoreErrors = new Set<string>();
  const logStoreDiagnostics = () => {
    const now = new Set<string>();
    for (const d of store.diagnostics()) {
      if (d.severity === 'info') continue;
      const key = `${d.code}|${d.file ?? ''}|${d.line ?? ''}|${d.message}`;
      now.add(key);
      if (!loggedStoreErrors.has(key)) log.warn({ code: d.code, file: d.file, line: d.line, resource: d.resource, field: d.fieldPath }, d.message);
    }
    loggedStoreErrors = now;
  };
  logStoreDiagnostics();
  const diagTimer = setInterval(() => {
    try {
      logStoreDiagnostics();
    } catch (err) {
      log.error({ error: describeError(err) }, 'reading config diagnostics failed');
    }
  }, 500);
  diagTimer.unref();

  let connected = () => 0;
  const monitoring = new ControlPlaneMetrics({ connected: () => connected(), version: TrellisVersion });
  const xds = createXdsServer({ generate, debounceMs: opts.debounceMs, log, observer: monitoring });
  connected = () => xds.status().length;
  let unwatchCa: () => void = () => {};
  if (ca !== undefined) {
    const authenticators = [...(opts.ca!.tokenDir !== undefined ? [tokenFileAuthenticator(opts.ca!.tokenDir)] : []), ...(opts.ca!.authenticators ?? [])];
    addCaService(xds.grpcServer, { ca, authenticators, trustDomain, log: (level, msg, fields) => log[level](fields ?? {}, msg) });
    // A new trust bundle is a new snapshot (same config), pushed to every proxy as ROOTCA.
    unwatchCa = ca.onBundleChange((bundle) => {
      snapshot = buildSnapshot(gate, { mesh: opts.mesh, trustBundle: bundle }, snapshot);
      xds.push({ reason: `trust bundle changed (${bundle.length} root(s))`, type: 'secret' });
    });
    ca.distributed = (root) => everyProxyHolds(xds, root);
  }
  const unwatch = store.watch((events) => {
    try {
      monitoring.storeEvents(events);
      logStoreDiagnostics();
      const changed = rebuild();
      if (changed.length === 0) return;
      xds.push({ affects: (p) => affectsProxy(changed, p, snapshot.mesh.rootNamespace), reason: `${events.length} config change(s)`, type: ControlPlaneMetrics.triggerType(events) });
    } catch (err) {
      // Never let a bad config take the control plane down: keep serving the last snapshot.
      log.error({ error: describeError(err) }, 'config update failed; the previous snapshot is still served');
    }
  });

  const diagnostics = () => [...store.diagnostics(), ...gateDiagnostics];
  let xdsPort = 0;
  let debug: DebugHttpServer | undefined;
  try {
    xdsPort = await xds.listen({ host: opts.host ?? '127.0.0.1', port: opts.xdsPort ?? 15010 });
    debug = createDebugHttpServer({ xds, diagnostics, ready: () => true, monitoring: () => monitoring.text(), ...(ca !== undefined ? { ca: () => ca.status() } : {}) });
    const debugPort = await debug.listen({ host: opts.host ?? '127.0.0.1', port: opts.debugPort ?? 15014 });
    log.info({ xdsPort, debugPort, resources: allResources().length }, 'control plane listening');
    return {
      xdsPort,
      debugPort,
      xds,
      snapshot: () => snapshot,
      diagnostics,
      ca,
      async close() {
        clearInterval(diagTimer);
        unwatch();
        unwatchCa();
        ca?.close();
        await Promise.all([xds.close(), debug!.close()]);
        if (!opts.store) await store.close();
      },
    };
  } catch (err) {
    clearInterval(diagTimer);
    unwatch();
    unwatchCa();
    ca?.close();
    await xds.close(0).catch(() => {});
    await debug?.close().catch(() => {});
    if (!opts.store) await store.close();
    throw err;
  }
}

/**
 * True when every connected proxy that uses ROOTCA has acknowledged a version of it containing
 * `root`: the moment a CA may start signing under a new root (authority.ts).
 */
function everyProxyHolds(xds: XdsServer, root: string): boolean {
  for (const p of xds.status()) {
    const t = Object.values(p.types).find((x) => x.typeUrl === TypeUrl.Secret);
    if (t === undefined || !(t.resourceNames ?? []).includes('ROOTCA')) continue;
    if (t.state !== 'SYNCED') return false;
    const sent = xds.configDump(p.id)?.types;
    const secrets = sent === undefined ? undefined : Object.values(sent).find((x) => x.typeUrl === TypeUrl.Secret)?.resources ?? [];
    const rootca = secrets?.find((r) => r.name === 'ROOTCA') as { validation_context?: { trusted_ca?: { inline_string?: string } } } | undefined;
    if (!(rootca?.validation_context?.trusted_ca?.inline_string ?? '').includes(root.trim())) return false;
  }
  return true;
}
