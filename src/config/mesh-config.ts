/**
 * Istio's MeshConfig (the `mesh` key of the `istio` ConfigMap, or `meshConfig` of an IstioOperator /
 * Helm values file) read from a YAML file: the one reader of mesh-wide settings, shared by the control
 * plane (`trellis control --mesh-config`, `trellis up --mesh-config`) and the analyzer. Accepts the
 * MeshConfig itself, a ConfigMap with `data.mesh` (a YAML string), or a document with a `meshConfig`
 * key. Known fields are checked and returned typed; unknown fields are kept in `raw` (MeshConfig has
 * dozens we do not act on) and listed as ignored. Errors are MESH_CONFIG_INVALID naming file and field.
 * Trellis's own settings live under `trellis:` (`authorizationDenialNamesPolicy`).
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { TrellisError } from '../errors.ts';
import { extAuthzProviders, type ExtensionProvider } from './extension-providers.ts';
import { parseTelemetryProviders, type MeshTelemetry } from './telemetry-providers.ts';

/** The MeshConfig fields Trellis acts on. */
export interface MeshConfigSettings {
  readonly trustDomain?: string;
  readonly rootNamespace?: string;
  readonly outboundTrafficPolicy?: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  readonly enableAutoMtls?: boolean;
  /** Istio's metrics merging (default true): a sidecar serves the app's metrics with its own on 15020. */
  readonly enablePrometheusMerge?: boolean;
  /** `istio: <ingressSelector>` labels the default ingress gateway (Istio's default `ingressgateway`). */
  readonly ingressSelector?: string;
  /** `extensionProviders` entries as written (authorization and telemetry read their own kinds). */
  readonly extensionProviders?: readonly Readonly<Record<string, unknown>>[];
  /** The envoyExtAuthzHttp / envoyExtAuthzGrpc providers, checked (AuthorizationPolicy CUSTOM). */
  readonly extAuthzProviders?: readonly ExtensionProvider[];
  /** Trellis's own `trellis.authorizationDenialNamesPolicy`: false makes an authorization 403 say only what Envoy says. */
  readonly authorizationDenialNamesPolicy?: boolean;
  /**
   * Telemetry settings: extension providers of telemetry kinds (typed), `defaultProviders`,
   * `enableTracing`, `defaultConfig.tracing.sampling`, `accessLogFile` / `accessLogEncoding` /
   * `accessLogFormat` (see telemetry-providers.ts).
   */
  readonly telemetry?: MeshTelemetry;
  /** `pathNormalization.normalization`: how proxies normalize request paths (Istio's default BASE). */
  readonly pathNormalization?: PathNormalizationMode;
  /** The whole MeshConfig object as read. */
  readonly raw: Readonly<Record<string, unknown>>;
  /** Top-level fields present but not acted on (for a notice). */
  readonly ignored: readonly string[];
}

/** Istio's MeshConfig.ProxyPathNormalization.NormalizationType (DEFAULT is read as BASE). */
export type PathNormalizationMode = 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';
const PathNormalizationModes = new Set(['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES']);

const known = new Set(['trustDomain', 'rootNamespace', 'outboundTrafficPolicy', 'enableAutoMtls', 'enablePrometheusMerge', 'ingressSelector', 'extensionProviders', 'defaultProviders', 'enableTracing', 'defaultConfig', 'accessLogFile', 'accessLogEncoding', 'accessLogFormat', 'pathNormalization', 'trellis']);

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bad(file: string, field: string, msg: string): TrellisError {
  return new TrellisError('MESH_CONFIG_INVALID', `${file}: ${field}: ${msg}`, { context: { file, field } });
}

