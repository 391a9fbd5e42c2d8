/**
 * Assembles the control plane: the config store (one watched file store per config directory,
 * merged, or the store given), the config pipeline (store -> gate -> MeshSnapshot -> snapshot
 * cache, config-pipeline.ts), the ADS server reading that cache (translating per proxy, cached
 * there), the mesh CA on the same gRPC port, the JWKS resolver (key sets RequestAuthentications
 * name by jwksUri or issuer discovery, fetched here and inlined by translation), and the debug
 * HTTP server.
 */
import { join } from 'node:path';
import type { Diagnostic } from '../config/resource.ts';
import type { ConfigStore } from '../config/store/types.ts';
import { openFileStore } from '../config/store/file.ts';
import { CompositeStore } from '../config/store/composite.ts';
import { ConfigPipeline } from './config-pipeline.ts';
import type { MeshSnapshot, MeshSettings } from './snapshot/index.ts';
import { translate, translationKey } from './translate/index.ts';
import { SnapshotCache } from './xds/cache.ts';
import { ControlPlaneMetrics } from './monitoring.ts';
import { createXdsServer, type XdsLogger, type XdsServer } from './xds/server.ts';
import { createDebugHttpServer } from './xds/debug-http.ts';
import { describeError } from '../errors.ts';
import { CertificateAuthority } from './ca/authority.ts';
import { addCaService } from './ca/ca-service.ts';
import type { CaAuthenticator } from './ca/authenticator.ts';
import type { CaMaterialSource } from './ca/ca-files.ts';
import { tokenFileAuthenticator } from './ca/tokens.ts';
import type { KeyAlgorithm } from '../pki/keys.ts';
import { TypeUrl } from '../xds/types.ts';
import { JwksResolver } from './jwks/jwks-resolver.ts';
import { jwksSourcesOf } from './translate/security/jwt-authn.ts';

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
  /** How often fetched JWKS are refreshed (default 20 minutes). */
  jwksRefreshMs?: number;
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
  const closers: Array<() => unknown> = opts.store ? [] : [() => store.close()];
  let started = false;
  const closeAll = async (): Promise<void> => {
    for (const c of closers.splice(0).reverse()) await Promise.resolve(c()).catch(() => {});
  };
  try {
    await store.ready();
    const trustDomain = opts.mesh?.trustDomain ?? 'cluster.local';
    let ca: CertificateAuthority | undefined;
    if (opts.ca !== undefined) {
      ca = await CertificateAuthority.open({
        source: opts.ca.source, dir: opts.ca.dir, selfSigned: opts.ca.selfSigned, trustDomain, keyAlgorithm: opts.ca.keyAlgorithm, defaultTtlMs: opts.ca.defaultTtlMs, pollMs: opts.ca.pollMs,
        // Next to the token records: the CA's own state, never in a plug-in CA's directory.
        ...(opts.ca.tokenDir !== undefined ? { stateFile: join(opts.ca.tokenDir, 'issued-certificates.json') } : {}),
        log: (level, msg, fields) => log[level === 'info' ? 'info' : level === 'warn' ? 'warn' : 'error'](fields ?? {}, msg),
      });
      closers.push(() => ca?.close());
    }
    // store -> gate -> snapshot -> cache (setSnapshot) -> ADS server: see config-pipeline.ts.
    const cache = new SnapshotCache<MeshSnapshot>({ translate, key: translationKey });
    // A new or changed key set is a new snapshot for every proxy (the keys are inlined).
    let pipeline: ConfigPipeline | undefined;
    const jwks = new JwksResolver({ refreshMs: opts.jwksRefreshMs, onChange: () => pipeline?.keysChanged('JWKS changed') });
    closers.push(() => jwks.close());
    pipeline = new ConfigPipeline({ store, cache, mesh: opts.mesh, trustBundle: ca?.trustBundle(), log, keys: { lookup: jwks.lookup, want: (s) => jwks.want(jwksSourcesOf(s)) } });
    const served = pipeline;
    closers.push(() => served.close());
    const diagnostics = () => [...served.diagnostics(), ...jwks.diagnostics()];
    let connected = () => 0;
    const monitoring = new ControlPlaneMetrics({ connected: () => connected(), version: TrellisVersion });
    closers.push(store.watch((events) => monitoring.storeEvents(events)));
    const xds = createXdsServer({ cache, debounceMs: opts.debounceMs, log, observer: monitoring });
    connected = () => xds.status().length;
    // Streams get their grace period on close, not on a failed start.
    closers.push(() => xds.close(started ? undefined : 0));
    if (ca !== undefined) {
      const authenticators = [...(opts.ca!.tokenDir !== undefined ? [tokenFileAuthenticator(opts.ca!.tokenDir)] : []), ...(opts.ca!.authenticators ?? [])];
      addCaService(xds.grpcServer, { ca, authenticators, trustDomain, log: (level, msg, fields) => log[level](fields ?? {}, msg) });
      closers.push(ca.onBundleChange((bundle) => served.setTrustBundle(bundle)));
      ca.distributed = (root) => everyProxyHolds(xds, root);
    }
    const xdsPort = await xds.listen({ host: opts.host ?? '127.0.0.1', port: opts.xdsPort ?? 15010 });
    const debug = createDebugHttpServer({ xds, diagnostics, ready: () => true, monitoring: () => monitoring.text(), ...(ca !== undefined ? { ca: () => ca.status() } : {}) });
    closers.push(() => debug.close());
    const debugPort = await debug.listen({ host: opts.host ?? '127.0.0.1', port: opts.debugPort ?? 15014 });
    log.info({ xdsPort, debugPort, resources: store.types().reduce((n, t) => n + store.list(t).length, 0) }, 'control plane listening');
    started = true;
    return { xdsPort, debugPort, xds, snapshot: () => served.snapshot(), diagnostics, ca, close: closeAll };
  } catch (err) {
    await closeAll();
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
