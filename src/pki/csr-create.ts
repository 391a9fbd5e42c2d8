/**
 * Creating a PKCS #10 certificate signing request (RFC 2986) for a workload key: subject left
 * empty and the SPIFFE URI SANs in an extensionRequest attribute, as Istio's agent sends. Written
 * as DER by hand, not with the ASN.1 schema libraries csr.ts parses with: the structure is fixed,
 * and those libraries (every X.509 schema) stay on the heap of every sidecar that makes a CSR,
 * ~1.5 MB per proxy (heap snapshot, 2026-12-07), for something a CA-side parser needs.
 */
import { createPublicKey, sign, type KeyObject } from 'node:crypto';
import { TrellisError } from '../errors.ts';
import { signatureAlgorithm } from './keys.ts';
import { toPem } from './pem.ts';

const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const SUBJECT_ALT_NAME = '2.5.29.17';

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One DER element: tag, definite length, contents. */
function tlv(tag: number, ...contents: Uint8Array[]): Buffer {
  const body = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

function oid(dotted: string): Buffer {
  const [first, second, ...rest] = dotted.split('.').map(Number);
  const out = [40 * first + second];
  for (const n of rest) {
    const base128 = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) base128.unshift(0x80 | (v & 0x7f));
    out.push(...base128);
  }
  return tlv(0x06, Buffer.from(out));
}

/** A CSR for `privateKey` asking for the given URI SANs (subject left empty, as Istio's agent does). */
export function createCsr(privateKey: KeyObject, uriSans: readonly string[]): string {
  const names = uriSans.map((u) => {
    // GeneralName uniformResourceIdentifier: [6] IMPLICIT IA5String (7-bit ASCII).
    if (!/^[\x20-\x7e]*$/.test(u)) throw new TrellisError('PKI_CSR_INVALID', `certificate signing request: URI SAN '${u}' is not printable ASCII`);
    return tlv(0x86, Buffer.from(u, 'latin1'));
  });
  const sanExtension = tlv(0x30, oid(SUBJECT_ALT_NAME), tlv(0x01, Buffer.from([0xff])), tlv(0x04, tlv(0x30, ...names)));
  const info = tlv(
    0x30,
    tlv(0x02, Buffer.from([0])), // version 0 (v1)
    tlv(0x30), // subject: empty Name
    createPublicKey(privateKey).export({ type: 'spki', format: 'der' }),
    // attributes [0] IMPLICIT SET OF Attribute { extensionRequest, SET { Extensions } }
    tlv(0xa0, tlv(0x30, oid(EXTENSION_REQUEST), tlv(0x31, tlv(0x30, sanExtension)))),
  );
  const alg = signatureAlgorithm(privateKey);
  const algorithm = tlv(0x30, oid(alg.oid), ...(alg.params === null ? [] : [new Uint8Array(alg.params)]));
  const signature = tlv(0x03, Buffer.from([0]), sign('sha256', info, privateKey));
  return toPem('CERTIFICATE REQUEST', tlv(0x30, info, algorithm, signature));
}