/** Parses MeshConfig text (see module doc for the accepted shapes). */
export function parseMeshConfig(text: string, file = '<mesh config>'): MeshConfigSettings {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new TrellisError('MESH_CONFIG_INVALID', `${file}: not valid YAML: ${(err as Error).message}`, { cause: err, context: { file } });
  }
  if (doc === null || doc === undefined) doc = {};
  if (!isObj(doc)) throw bad(file, '(document)', 'expected a mapping');
  let mesh: unknown = doc;
  if (doc.kind === 'ConfigMap') {
    const data = isObj(doc.data) ? doc.data.mesh : undefined;
    if (typeof data !== 'string') throw bad(file, 'data.mesh', 'a ConfigMap holding MeshConfig needs data.mesh (a YAML string)');
    try {
      mesh = parse(data) ?? {};
    } catch (err) {
      throw bad(file, 'data.mesh', `not valid YAML: ${(err as Error).message}`);
    }
  } else if (isObj(doc.meshConfig)) mesh = doc.meshConfig;
  else if (isObj(doc.spec) && isObj(doc.spec.meshConfig)) mesh = doc.spec.meshConfig;
  if (!isObj(mesh)) throw bad(file, '(mesh)', 'expected a mapping');
  const out: { -readonly [K in keyof MeshConfigSettings]: MeshConfigSettings[K] } = { raw: mesh, ignored: Object.keys(mesh).filter((k) => !known.has(k)).sort() };
  const str = (k: string): string | undefined => {
    const v = mesh[k as keyof typeof mesh];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v === '') throw bad(file, k, `expected a non-empty string, got ${JSON.stringify(v)}`);
    return v;
  };
  const td = str('trustDomain');
  if (td !== undefined) {
    if (!/^[a-z0-9._-]+$/i.test(td)) throw bad(file, 'trustDomain', `'${td}' is not a valid SPIFFE trust domain (letters, digits, '.', '-', '_')`);
    out.trustDomain = td;
  }
  const rn = str('rootNamespace');
  if (rn !== undefined) out.rootNamespace = rn;
  const is = str('ingressSelector');
  if (is !== undefined) out.ingressSelector = is;
  const otp = (mesh as Record<string, unknown>).outboundTrafficPolicy;
  if (otp !== undefined) {
    const mode = isObj(otp) ? otp.mode : undefined;
    if (mode !== 'ALLOW_ANY' && mode !== 'REGISTRY_ONLY') throw bad(file, 'outboundTrafficPolicy.mode', `expected ALLOW_ANY or REGISTRY_ONLY, got ${JSON.stringify(mode)}`);
    out.outboundTrafficPolicy = mode;
  }
  const am = (mesh as Record<string, unknown>).enableAutoMtls;
  if (am !== undefined) {
    if (typeof am !== 'boolean') throw bad(file, 'enableAutoMtls', `expected true or false, got ${JSON.stringify(am)}`);
    out.enableAutoMtls = am;
  }
  const pm = (mesh as Record<string, unknown>).enablePrometheusMerge;
  if (pm !== undefined) {
    if (typeof pm !== 'boolean') throw bad(file, 'enablePrometheusMerge', `expected true or false, got ${JSON.stringify(pm)}`);
    out.enablePrometheusMerge = pm;
  }
  const ep = (mesh as Record<string, unknown>).extensionProviders;
  if (ep !== undefined) {
    if (!Array.isArray(ep)) throw bad(file, 'extensionProviders', 'expected a list');
    ep.forEach((p, i) => {
      if (!isObj(p) || typeof p.name !== 'string' || p.name === '') throw bad(file, `extensionProviders[${i}].name`, 'each provider needs a name');
    });
    out.extensionProviders = ep as Record<string, unknown>[];
    out.extAuthzProviders = extAuthzProviders(ep as Record<string, unknown>[], (field, msg) => bad(file, field, msg));
  }
  // Trellis's own settings, in a block of their own so Istio's fields stay Istio's.
  const t = (mesh as Record<string, unknown>).trellis;
  if (t !== undefined) {
    if (!isObj(t)) throw bad(file, 'trellis', 'expected a mapping');
    for (const k of Object.keys(t)) if (k !== 'authorizationDenialNamesPolicy') throw bad(file, `trellis.${k}`, 'unknown field (known: authorizationDenialNamesPolicy)');
    if (t.authorizationDenialNamesPolicy !== undefined) {
      if (typeof t.authorizationDenialNamesPolicy !== 'boolean') throw bad(file, 'trellis.authorizationDenialNamesPolicy', `expected true or false, got ${JSON.stringify(t.authorizationDenialNamesPolicy)}`);
      out.authorizationDenialNamesPolicy = t.authorizationDenialNamesPolicy;
    }
  }
  const pn = (mesh as Record<string, unknown>).pathNormalization;
  if (pn !== undefined) {
    const mode = isObj(pn) ? pn.normalization : undefined;
    if (mode === 'DEFAULT' || mode === undefined) out.pathNormalization = 'BASE';
    else if (typeof mode === 'string' && PathNormalizationModes.has(mode)) out.pathNormalization = mode as PathNormalizationMode;
    else throw bad(file, 'pathNormalization.normalization', `expected NONE, BASE, MERGE_SLASHES or DECODE_AND_MERGE_SLASHES, got ${JSON.stringify(mode)}`);
  }
  out.telemetry = parseTelemetryProviders(mesh, (field, msg) => bad(file, field, msg));
  return Object.freeze(out);
}

/** The provider type an `extensionProviders` entry configures (`zipkin`, `opentelemetry`, `lightstep`...), its one key besides `name`. */
export function extensionProviderKind(p: Readonly<Record<string, unknown>>): string | undefined {
  const kinds = Object.keys(p).filter((k) => k !== 'name');
  return kinds.length === 1 ? kinds[0] : undefined;
}

/** Reads and parses a MeshConfig file. */
export function readMeshConfig(file: string): MeshConfigSettings {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new TrellisError('MESH_CONFIG_INVALID', `${file}: cannot read: ${(err as Error).message}`, { cause: err, context: { file } });
  }
  return parseMeshConfig(text, file);
}
