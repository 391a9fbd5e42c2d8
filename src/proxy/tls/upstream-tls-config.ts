/**
 * Parsing Envoy's `UpstreamTlsContext` (proto3 JSON) into a frozen `UpstreamTlsConfig`: client
 * certificates (inline or from files, read once when the config is applied), trusted CA, SAN
 * matchers, SNI and ALPN. Certificates that arrive by SDS are kept as names and resolved through a
 * `SecretProvider` when a connection is made, so a rotated secret applies to new connections
 * without rebuilding the cluster. Building `tls.connect` options is `upstream-tls.ts`'s job.
 */
import { readFileSync } from 'node:fs';
import type { XdsJson } from '../../xds/types.ts';
import { child, configError, isObj, optArr, optBool, optObj, optStr } from '../xds-json.ts';

/** PEM text of a certificate chain + key. */
export interface TlsCertificate {
  readonly certChain: string;
  readonly privateKey: string;
}

/** One string matcher (envoy.type.matcher.v3.StringMatcher). */
export type StringMatch =
  | { readonly kind: 'exact' | 'prefix' | 'suffix' | 'contains'; readonly value: string; readonly ignoreCase: boolean }
  | { readonly kind: 'regex'; readonly regex: RegExp };

/** A SAN matcher: which SAN type (undefined = any, for legacy match_subject_alt_names) and how. */
export interface SanMatcher {
  readonly sanType: 'DNS' | 'URI' | 'EMAIL' | 'IP_ADDRESS' | undefined;
  readonly match: StringMatch;
}

/** Peer validation: trusted CA bundle (PEM) and SAN matchers (any one matching is enough). */
export interface ValidationContext {
  readonly trustedCa: string | undefined;
  readonly sanMatchers: readonly SanMatcher[];
}

/** A frozen upstream TLS configuration. */
export interface UpstreamTlsConfig {
  readonly sni: string | undefined;
  readonly alpn: readonly string[];
  /** Inline/file client certificates (first one is used). */
  readonly certificates: readonly TlsCertificate[];
  /** SDS secret names for the client certificate, resolved per connection. */
  readonly certificateSdsNames: readonly string[];
  readonly validation: ValidationContext | undefined;
  /** SDS secret name for the validation context; its CA/SANs merge with `validation` (combined_validation_context). */
  readonly validationSdsName: string | undefined;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3' | undefined;
  readonly maxVersion: 'TLSv1.2' | 'TLSv1.3' | undefined;
}

/** The @type of the TLS transport socket config. */
export const UpstreamTlsContextType = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

/** Reads an envoy.config.core.v3.DataSource as text. */
export function readDataSource(ds: XdsJson, at: string): string {
  const filename = optStr(ds.filename, child(at, 'filename'));
  if (filename !== undefined) {
    try {
      return readFileSync(filename, 'utf8');
    } catch (err) {
      configError(child(at, 'filename'), `cannot read '${filename}': ${(err as Error).message}`);
    }
  }
  const inline = optStr(ds.inline_string, child(at, 'inline_string'));
  if (inline !== undefined) return inline;
  const bytes = optStr(ds.inline_bytes, child(at, 'inline_bytes'));
  if (bytes !== undefined) return Buffer.from(bytes, 'base64').toString('utf8');
  const env = optStr(ds.environment_variable, child(at, 'environment_variable'));
  if (env !== undefined) {
    // Read here (config apply time) because Envoy reads it once at load too.
    const v = process.env[env];
    if (v === undefined) configError(child(at, 'environment_variable'), `environment variable '${env}' is not set`);
    return v;
  }
  configError(at, 'data source needs one of filename, inline_string, inline_bytes, environment_variable');
}

