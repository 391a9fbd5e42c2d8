/**
 * Turning a frozen `UpstreamTlsConfig` into `tls.connect` options for one connection, and checking
 * the peer the way Envoy does: the chain must verify against `trusted_ca` when one is configured
 * (no validation context = no peer verification, as in Envoy), and when SAN matchers are present
 * at least one SAN of the leaf certificate must match one of them. Envoy does not compare the
 * certificate to the SNI/hostname unless asked, so neither do we: the SNI is the context's `sni`,
 * and only a cluster's `auto_sni` / `auto_san_validation` (UpstreamHttpProtocolOptions) make the
 * request's host the SNI and the name the certificate must carry (`autoTlsNames`).
 */
import { isIP } from 'node:net';
import { createSecureContext, type ConnectionOptions, type PeerCertificate, type SecureContext } from 'node:tls';
import { TrellisError } from '../../errors.ts';
import type { SecretProvider } from './secret-provider.ts';
import { matchString, type SanMatcher, type TlsCertificate, type UpstreamTlsConfig, type ValidationContext } from './upstream-tls-config.ts';

/** SANs of a peer certificate from node's `subjectaltname` string ("DNS:a, URI:spiffe://x, IP Address:1.2.3.4"). */
export function peerSans(cert: PeerCertificate): { type: 'DNS' | 'URI' | 'EMAIL' | 'IP_ADDRESS'; value: string }[] {
  const out: { type: 'DNS' | 'URI' | 'EMAIL' | 'IP_ADDRESS'; value: string }[] = [];
  const raw = cert.subjectaltname;
  if (raw === undefined || raw === '') return out;
  for (const part of raw.split(', ')) {
    const i = part.indexOf(':');
    if (i < 0) continue;
    const kind = part.slice(0, i);
    const value = part.slice(i + 1);
    if (kind === 'DNS') out.push({ type: 'DNS', value });
    else if (kind === 'URI') out.push({ type: 'URI', value });
    else if (kind === 'email') out.push({ type: 'EMAIL', value });
    else if (kind === 'IP Address') out.push({ type: 'IP_ADDRESS', value });
  }
  return out;
}

/** True when some SAN of the certificate satisfies some matcher (Envoy: any match accepts). */
export function sansMatch(cert: PeerCertificate, matchers: readonly SanMatcher[]): boolean {
  if (matchers.length === 0) return true;
  const sans = peerSans(cert);
  return matchers.some((m) => sans.some((s) => (m.sanType === undefined || m.sanType === s.type) && matchString(m.match, s.value)));
}

/** Per-request TLS names from the request's host (Envoy's transport socket options overrides). */
export interface AutoTlsNames {
  /** auto_sni: the SNI instead of the context's `sni` (never an IP address). */
  readonly sni?: string;
  /** auto_san_validation: the one name the server certificate must carry, instead of the SAN matchers. */
  readonly san?: string;
}

/** The cluster's auto_sni / auto_san_validation switches (see UpstreamHttpOptions). */
export interface AutoTlsSwitches {
  readonly autoSni: boolean;
  readonly autoSanValidation: boolean;
  readonly overrideAutoSniHeader: string | undefined;
}

/**
 * The SNI / expected SAN for one request, as Envoy's router derives them: the host of the
 * request's authority (after host rewrites), or the `override_auto_sni_header` value when the
 * request has it; port and IPv6 brackets stripped; no SNI for an IP address (the SAN check still
 * applies, against IP SANs). Undefined when the switches are off or there is no host.
 */
export function autoTlsNames(sw: AutoTlsSwitches | undefined, authority: string | undefined, headers?: Readonly<Record<string, string | string[]>>): AutoTlsNames | undefined {
  if (sw === undefined || (!sw.autoSni && !sw.autoSanValidation)) return undefined;
  let value = authority;
  if (sw.overrideAutoSniHeader !== undefined && headers !== undefined) {
    const h = headers[sw.overrideAutoSniHeader];
    const v = Array.isArray(h) ? h.join(',') : h;
    if (v !== undefined && v !== '') value = v;
  }
  const name = value === undefined ? '' : stripPort(value.trim()).toLowerCase();
  if (name === '') return undefined;
  const ip = isIP(name) !== 0;
  const out: { sni?: string; san?: string } = {};
  if (sw.autoSni && !ip) out.sni = name;
  if (sw.autoSanValidation) out.san = name;
  return out.sni === undefined && out.san === undefined ? undefined : out;
}

/**
 * Envoy's DNS SAN matching: equal ignoring case, or a `*.` wildcard standing for exactly one
 * leftmost label (`*.example.com` matches `a.example.com`, not `example.com` or `a.b.example.com`).
 */
export function dnsNameMatches(name: string, pattern: string): boolean {
  const n = name.toLowerCase();
  const p = pattern.toLowerCase();
  if (n === p) return true;
  if (p.length > 2 && p.startsWith('*.')) {
    const dot = n.indexOf('.');
    return dot > 0 && n.slice(dot) === p.slice(1);
  }
  return false;
}

/** True when the certificate has a DNS SAN matching `name` (wildcard-aware), or an IP SAN equal to it. */
export function certificateCarriesName(cert: PeerCertificate, name: string): boolean {
  const ip = isIP(name) !== 0;
  return peerSans(cert).some((s) => (ip ? s.type === 'IP_ADDRESS' && sameIp(s.value, name) : s.type === 'DNS' && dnsNameMatches(name, s.value)));
}

function sameIp(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase() || (isIP(a) === 6 && isIP(b) === 6 && expand6(a) === expand6(b));
}

