/**
 * The CA's signing material from a directory in Istio's plug-in CA layout: `ca-cert.pem` (the
 * certificate we sign with), `ca-key.pem` (its key), `root-cert.pem` (the trust anchor(s)) and
 * `cert-chain.pem` (ca-cert up to the root; optional when ca-cert is itself the root). Everything
 * is checked before it is used: each file parses, the key matches the certificate, ca-cert is a CA
 * and currently valid, every certificate of the chain is valid and issued by the next, and the
 * chain ends at a certificate in root-cert.pem. A failure is CA_FILE_INVALID naming the file and
 * what is wrong, so the caller can keep its last good material. `createSelfSignedCa` writes a
 * fresh self-signed root in the same layout (Istio's self-signed istio-ca-secret).
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TrellisError } from '../../errors.ts';
import { issueCertificate } from '../../pki/certificate.ts';
import { generateKey, type KeyAlgorithm } from '../../pki/keys.ts';
import { splitCertificates } from '../../pki/pem.ts';

/** Validated signing material. */
export interface CaMaterial {
  readonly signingCert: X509Certificate;
  readonly signingKey: KeyObject;
  /** PEMs from ca-cert up to (not including) the root: what follows a leaf in a chain. */
  readonly intermediates: readonly string[];
  /** The root that anchors the chain (PEM). */
  readonly root: string;
  /** Every root in root-cert.pem (PEM), the anchor first. */
  readonly roots: readonly string[];
  /** Fingerprint of the files' contents, to tell a change from a re-read. */
  readonly fingerprint: string;
  /** Where it came from. */
  readonly dir: string;
}

export const CaFileNames = { cert: 'ca-cert.pem', key: 'ca-key.pem', root: 'root-cert.pem', chain: 'cert-chain.pem' } as const;

function invalid(dir: string, file: string, msg: string, cause?: unknown): TrellisError {
  return new TrellisError('CA_FILE_INVALID', `CA file ${join(dir, file)}: ${msg}`, { context: { file: join(dir, file) }, ...(cause !== undefined ? { cause } : {}) });
}

function read(dir: string, file: string, required: boolean): string | undefined {
  const p = join(dir, file);
  if (!existsSync(p)) {
    if (required) throw invalid(dir, file, 'missing');
    return undefined;
  }
  try {
    return readFileSync(p, 'utf8');
  } catch (err) {
    throw invalid(dir, file, `cannot read: ${(err as Error).message}`, err);
  }
}

function certs(dir: string, file: string, text: string): X509Certificate[] {
  const pems = splitCertificates(text);
  if (pems.length === 0) throw invalid(dir, file, 'no PEM CERTIFICATE block');
  return pems.map((p, i) => {
    try {
      return new X509Certificate(p);
    } catch (err) {
      throw invalid(dir, file, `certificate #${i + 1} is malformed: ${(err as Error).message}`, err);
    }
  });
}

function checkValid(dir: string, file: string, c: X509Certificate, now: number): void {
  if (Date.parse(c.validTo) <= now) throw invalid(dir, file, `certificate '${c.subject.replace(/\n/g, ', ')}' expired at ${new Date(c.validTo).toISOString()}`);
  if (Date.parse(c.validFrom) > now + 60_000) throw invalid(dir, file, `certificate '${c.subject.replace(/\n/g, ', ')}' is not valid before ${new Date(c.validFrom).toISOString()}`);
}

/** True when the directory holds at least ca-cert.pem or ca-key.pem. */
export function hasCaFiles(dir: string): boolean {
  return existsSync(join(dir, CaFileNames.cert)) || existsSync(join(dir, CaFileNames.key));
}

/** A cheap change detector for the directory (mtimes and sizes of the four files). */
export function caFilesStamp(dir: string): string {
  return Object.values(CaFileNames).map((f) => {
    try {
      const s = statSync(join(dir, f));
      return `${f}:${s.mtimeMs}:${s.size}`;
    } catch {
      return `${f}:-`;
    }
  }).join('|');
}

