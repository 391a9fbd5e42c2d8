/**
 * Parsing Envoy's `UpstreamTlsContext` (proto3 JSON) into a frozen `UpstreamTlsConfig`: client
 * certificates (inline or from files, read once when the config is applied), trusted CA, SAN
 * matchers, SNI and ALPN. Certificates that arrive by SDS are kept as names and resolved through a
 * `SecretProvider` when a connection is made, so a rotated secret applies to new connections
 * without rebuilding the cluster. Building `tls.connect` options is `upstream-tls.ts`'s job.
 */
import { readFileSync } from 'node:fs';
import type { XdsJson } from '../../xds/types.ts';
import { child, invalid, isObject, optArray, optBool, optObject, optString, type FieldPath } from '../upstream/xds-read.ts';

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
export function readDataSource(ds: XdsJson, at: FieldPath): string {
  const filename = optString(ds, 'filename', at);
  if (filename !== undefined) {
    try {
      return readFileSync(filename, 'utf8');
    } catch (err) {
      throw invalid(child(at, 'filename'), `cannot read '${filename}': ${(err as Error).message}`);
    }
  }
  const inline = optString(ds, 'inline_string', at);
  if (inline !== undefined) return inline;
  const bytes = optString(ds, 'inline_bytes', at);
  if (bytes !== undefined) return Buffer.from(bytes, 'base64').toString('utf8');
  const env = optString(ds, 'environment_variable', at);
  if (env !== undefined) {
    // Read here (config apply time) because Envoy reads it once at load too.
    const v = process.env[env];
    if (v === undefined) throw invalid(child(at, 'environment_variable'), `environment variable '${env}' is not set`);
    return v;
  }
  throw invalid(at, 'data source needs one of filename, inline_string, inline_bytes, environment_variable');
}

