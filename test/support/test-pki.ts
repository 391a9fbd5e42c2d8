/**
 * A throwaway PKI for TLS end-to-end tests (egress TLS origination, ingress TLS): a test root CA
 * and leaf certificates for DNS names signed by it, written as PEM files into a directory, plus
 * `kubernetes.io/tls` Secret YAML for `credentialName` / `certificateRefs`. Built with our own
 * src/pki (no openssl needed); the tests then check the result with curl and openssl.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueCertificate } from '../../src/pki/certificate.ts';
import { generateKey } from '../../src/pki/keys.ts';

/** PEM files of one certificate and key. */
export interface PemPair {
  readonly cert: string;
  readonly key: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TestCa extends PemPair {
  readonly dir: string;
  /** A leaf certificate for `dnsNames` (server and client auth), optionally with URI and IP SANs. */
  leaf(name: string, dnsNames: readonly string[], uriSans?: readonly string[], ipSans?: readonly string[]): Promise<PemPair>;
}

/** A self-signed test root CA in a fresh temp directory (or `dir`). */
export async function testCa(commonName = 'Trellis Test Root', dir = mkdtempSync(join(tmpdir(), 'trellis-pki-'))): Promise<TestCa> {
  const now = Date.now();
  const k = await generateKey('ECDSA_P256');
  const cert = issueCertificate({ organization: 'Trellis tests', commonName, isCa: true, notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000), publicKey: k.publicKey }, { certificate: undefined, privateKey: k.privateKey });
  const write = (name: string, certPem: string, keyPem: string): PemPair => {
    const certFile = join(dir, `${name}.pem`);
    const keyFile = join(dir, `${name}.key`);
    writeFileSync(certFile, certPem);
    writeFileSync(keyFile, keyPem, { mode: 0o600 });
    return { cert: certPem, key: keyPem, certFile, keyFile };
  };
  const root = write('ca', cert, k.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  const issuer = { certificate: new X509Certificate(cert), privateKey: k.privateKey };
  return {
    ...root,
    dir,
    async leaf(name, dnsNames, uriSans = [], ipSans = []) {
      const lk = await generateKey('ECDSA_P256');
      const pem = issueCertificate({ commonName: dnsNames[0] ?? ipSans[0], dnsSans: dnsNames, uriSans, ipSans, isCa: false, notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000), publicKey: lk.publicKey }, issuer);
      return write(name, pem, lk.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    },
  };
}

/** A `kubernetes.io/tls` Secret (tls.crt, tls.key and, when given, ca.crt), as YAML. */
export function tlsSecretYaml(o: { name: string; namespace?: string; cert?: string; key?: string; ca?: string }): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const data = [
    ...(o.cert !== undefined ? [`  tls.crt: ${b64(o.cert)}`] : []),
    ...(o.key !== undefined ? [`  tls.key: ${b64(o.key)}`] : []),
    ...(o.ca !== undefined ? [`  ca.crt: ${b64(o.ca)}`] : []),
  ];
  return `apiVersion: v1
kind: Secret
metadata: {name: ${o.name}, namespace: ${o.namespace ?? 'default'}}
type: kubernetes.io/tls
data:
${data.join('\n')}
`;
}