function expand6(a: string): string {
  const [head, tail = ''] = a.toLowerCase().split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === '' ? [] : tail.split(':');
  const mid = a.includes('::') ? new Array(8 - h.length - t.length).fill('0') : [];
  return [...h, ...mid, ...t].map((x) => x.replace(/^0+(?=.)/, '')).join(':');
}

/**
 * `tls.connect` options for one connection to `host`. `auto` carries the request's host when the
 * cluster has auto_sni / auto_san_validation. Throws TrellisError('TLS_SECRET_MISSING') when an
 * SDS secret has not arrived yet, and TLS_NO_TRUSTED_CA for a SAN check without a CA.
 */
export function tlsConnectOptions(cfg: UpstreamTlsConfig, secrets: SecretProvider, host: string, auto?: AutoTlsNames): ConnectionOptions {
  let cert: TlsCertificate | undefined = cfg.certificates[0];
  if (cert === undefined && cfg.certificateSdsNames.length > 0) {
    const name = cfg.certificateSdsNames[0];
    cert = secrets.tlsCertificate(name);
    if (cert === undefined) throw new TrellisError('TLS_SECRET_MISSING', `TLS certificate secret '${name}' has not been received`, { context: { secret: name } });
  }
  let validation: ValidationContext | undefined = cfg.validation;
  if (cfg.validationSdsName !== undefined) {
    const sds = secrets.validationContext(cfg.validationSdsName);
    if (sds === undefined) {
      throw new TrellisError('TLS_SECRET_MISSING', `validation context secret '${cfg.validationSdsName}' has not been received`, { context: { secret: cfg.validationSdsName } });
    }
    // combined_validation_context: the SDS part supplies the CA, the default part adds matchers.
    validation = { trustedCa: sds.trustedCa ?? validation?.trustedCa, sanMatchers: [...(validation?.sanMatchers ?? []), ...sds.sanMatchers] };
  }
  const autoSan = auto?.san;
  if (((validation !== undefined && validation.sanMatchers.length > 0) || autoSan !== undefined) && validation?.trustedCa === undefined) {
    // Envoy would check an auto SAN without a CA too; any self-signed certificate could claim it, so we refuse.
    throw new TrellisError('TLS_NO_TRUSTED_CA', 'SAN-based verification of peer certificates without trusted_ca is insecure and not allowed');
  }
  const sniHost = auto?.sni ?? cfg.sni;
  const opts: ConnectionOptions = {
    host,
    ALPNProtocols: cfg.alpn.length > 0 ? [...cfg.alpn] : undefined,
    minVersion: cfg.minVersion,
    maxVersion: cfg.maxVersion,
    rejectUnauthorized: validation?.trustedCa !== undefined,
  };
  // SNI must be a hostname, never an IP literal (RFC 6066 section 3).
  if (sniHost !== undefined && sniHost !== '' && !/^[\d.]+$|:/.test(sniHost)) opts.servername = sniHost;
  // One secure context per client certificate and trust bundle: building one parses the key and
  // every CA certificate (~1 ms), which a pool opening 64 connections at once would pay 64 times.
  opts.secureContext = secureContextFor(cert, validation?.trustedCa, cfg.minVersion, cfg.maxVersion);
  const matchers = validation?.sanMatchers ?? [];
  opts.checkServerIdentity = (_hostname, peer) => {
    // auto_san_validation replaces the configured matchers with the request's host (Envoy's SAN override).
    if (autoSan !== undefined) {
      if (certificateCarriesName(peer, autoSan)) return undefined;
      return Object.assign(new Error(`upstream certificate SANs [${peer.subjectaltname ?? ''}] do not include the request host '${autoSan}' (auto_san_validation)`), {
        code: 'ERR_TLS_SAN_MISMATCH',
      });
    }
    if (sansMatch(peer, matchers)) return undefined;
    return Object.assign(new Error(`upstream certificate SANs [${peer.subjectaltname ?? ''}] match none of the configured subject alt name matchers`), {
      code: 'ERR_TLS_SAN_MISMATCH',
    });
  };
  return opts;
}

/** Contexts by certificate object (config and SDS secrets are frozen, rotation makes a new one), then trust bundle and versions. */
const contexts = new WeakMap<object, Map<string, SecureContext>>();
const NoCertificate = {};
/** A handful of trust bundles per certificate at most (rotation overlaps); more is a leak, not a cache. */
const MaxContextsPerCertificate = 8;

function secureContextFor(cert: TlsCertificate | undefined, ca: string | undefined, minVersion: UpstreamTlsConfig['minVersion'], maxVersion: UpstreamTlsConfig['maxVersion']): SecureContext {
  const holder = cert ?? NoCertificate;
  let byCa = contexts.get(holder);
  if (byCa === undefined) contexts.set(holder, (byCa = new Map()));
  const key = `${minVersion ?? ''}|${maxVersion ?? ''}|${ca ?? ''}`;
  let ctx = byCa.get(key);
  if (ctx === undefined) {
    ctx = createSecureContext({ cert: cert?.certChain, key: cert?.privateKey, ca, minVersion, maxVersion });
    if (byCa.size >= MaxContextsPerCertificate) byCa.delete(byCa.keys().next().value!);
    byCa.set(key, ctx);
  }
  return ctx;
}

function stripPort(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(1, authority.indexOf(']'));
  const i = authority.lastIndexOf(':');
  return i > 0 && authority.indexOf(':') === i ? authority.slice(0, i) : authority;
}
