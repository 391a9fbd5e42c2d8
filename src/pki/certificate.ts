/**
 * Building X.509 v3 certificates (RFC 5280) signed by a Node KeyObject: CA certificates (root or
 * intermediate: basicConstraints CA, keyCertSign) and workload leaf certificates in Istio's shape
 * (empty subject, critical SAN with the SPIFFE URI, digitalSignature + keyEncipherment, serverAuth +
 * clientAuth), and the serving and client certificates of the Kubernetes side (DNS and IP SANs,
 * O= as the client's groups). Subject and authority key identifiers are always set so chains build unambiguously
 * when an old and a new root share a subject name (root rotation). Encoding is
 * @peculiar/asn1-x509's; signing and parsing are node:crypto's.
 */
import { createHash, randomBytes, sign, type KeyObject, X509Certificate } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import * as asn from '@peculiar/asn1-x509';
import { signatureAlgorithm } from './keys.ts';
import { toPem } from './pem.ts';

/** What goes into a certificate. */
export interface CertificateTemplate {
  /** Subject organization (O=); Istio puts the trust domain there for CA certificates. */
  readonly organization?: string;
  readonly commonName?: string;
  readonly uriSans?: readonly string[];
  readonly dnsSans?: readonly string[];
  /** IP address SANs (a webhook or API server reached by address). */
  readonly ipSans?: readonly string[];
  readonly isCa: boolean;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The certified public key. */
  readonly publicKey: KeyObject;
}

/** The issuer: its certificate (undefined = self-signed) and private key. */
export interface Issuer {
  readonly certificate: X509Certificate | undefined;
  readonly privateKey: KeyObject;
}

function ab(buf: Uint8Array): ArrayBuffer {
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
}

function name(o: string | undefined, cn: string | undefined): asn.Name {
  const rdns: asn.RelativeDistinguishedName[] = [];
  if (o !== undefined) rdns.push(new asn.RelativeDistinguishedName([new asn.AttributeTypeAndValue({ type: '2.5.4.10', value: new asn.AttributeValue({ utf8String: o }) })]));
  if (cn !== undefined) rdns.push(new asn.RelativeDistinguishedName([new asn.AttributeTypeAndValue({ type: '2.5.4.3', value: new asn.AttributeValue({ utf8String: cn }) })]));
  return new asn.Name(rdns);
}

function ext(id: string, critical: boolean, value: unknown): asn.Extension {
  return new asn.Extension({ extnID: id, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

/** SHA-1 of the subjectPublicKey bit string (RFC 5280 4.2.1.2 method 1). */
function keyIdentifier(spkiDer: Buffer): ArrayBuffer {
  const spki = AsnConvert.parse(spkiDer, asn.SubjectPublicKeyInfo);
  return ab(createHash('sha1').update(Buffer.from(spki.subjectPublicKey)).digest());
}

/** Issues a certificate; returns its PEM. */
export function issueCertificate(t: CertificateTemplate, issuer: Issuer): string {
  const spkiDer = t.publicKey.export({ type: 'spki', format: 'der' });
  const serial = randomBytes(16);
  serial[0] &= 0x7f; // positive INTEGER
  if (serial[0] === 0) serial[0] = 1; // and minimally encoded
  const sig = signatureAlgorithm(issuer.privateKey);
  const algId = new asn.AlgorithmIdentifier({ algorithm: sig.oid, parameters: sig.params });
  const issuerName = issuer.certificate !== undefined ? AsnConvert.parse(issuer.certificate.raw, asn.Certificate).tbsCertificate.subject : name(t.organization, t.commonName);
  const issuerSpki = issuer.certificate !== undefined ? issuer.certificate.publicKey.export({ type: 'spki', format: 'der' }) : spkiDer;
  const extensions: asn.Extension[] = [];
  if (t.isCa) {
    extensions.push(ext(asn.id_ce_basicConstraints, true, new asn.BasicConstraints({ cA: true })));
    extensions.push(ext(asn.id_ce_keyUsage, true, new asn.KeyUsage(asn.KeyUsageFlags.keyCertSign | asn.KeyUsageFlags.cRLSign | asn.KeyUsageFlags.digitalSignature)));
  } else {
    extensions.push(ext(asn.id_ce_basicConstraints, true, new asn.BasicConstraints({ cA: false })));
    extensions.push(ext(asn.id_ce_keyUsage, true, new asn.KeyUsage(asn.KeyUsageFlags.digitalSignature | asn.KeyUsageFlags.keyEncipherment)));
    extensions.push(ext(asn.id_ce_extKeyUsage, false, new asn.ExtendedKeyUsage([asn.id_kp_serverAuth, asn.id_kp_clientAuth])));
  }
  const general = [
    ...(t.uriSans ?? []).map((u) => new asn.GeneralName({ uniformResourceIdentifier: u })),
    ...(t.dnsSans ?? []).map((d) => new asn.GeneralName({ dNSName: d })),
    ...(t.ipSans ?? []).map((ip) => new asn.GeneralName({ iPAddress: ip })),
  ];
  // Workload leaves carry no organization (Istio's shape); a Kubernetes client certificate names
  // its groups there (O=system:masters).
  const subject = name(t.organization, t.commonName);
  // RFC 5280 4.2.1.6: with an empty subject the SAN extension must be critical.
  if (general.length > 0) extensions.push(ext(asn.id_ce_subjectAltName, subject.length === 0, new asn.SubjectAlternativeName(general)));
  extensions.push(ext(asn.id_ce_subjectKeyIdentifier, false, new asn.SubjectKeyIdentifier(keyIdentifier(spkiDer))));
  extensions.push(ext(asn.id_ce_authorityKeyIdentifier, false, new asn.AuthorityKeyIdentifier({ keyIdentifier: new asn.KeyIdentifier(keyIdentifier(issuerSpki)) })));
  const tbs = new asn.TBSCertificate({
    version: asn.Version.v3,
    serialNumber: ab(serial),
    signature: algId,
    issuer: issuerName,
    validity: new asn.Validity({ notBefore: t.notBefore, notAfter: t.notAfter }),
    subject,
    subjectPublicKeyInfo: AsnConvert.parse(spkiDer, asn.SubjectPublicKeyInfo),
    extensions: new asn.Extensions(extensions),
  });
  const signature = sign('sha256', Buffer.from(AsnConvert.serialize(tbs)), issuer.privateKey);
  const cert = new asn.Certificate({ tbsCertificate: tbs, signatureAlgorithm: algId, signatureValue: ab(signature) });
  return toPem('CERTIFICATE', Buffer.from(AsnConvert.serialize(cert)));
}
