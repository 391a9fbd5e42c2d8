/**
 * Turning a frozen `UpstreamTlsConfig` into `tls.connect` options for one connection, and checking
 * the peer the way Envoy does: the chain must verify against `trusted_ca` when one is configured
 * (no validation context = no peer verification, as in Envoy), and when SAN matchers are present
 * at least one SAN of the leaf certificate must match one of them. Envoy does not compare the
 * certificate to the SNI/hostname unless asked, so neither do we.
 */
import type { ConnectionOptions, PeerCertificate } from 'node:tls';
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

/**
 * `tls.connect` options for one connection to `host`. `authority` is the request's host, used as
 * SNI only when the config has no `sni` (Envoy's auto_sni behaviour, which Istio relies on).
 * Throws TrellisError('TLS_SECRET_MISSING') when an SDS secret has not arrived yet.
 */
export function tlsConnectOptions(cfg: UpstreamTlsConfig, secrets: SecretProvider, host: string, authority?: string): ConnectionOptions {
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
  if (validation !== undefined && validation.sanMatchers.length > 0 && validation.trustedCa === undefined) {
    throw new TrellisError('TLS_NO_TRUSTED_CA', 'SAN-based verification of peer certificates without trusted_ca is insecure and not allowed');
  }
  const sniHost = cfg.sni ?? (authority === undefined ? undefined : stripPort(authority));
  const opts: ConnectionOptions = {
    host,
    ALPNProtocols: cfg.alpn.length > 0 ? [...cfg.alpn] : undefined,
    minVersion: cfg.minVersion,
    maxVersion: cfg.maxVersion,
    rejectUnauthorized: validation?.trustedCa !== undefined,
  };
  // SNI must be a hostname, never an IP literal (RFC 6066 section 3).
  if (sniHost !== undefined && sniHost !== '' && !/^[\d.]+$|:/.test(sniHost)) opts.servername = sniHost;
  if (cert !== undefined) {
    opts.cert = cert.certChain;
    opts.key = cert.privateKey;
  }
  if (validation?.trustedCa !== undefined) opts.ca = validation.trustedCa;
  const matchers = validation?.sanMatchers ?? [];
  opts.checkServerIdentity = (_hostname, peer) => {
    if (sansMatch(peer, matchers)) return undefined;
    return Object.assign(new Error(`upstream certificate SANs [${peer.subjectaltname ?? ''}] match none of the configured subject alt name matchers`), {
      code: 'ERR_TLS_SAN_MISMATCH',
    });
  };
  return opts;
}

function stripPort(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(1, authority.indexOf(']'));
  const i = authority.lastIndexOf(':');
  return i > 0 && authority.indexOf(':') === i ? authority.slice(0, i) : authority;
}