/** Parses an envoy.type.matcher.v3.StringMatcher. */
export function parseStringMatcher(m: XdsJson, at: string): StringMatch {
  const ignoreCase = optBool(m.ignore_case, child(at, 'ignore_case')) ?? false;
  for (const kind of ['exact', 'prefix', 'suffix', 'contains'] as const) {
    const v = optStr(m[kind], child(at, kind));
    if (v !== undefined) return { kind, value: ignoreCase ? v.toLowerCase() : v, ignoreCase };
  }
  const re = optObj(m.safe_regex, child(at, 'safe_regex'));
  if (re !== undefined) {
    const src = optStr(re.regex, child(child(at, 'safe_regex'), 'regex')) ?? '';
    try {
      // Envoy's safe_regex is RE2 full-match; anchoring gives the same whole-string semantics.
      return { kind: 'regex', regex: new RegExp(`^(?:${src})$`, ignoreCase ? 'i' : '') };
    } catch (err) {
      configError(child(child(at, 'safe_regex'), 'regex'), `invalid regex: ${(err as Error).message}`);
    }
  }
  configError(at, 'string matcher needs one of exact, prefix, suffix, contains, safe_regex');
}

/** True when `value` satisfies the matcher. */
export function matchString(m: StringMatch, value: string): boolean {
  if (m.kind === 'regex') return m.regex.test(value);
  const v = m.ignoreCase ? value.toLowerCase() : value;
  switch (m.kind) {
    case 'exact': return v === m.value;
    case 'prefix': return v.startsWith(m.value);
    case 'suffix': return v.endsWith(m.value);
    case 'contains': return v.includes(m.value);
  }
}

const sanTypes = ['SAN_TYPE_UNSPECIFIED', 'EMAIL', 'DNS', 'URI', 'IP_ADDRESS', 'OTHER_NAME'] as const;

/** Parses a CertificateValidationContext. */
export function parseValidationContext(vc: XdsJson, at: string): ValidationContext {
  const caSrc = optObj(vc.trusted_ca, child(at, 'trusted_ca'));
  const trustedCa = caSrc === undefined ? undefined : readDataSource(caSrc, child(at, 'trusted_ca'));
  const sanMatchers: SanMatcher[] = [];
  optArr(vc.match_typed_subject_alt_names, child(at, 'match_typed_subject_alt_names')).forEach((raw, i) => {
    const p = child(child(at, 'match_typed_subject_alt_names'), i);
    if (!isObj(raw)) configError(p, 'expected an object');
    const t = raw.san_type;
    if (typeof t !== 'string' || !(sanTypes as readonly string[]).includes(t) || t === 'SAN_TYPE_UNSPECIFIED' || t === 'OTHER_NAME') {
      configError(child(p, 'san_type'), `unsupported SAN type ${JSON.stringify(t)} (expected DNS, URI, EMAIL or IP_ADDRESS)`);
    }
    const matcher = optObj(raw.matcher, child(p, 'matcher'));
    if (matcher === undefined) configError(child(p, 'matcher'), 'required');
    sanMatchers.push({ sanType: t as SanMatcher['sanType'], match: parseStringMatcher(matcher, child(p, 'matcher')) });
  });
  optArr(vc.match_subject_alt_names, child(at, 'match_subject_alt_names')).forEach((raw, i) => {
    const p = child(child(at, 'match_subject_alt_names'), i);
    if (!isObj(raw)) configError(p, 'expected an object');
    sanMatchers.push({ sanType: undefined, match: parseStringMatcher(raw, p) });
  });
  return Object.freeze({ trustedCa, sanMatchers: Object.freeze(sanMatchers) });
}

