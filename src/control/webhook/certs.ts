/**
 * Small X.509 issuing for the Kubernetes side of the control plane: a self-signed CA and the
 * serving certificate of the admission webhook (the API server calls it over HTTPS and trusts the
 * CA through the webhook configuration's `caBundle`), and the certificates a test gives a real
 * kube-apiserver. ECDSA P-256 keys from node:crypto, certificates encoded with the
 * `@peculiar/asn1-x509` schema and signed with node:crypto: no global polyfills, no openssl
 * process. The mesh's workload CA (SPIFFE identities) is a separate concern (src/control/ca/).
 */
import { X509Certificate, createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier, AttributeTypeAndValue, AttributeValue, BasicConstraints, Certificate, ExtendedKeyUsage, Extension,
  Extensions, GeneralName, KeyUsage, KeyUsageFlags, Name, RelativeDistinguishedName, SubjectAlternativeName, SubjectKeyIdentifier,
  AuthorityKeyIdentifier, SubjectPublicKeyInfo, TBSCertificate, Validity, Version,
  id_ce_authorityKeyIdentifier, id_ce_basicConstraints, id_ce_extKeyUsage, id_ce_keyUsage, id_ce_subjectAltName, id_ce_subjectKeyIdentifier,
  id_kp_clientAuth, id_kp_serverAuth,
} from '@peculiar/asn1-x509';

const ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const OID_CN = '2.5.4.3';
const OID_O = '2.5.4.10';

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
  /** Organizations (Kubernetes reads these as the client's groups, e.g. `system:masters`). */
  readonly organizations?: readonly string[];
  /** DNS names and IP addresses; each goes into subjectAltName as the right kind. */
  readonly hosts?: readonly string[];
  readonly usage?: 'server' | 'client' | 'both';
  /** Validity in days (default 365). */
  readonly days?: number;
}

function name(cn: string, orgs: readonly string[] = []): Name {
  const rdn = (type: string, value: string) => new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value: new AttributeValue({ utf8String: value }) })]);
  return new Name([...orgs.map((o) => rdn(OID_O, o)), rdn(OID_CN, cn)]);
}

function ext(id: string, critical: boolean, value: unknown): Extension {
  return new Extension({ extnID: id, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

function keyId(spki: ArrayBuffer): ArrayBuffer {
  const sha = createHash('sha1').update(new Uint8Array(spki)).digest();
  return sha.buffer.slice(sha.byteOffset, sha.byteOffset + sha.byteLength);
}

function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

function issue(req: CertRequest, ca: { cert: X509Certificate; key: KeyObject } | undefined, isCa: boolean): IssuedCert {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spkiDer = publicKey.export({ type: 'spki', format: 'der' });
  const spki = AsnConvert.parse(spkiDer, SubjectPublicKeyInfo);
  const subject = name(req.commonName, req.organizations);
  const issuer = ca ? AsnConvert.parse(ca.cert.raw, Certificate).tbsCertificate.subject : subject;
  const issuerSpki = ca ? ca.cert.publicKey.export({ type: 'spki', format: 'der' }) : spkiDer;
  const now = Date.now();
  const extensions = [ext(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(keyId(spki.subjectPublicKey)))];
  extensions.push(ext(id_ce_authorityKeyIdentifier, false, new AuthorityKeyIdentifier({ keyIdentifier: new OctetString(keyId(AsnConvert.parse(issuerSpki, SubjectPublicKeyInfo).subjectPublicKey)) })));
  if (isCa) {
    extensions.push(ext(id_ce_basicConstraints, true, new BasicConstraints({ cA: true })));
    extensions.push(ext(id_ce_keyUsage, true, new KeyUsage(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign | KeyUsageFlags.digitalSignature)));
  } else {
    extensions.push(ext(id_ce_basicConstraints, true, new BasicConstraints({ cA: false })));
    extensions.push(ext(id_ce_keyUsage, true, new KeyUsage(KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment)));
    const usage = req.usage ?? 'server';
    const eku = usage === 'server' ? [id_kp_serverAuth] : usage === 'client' ? [id_kp_clientAuth] : [id_kp_serverAuth, id_kp_clientAuth];
    extensions.push(ext(id_ce_extKeyUsage, false, new ExtendedKeyUsage(eku)));
    const hosts = req.hosts ?? [];
    if (hosts.length > 0) {
      const names = hosts.map((h) => (isIP(h) !== 0 ? new GeneralName({ iPAddress: h }) : new GeneralName({ dNSName: h })));
      extensions.push(ext(id_ce_subjectAltName, false, new SubjectAlternativeName(names)));
    }
  }
  const serial = randomBytes(16);
  serial[0] &= 0x7f; // positive INTEGER
  const alg = new AlgorithmIdentifier({ algorithm: ECDSA_SHA256 });
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: serial.buffer.slice(serial.byteOffset, serial.byteOffset + serial.byteLength),
    signature: alg,
    issuer,
    // Backdated a minute: a freshly started API server on a slightly skewed clock must accept it.
    validity: new Validity({ notBefore: new Date(now - 60_000), notAfter: new Date(now + (req.days ?? 365) * 86_400_000) }),
    subject,
    subjectPublicKeyInfo: spki,
    extensions: new Extensions(extensions),
  });
  const tbsDer = new Uint8Array(AsnConvert.serialize(tbs));
  const signature = sign('sha256', tbsDer, { key: ca?.key ?? privateKey, dsaEncoding: 'der' });
  const certDer = new Uint8Array(AsnConvert.serialize(new Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: alg,
    signatureValue: signature.buffer.slice(signature.byteOffset, signature.byteOffset + signature.byteLength),
  })));
  const certPem = pem('CERTIFICATE', certDer);
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { certPem, keyPem, key: createPrivateKey(keyPem), cert: new X509Certificate(certPem) };
}

/** A self-signed CA certificate. */
export function createCa(commonName: string, days = 3650): IssuedCert {
  return issue({ commonName, days }, undefined, true);
}

/** A leaf certificate signed by `ca`. */
export function issueCert(ca: Pick<IssuedCert, 'cert' | 'key'>, req: CertRequest): IssuedCert {
  return issue(req, ca, false);
}
