/**
 * Key pairs for workload and CA certificates: ECDSA P-256 (the default, as Istio's
 * ECC_SIGNATURE_ALGORITHM) or RSA 2048, and the X.509 signature algorithm a key signs with.
 * Keys are Node KeyObjects and never serialized except to PEM for the holder's own use.
 */
import { generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { TrellisError } from '../errors.ts';

const generate = promisify(generateKeyPair);

/** Key algorithms we issue and request. */
export type KeyAlgorithm = 'ECDSA_P256' | 'RSA_2048';

/** Parses a key algorithm name (case-insensitive; `ecdsa`, `ec`, `p256`, `rsa`, `rsa2048`). */
export function parseKeyAlgorithm(text: string): KeyAlgorithm {
  const t = text.toLowerCase().replace(/[-_ ]/g, '');
  if (['ecdsa', 'ec', 'p256', 'ecdsap256'].includes(t)) return 'ECDSA_P256';
  if (['rsa', 'rsa2048'].includes(t)) return 'RSA_2048';
  throw new TrellisError('PKI_KEY_ALGORITHM', `unknown key algorithm '${text}' (expected ECDSA_P256 or RSA_2048)`);
}

/** A fresh key pair. Asynchronous: RSA generation takes tens of milliseconds, off the event loop. */
export async function generateKey(alg: KeyAlgorithm): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
  if (alg === 'RSA_2048') return generate('rsa', { modulusLength: 2048 });
  return generate('ec', { namedCurve: 'P-256' });
}

/** OID and DER parameters of the signature algorithm `key` signs with (SHA-256 in both cases). */
export function signatureAlgorithm(key: KeyObject): { oid: string; params: ArrayBuffer | null } {
  switch (key.asymmetricKeyType) {
    case 'ec': return { oid: '1.2.840.10045.4.3.2', params: null }; // ecdsa-with-SHA256: parameters absent (RFC 5758)
    case 'rsa': return { oid: '1.2.840.113549.1.1.11', params: new Uint8Array([5, 0]).buffer }; // sha256WithRSAEncryption: NULL
    default: throw new TrellisError('PKI_KEY_ALGORITHM', `unsupported key type '${key.asymmetricKeyType}' (ECDSA P-256 or RSA)`);
  }
}
