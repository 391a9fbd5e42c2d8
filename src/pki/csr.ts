/**
 * PKCS #10 certificate signing requests (RFC 2986) received by the CA: parsing one from a caller and
 * verifying its self-signature so the requester provably holds the private key. Creating one (the
 * proxy's side) is csr-create.ts, without the ASN.1 schema libraries this module parses with.
 * The CSR is untrusted input on the CA side: every failure is a PKI_CSR_INVALID error naming what
 * is wrong.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import * as asn from '@peculiar/asn1-x509';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { TrellisError } from '../errors.ts';
import { pemBlocks } from './pem.ts';

const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const SIGNATURE_HASH: Record<string, string> = {
  '1.2.840.10045.4.3.2': 'sha256', '1.2.840.10045.4.3.3': 'sha384', '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256', '1.2.840.113549.1.1.12': 'sha384', '1.2.840.113549.1.1.13': 'sha512',
};

/** A parsed, signature-checked CSR. */
export interface ParsedCsr {
  readonly publicKey: KeyObject;
  readonly uriSans: readonly string[];
  readonly dnsSans: readonly string[];
}

function bad(msg: string, cause?: unknown): TrellisError {
  return new TrellisError('PKI_CSR_INVALID', `certificate signing request: ${msg}`, cause === undefined ? {} : { cause });
}

/** Parses a PEM CSR and verifies its signature. Throws PKI_CSR_INVALID. */
export function parseCsr(pem: string): ParsedCsr {
  const block = pemBlocks(pem).find((b) => b.label === 'CERTIFICATE REQUEST' || b.label === 'NEW CERTIFICATE REQUEST');
  if (block === undefined) throw bad('no PEM block "CERTIFICATE REQUEST"');
  let csr: CertificationRequest;
  try {
    csr = AsnConvert.parse(block.der, CertificationRequest);
  } catch (err) {
    throw bad(`not a PKCS #10 structure: ${(err as Error).message}`, err);
  }
  const info = csr.certificationRequestInfo;
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(AsnConvert.serialize(info.subjectPKInfo)), format: 'der', type: 'spki' });
  } catch (err) {
    throw bad(`unreadable public key: ${(err as Error).message}`, err);
  }
  if (publicKey.asymmetricKeyType === 'ec' && publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw bad(`EC key on curve ${publicKey.asymmetricKeyDetails?.namedCurve}; only P-256 is accepted`);
  }
  if (publicKey.asymmetricKeyType === 'rsa' && (publicKey.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    throw bad(`RSA key of ${publicKey.asymmetricKeyDetails?.modulusLength} bits; at least 2048 are required`);
  }
  if (publicKey.asymmetricKeyType !== 'ec' && publicKey.asymmetricKeyType !== 'rsa') throw bad(`unsupported key type ${publicKey.asymmetricKeyType}`);
  const hash = SIGNATURE_HASH[csr.signatureAlgorithm.algorithm];
  if (hash === undefined) throw bad(`unsupported signature algorithm ${csr.signatureAlgorithm.algorithm}`);
  const signed = csr.certificationRequestInfoRaw !== undefined ? Buffer.from(csr.certificationRequestInfoRaw) : Buffer.from(AsnConvert.serialize(info));
  if (!verify(hash, signed, publicKey, Buffer.from(csr.signature))) throw bad('signature does not verify with the enclosed public key');
  const uriSans: string[] = [];
  const dnsSans: string[] = [];
  for (const attr of info.attributes) {
    if (attr.type !== EXTENSION_REQUEST) continue;
    for (const v of attr.values) {
      let exts: asn.Extensions;
      try {
        exts = AsnConvert.parse(v, asn.Extensions);
      } catch (err) {
        throw bad('malformed extensionRequest attribute', err);
      }
      for (const e of exts) {
        if (e.extnID !== asn.id_ce_subjectAltName) continue;
        const names = AsnConvert.parse(e.extnValue.buffer, asn.SubjectAlternativeName);
        for (const n of names) {
          if (n.uniformResourceIdentifier !== undefined) uriSans.push(n.uniformResourceIdentifier);
          else if (n.dNSName !== undefined) dnsSans.push(n.dNSName);
        }
      }
    }
  }
  return Object.freeze({ publicKey, uriSans: Object.freeze(uriSans), dnsSans: Object.freeze(dnsSans) });
}