/** Parses an UpstreamTlsContext (the transport socket's typed_config). */
export function parseUpstreamTlsContext(ctx: XdsJson, at: string): UpstreamTlsConfig {
  const common = optObj(ctx.common_tls_context, child(at, 'common_tls_context')) ?? {};
  const cat = child(at, 'common_tls_context');
  const certificates: TlsCertificate[] = [];
  optArr(common.tls_certificates, child(cat, 'tls_certificates')).forEach((raw, i) => {
    const p = child(child(cat, 'tls_certificates'), i);
    if (!isObj(raw)) configError(p, 'expected an object');
    const chain = optObj(raw.certificate_chain, child(p, 'certificate_chain'));
    const key = optObj(raw.private_key, child(p, 'private_key'));
    if (chain === undefined || key === undefined) configError(p, 'certificate_chain and private_key are required');
    certificates.push({ certChain: readDataSource(chain, child(p, 'certificate_chain')), privateKey: readDataSource(key, child(p, 'private_key')) });
  });
  const certificateSdsNames = optArr(common.tls_certificate_sds_secret_configs, child(cat, 'tls_certificate_sds_secret_configs')).map((raw, i) => {
    const p = child(child(cat, 'tls_certificate_sds_secret_configs'), i);
    const name = isObj(raw) ? optStr(raw.name, child(p, 'name')) : undefined;
    if (name === undefined || name === '') configError(child(p, 'name'), 'required');
    return name;
  });
  let validation: ValidationContext | undefined;
  let validationSdsName: string | undefined;
  const vc = optObj(common.validation_context, child(cat, 'validation_context'));
  if (vc !== undefined) validation = parseValidationContext(vc, child(cat, 'validation_context'));
  const combined = optObj(common.combined_validation_context, child(cat, 'combined_validation_context'));
  if (combined !== undefined) {
    const cp = child(cat, 'combined_validation_context');
    const def = optObj(combined.default_validation_context, child(cp, 'default_validation_context'));
    if (def !== undefined) validation = parseValidationContext(def, child(cp, 'default_validation_context'));
    const sds = optObj(combined.validation_context_sds_secret_config, child(cp, 'validation_context_sds_secret_config'));
    if (sds !== undefined) validationSdsName = optStr(sds.name, child(child(cp, 'validation_context_sds_secret_config'), 'name'));
  }
  const vsds = optObj(common.validation_context_sds_secret_config, child(cat, 'validation_context_sds_secret_config'));
  if (vsds !== undefined) validationSdsName = optStr(vsds.name, child(child(cat, 'validation_context_sds_secret_config'), 'name'));
  const alpn = optArr(common.alpn_protocols, child(cat, 'alpn_protocols')).map((v, i) => {
    if (typeof v !== 'string' || v === '') configError(child(child(cat, 'alpn_protocols'), i), 'expected a non-empty string');
    return v;
  });
  const params = optObj(common.tls_params, child(cat, 'tls_params')) ?? {};
  const version = (field: string): UpstreamTlsConfig['minVersion'] => {
    const v = optStr(params[field], child(child(cat, 'tls_params'), field));
    if (v === undefined || v === 'TLS_AUTO' || v === 'TLSv1_0' || v === 'TLSv1_1') return undefined;
    if (v === 'TLSv1_2') return 'TLSv1.2';
    if (v === 'TLSv1_3') return 'TLSv1.3';
    configError(child(child(cat, 'tls_params'), field), `unknown TLS version '${v}'`);
  };
  if (validation !== undefined && validation.sanMatchers.length > 0 && validation.trustedCa === undefined && validationSdsName === undefined) {
    // Envoy refuses this too: without a CA any self-signed certificate could claim the SAN.
    configError(child(cat, 'validation_context'), 'SAN-based verification of peer certificates without trusted_ca is insecure and not allowed');
  }
  const sni = optStr(ctx.sni, child(at, 'sni'));
  return Object.freeze({
    sni: sni === '' ? undefined : sni,
    alpn: Object.freeze(alpn),
    certificates: Object.freeze(certificates),
    certificateSdsNames: Object.freeze(certificateSdsNames),
    validation,
    validationSdsName,
    minVersion: version('tls_minimum_protocol_version'),
    maxVersion: version('tls_maximum_protocol_version'),
  });
}

/** Parses a cluster's `transport_socket` (undefined = plaintext). Only the TLS socket is supported. */
export function parseTransportSocket(ts: XdsJson, at: string): UpstreamTlsConfig | undefined {
  const typed = optObj(ts.typed_config, child(at, 'typed_config'));
  const name = optStr(ts.name, child(at, 'name'));
  if (typed === undefined) {
    if (name === 'envoy.transport_sockets.raw_buffer' || name === undefined) return undefined;
    configError(child(at, 'typed_config'), `transport socket '${name}' needs a typed_config`);
  }
  const type = typed['@type'];
  if (type === UpstreamTlsContextType) return parseUpstreamTlsContext(typed, child(at, 'typed_config'));
  if (type === 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer') return undefined;
  configError(child(at, 'typed_config'), `unsupported transport socket type ${JSON.stringify(type)}`);
}