/** Loads and validates the material in `dir`. Throws CA_FILE_INVALID. */
export function loadCaFiles(dir: string, now = Date.now()): CaMaterial {
  const certText = read(dir, CaFileNames.cert, true)!;
  const keyText = read(dir, CaFileNames.key, true)!;
  const rootText = read(dir, CaFileNames.root, true)!;
  const chainText = read(dir, CaFileNames.chain, false) ?? '';
  const [signingCert] = certs(dir, CaFileNames.cert, certText);
  let signingKey: KeyObject;
  try {
    signingKey = createPrivateKey(keyText);
  } catch (err) {
    throw invalid(dir, CaFileNames.key, `not a readable private key: ${(err as Error).message}`, err);
  }
  if (!signingCert.checkPrivateKey(signingKey)) throw invalid(dir, CaFileNames.key, `the key does not match the certificate in ${CaFileNames.cert}`);
  if (!signingCert.ca) throw invalid(dir, CaFileNames.cert, 'not a CA certificate (basicConstraints CA:TRUE is required)');
  checkValid(dir, CaFileNames.cert, signingCert, now);
  const roots = certs(dir, CaFileNames.root, rootText);
  for (const r of roots) checkValid(dir, CaFileNames.root, r, now);
  // The chain from ca-cert upwards: cert-chain.pem may or may not start with ca-cert itself.
  const chain = chainText.trim() === '' ? [] : certs(dir, CaFileNames.chain, chainText);
  const upward = chain.length > 0 && chain[0].fingerprint256 === signingCert.fingerprint256 ? chain.slice(1) : chain;
  const path = [signingCert, ...upward.filter((c) => !roots.some((r) => r.fingerprint256 === c.fingerprint256))];
  for (let i = 1; i < path.length; i++) {
    checkValid(dir, CaFileNames.chain, path[i], now);
    if (!path[i - 1].checkIssued(path[i]) || !path[i - 1].verify(path[i].publicKey)) {
      throw invalid(dir, CaFileNames.chain, `certificate #${i} ('${path[i - 1].subject.replace(/\n/g, ', ')}') is not issued by the next one ('${path[i].subject.replace(/\n/g, ', ')}')`);
    }
  }
  const top = path[path.length - 1];
  const anchor = roots.find((r) => r.fingerprint256 === top.fingerprint256 || (top.checkIssued(r) && top.verify(r.publicKey)));
  if (anchor === undefined) throw invalid(dir, CaFileNames.root, `no root here issued '${top.subject.replace(/\n/g, ', ')}' (the chain from ${CaFileNames.cert} does not end at a trusted root)`);
  const intermediates = path.filter((c) => c.fingerprint256 !== anchor.fingerprint256).map((c) => c.toString());
  const rootPems = [anchor, ...roots.filter((r) => r !== anchor)].map((r) => r.toString());
  return Object.freeze({
    signingCert, signingKey, intermediates: Object.freeze(intermediates), root: anchor.toString(), roots: Object.freeze(rootPems),
    fingerprint: `${signingCert.fingerprint256}/${rootPems.length}/${[...roots].map((r) => r.fingerprint256).join(',')}`, dir,
  });
}

/** Writes a new self-signed root into `dir` (all four files, each atomically). */
export async function createSelfSignedCa(dir: string, opts: { trustDomain: string; keyAlgorithm?: KeyAlgorithm; validityDays?: number; now?: number }): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const now = opts.now ?? Date.now();
  const k = await generateKey(opts.keyAlgorithm ?? 'ECDSA_P256');
  const pem = issueCertificate({
    organization: opts.trustDomain, commonName: `trellis root ${new Date(now).toISOString().slice(0, 19)}Z`, isCa: true,
    notBefore: new Date(now - 3_600_000), notAfter: new Date(now + (opts.validityDays ?? 3650) * 86_400_000), publicKey: k.publicKey,
  }, { certificate: undefined, privateKey: k.privateKey });
  const put = (file: string, text: string, mode: number) => {
    const tmp = join(dir, `.${file}.tmp`);
    writeFileSync(tmp, text, { mode });
    renameSync(tmp, join(dir, file));
  };
  // Key first, certificate last: a reader between the writes sees a mismatch and keeps its old CA.
  put(CaFileNames.key, k.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
  put(CaFileNames.chain, '', 0o644);
  put(CaFileNames.root, pem, 0o644);
  put(CaFileNames.cert, pem, 0o644);
}
