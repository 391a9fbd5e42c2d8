/**
 * Where the operating system keeps its bundle of trusted public roots (PEM). DestinationRules with
 * `tls.mode` SIMPLE or MUTUAL and neither `caCertificates` nor `credentialName` are verified against
 * it, as Istio does since VERIFY_CERTIFICATE_AT_CLIENT became the default: istiod names the OS
 * roots and the proxy host's agent reads them. We name the file in the cluster's
 * `validation_context.trusted_ca`, so the proxy host must have the bundle at the same path (the
 * usual case: control plane and proxies on one machine, or images of one distribution family).
 * The candidate list is the one Go's crypto/x509 (and Istio's agent) probes on Linux, in order.
 */
import { statSync } from 'node:fs';

/** Well-known system CA bundle files, most common first. */
export const SystemCaBundleCandidates: readonly string[] = Object.freeze([
  '/etc/ssl/certs/ca-certificates.crt', // Debian, Ubuntu, Gentoo, Arch
  '/etc/pki/tls/certs/ca-bundle.crt', // Fedora, RHEL 6
  '/etc/ssl/ca-bundle.pem', // openSUSE
  '/etc/pki/tls/cacert.pem', // OpenELEC
  '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem', // CentOS, RHEL 7+
  '/etc/ssl/cert.pem', // Alpine, macOS
  '/usr/local/etc/ssl/cert.pem', // FreeBSD
]);

/** The path translation uses when none was detected or given (Debian's; proxies without it fail closed). */
export const DefaultSystemCaBundle = SystemCaBundleCandidates[0];

function isNonEmptyFile(path: string): boolean {
  try {
    const s = statSync(path);
    return s.isFile() && s.size > 0;
  } catch {
    return false;
  }
}

/** The first candidate that exists as a non-empty file on this host, or undefined. */
export function detectSystemCaBundle(candidates: readonly string[] = SystemCaBundleCandidates, exists: (path: string) => boolean = isNonEmptyFile): string | undefined {
  return candidates.find((p) => exists(p));
}

/** Which bundle the control plane names, and where that choice came from. */
export interface SystemCaBundleChoice {
  readonly path: string;
  readonly source: 'flag' | 'env' | 'detected' | 'default';
}

/**
 * The bundle to name: the `--system-ca-bundle` flag, else the TRELLIS_SYSTEM_CA_BUNDLE value (the
 * caller reads the environment), else the first candidate found here, else the Debian path.
 */
export function chooseSystemCaBundle(flag: string | undefined, envValue: string | undefined, detect: () => string | undefined = detectSystemCaBundle): SystemCaBundleChoice {
  if (flag !== undefined && flag !== '') return { path: flag, source: 'flag' };
  if (envValue !== undefined && envValue !== '') return { path: envValue, source: 'env' };
  const found = detect();
  return found !== undefined ? { path: found, source: 'detected' } : { path: DefaultSystemCaBundle, source: 'default' };
}