/** Parses an envoy.type.matcher.v3.StringMatcher. */
export function parseStringMatcher(m: XdsJson, at: FieldPath): StringMatch {
  const ignoreCase = optBool(m, 'ignore_case', at) ?? false;
  for (const kind of ['exact', 'prefix', 'suffix', 'contains'] as const) {
    const v = optString(m, kind, at);
    if (v !== undefined) return { kind, value: ignoreCase ? v.toLowerCase() : v, ignoreCase };
  }
  const re = optObject(m, 'safe_regex', at);
  if (re !== undefined) {
    const src = optString(re, 'regex', child(at, 'safe_regex')) ?? '';
    try {
      // Envoy's safe_regex is RE2 full-match; anchoring gives the same whole-string semantics.
      return { kind: 'regex', regex: new RegExp(`^(?:${src})$`, ignoreCase ? 'i' : '') };
    } catch (err) {
      throw invalid(child(child(at, 'safe_regex'), 'regex'), `invalid regex: ${(err as Error).message}`);
    }
  }
  throw invalid(at, 'string matcher needs one of exact, prefix, suffix, contains, safe_regex');
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
export function parseValidationContext(vc: XdsJson, at: FieldPath): ValidationContext {
  const caSrc = optObject(vc, 'trusted_ca', at);
  const trustedCa = caSrc === undefined ? undefined : readDataSource(caSrc, child(at, 'trusted_ca'));
  const sanMatchers: SanMatcher[] = [];
  optArray(vc, 'match_typed_subject_alt_names', at).forEach((raw, i) => {
    const p = child(child(at, 'match_typed_subject_alt_names'), i);
    if (!isObject(raw)) throw invalid(p, 'expected an object');
    const t = raw.san_type;
    if (typeof t !== 'string' || !(sanTypes as readonly string[]).includes(t) || t === 'SAN_TYPE_UNSPECIFIED' || t === 'OTHER_NAME') {
      throw invalid(child(p, 'san_type'), `unsupported SAN type ${JSON.stringify(t)} (expected DNS, URI, EMAIL or IP_ADDRESS)`);
    }
    const matcher = optObject(raw, 'matcher', p);
    if (matcher === undefined) throw invalid(child(p, 'matcher'), 'required');
    sanMatchers.push({ sanType: t as SanMatcher['sanType'], match: parseStringMatcher(matcher, child(p, 'matcher')) });
  });
  optArray(vc, 'match_subject_alt_names', at).forEach((raw, i) => {
    const p = child(child(at, 'match_subject_alt_names'), i);
    if (!isObject(raw)) throw invalid(p, 'expected an object');
    sanMatchers.push({ sanType: undefined, match: parseStringMatcher(raw, p) });
  });
  return Object.freeze({ trustedCa, sanMatchers: Object.freeze(sanMatchers) });
}

/** Parses an UpstreamTlsContext (the transport socket's typed_config). */
export function parseUpstreamTlsContext(ctx: XdsJson, at: FieldPath): UpstreamTlsConfig {
  const common = optObject(ctx, 'common_tls_context', at) ?? {};
  const cat = child(at, 'common_tls_context');
  const certificates: TlsCertificate[] = [];
  optArray(common, 'tls_certificates', cat).forEach((raw, i) => {
    const p = child(child(cat, 'tls_certificates'), i);
    if (!isObject(raw)) throw invalid(p, 'expected an object');
    const chain = optObject(raw, 'certificate_chain', p);
    const key = optObject(raw, 'private_key', p);
    if (chain === undefined || key === undefined) throw invalid(p, 'certificate_chain and private_key are required');
    certificates.push({ certChain: readDataSource(chain, child(p, 'certificate_chain')), privateKey: readDataSource(key, child(p, 'private_key')) });
  });
  const certificateSdsNames = optArray(common, 'tls_certificate_sds_secret_configs', cat).map((raw, i) => {
    const p = child(child(cat, 'tls_certificate_sds_secret_configs'), i);
    const name = isObject(raw) ? optString(raw, 'name', p) : undefined;
    if (name === undefined || name === '') throw invalid(child(p, 'name'), 'required');
    return name;
  });
  let validation: ValidationContext | undefined;
  let validationSdsName: string | undefined;
  const vc = optObject(common, 'validation_context', cat);
  if (vc !== undefined) validation = parseValidationContext(vc, child(cat, 'validation_context'));
  const combined = optObject(common, 'combined_validation_context', cat);
  if (combined !== undefined) {
    const cp = child(cat, 'combined_validation_context');
    const def = optObject(combined, 'default_validation_context', cp);
    if (def !== undefined) validation = parseValidationContext(def, child(cp, 'default_validation_context'));
    const sds = optObject(combined, 'validation_context_sds_secret_config', cp);
    if (sds !== undefined) validationSdsName = optString(sds, 'name', child(cp, 'validation_context_sds_secret_config'));
  }
  const vsds = optObject(common, 'validation_context_sds_secret_config', cat);
  if (vsds !== undefined) validationSdsName = optString(vsds, 'name', child(cat, 'validation_context_sds_secret_config'));
  const alpn = optArray(common, 'alpn_protocols', cat).map((v, i) => {
    if (typeof v !== 'string' || v === '') throw invalid(child(child(cat, 'alpn_protocols'), i), 'expected a non-empty string');
    return v;
  });
  const params = optObject(common, 'tls_params', cat) ?? {};
  const version = (field: string): UpstreamTlsConfig['minVersion'] => {
    const v = optString(params, field, child(cat, 'tls_params'));
    if (v === undefined || v === 'TLS_AUTO' || v === 'TLSv1_0' || v === 'TLSv1_1') return undefined;
    if (v === 'TLSv1_2') return 'TLSv1.2';
    if (v === 'TLSv1_3') return 'TLSv1.3';
    throw invalid(child(child(cat, 'tls_params'), field), `unknown TLS version '${v}'`);
  };
  if (validation !== undefined && validation.sanMatchers.length > 0 && validation.trustedCa === undefined && validationSdsName === undefined) {
    // Envoy refuses this too: without a CA any self-signed certificate could claim the SAN.
    throw invalid(child(cat, 'validation_context'), 'SAN-based verification of peer certificates without trusted_ca is insecure and not allowed');
  }
  const sni = optString(ctx, 'sni', at);
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
export function parseTransportSocket(ts: XdsJson, at: FieldPath): UpstreamTlsConfig | undefined {
  const typed = optObject(ts, 'typed_config', at);
  const name = optString(ts, 'name', at);
  if (typed === undefined) {
    if (name === 'envoy.transport_sockets.raw_buffer' || name === undefined) return undefined;
    throw invalid(child(at, 'typed_config'), `transport socket '${name}' needs a typed_config`);
  }
  const type = typed['@type'];
  if (type === UpstreamTlsContextType) return parseUpstreamTlsContext(typed, child(at, 'typed_config'));
  if (type === 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer') return undefined;
  throw invalid(child(at, 'typed_config'), `unsupported transport socket type ${JSON.stringify(type)}`);
}
