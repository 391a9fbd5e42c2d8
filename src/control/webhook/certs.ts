/**
 * Certificates for the Kubernetes side of the control plane, on the shared X.509 building blocks
 * (src/pki): a self-signed CA and the serving certificate of the admission webhook (the API
 * server calls it over HTTPS and trusts the CA through the webhook configuration's `caBundle`),
 * and the certificates a test gives a real kube-apiserver. ECDSA P-256 keys. The mesh's workload
 * CA (SPIFFE identities) is src/control/ca.
 */
import { X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { issueCertificate } from '../../pki/certificate.ts';
import { generateKey } from '../../pki/keys.ts';

/** A certificate and its key, PEM-encoded. */
export interface IssuedCert {
  readonly certPem: string;
  readonly keyPem: string;
  /** The private key, for issuing further certificates when this one is a CA. */
  readonly key: KeyObject;
  readonly cert: X509Certificate;
}

/** What to put in a certificate. */
export interface CertRequest {
  readonly commonName: string;
  /** Organization (Kubernetes reads it as the client's group, e.g. `system:masters`). */
  readonly organization?: string;
  /** DNS names and IP addresses; each goes into subjectAltName as the right kind. */
  readonly hosts?: readonly string[];
  /** Validity in days (default 365). */
  readonly days?: number;
}

async function issue(req: CertRequest, ca: Pick<IssuedCert, 'cert' | 'key'> | undefined): Promise<IssuedCert> {
  const { privateKey, publicKey } = await generateKey('ECDSA_P256');
  const now = Date.now();
  const hosts = req.hosts ?? [];
  const certPem = issueCertificate({
    commonName: req.commonName,
    organization: req.organization,
    dnsSans: hosts.filter((h) => isIP(h) === 0),
    ipSans: hosts.filter((h) => isIP(h) !== 0),
    isCa: ca === undefined,
    // Backdated a minute: a freshly started API server on a slightly skewed clock must accept it.
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + (req.days ?? 365) * 86_400_000),
    publicKey,
  }, { certificate: ca?.cert, privateKey: ca?.key ?? privateKey });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { certPem, keyPem, key: privateKey, cert: new X509Certificate(certPem) };
}

/** A self-signed CA certificate. */
export function createCa(commonName: string, days = 3650): Promise<IssuedCert> {
  return issue({ commonName, days }, undefined);
}

/** A leaf certificate signed by `ca` (serverAuth and clientAuth). */
export function issueCert(ca: Pick<IssuedCert, 'cert' | 'key'>, req: CertRequest): Promise<IssuedCert> {
  return issue(req, ca);
}
