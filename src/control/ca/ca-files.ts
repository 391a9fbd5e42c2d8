/**
 * The CA's signing material in Istio's plug-in CA layout: `ca-cert.pem` (the certificate we sign
 * with), `ca-key.pem` (its key), `root-cert.pem` (the trust anchor(s)) and `cert-chain.pem`
 * (ca-cert up to the root; optional when ca-cert is itself the root), from a directory or from
 * the same keys of a Kubernetes Secret (kube/ca-secret.ts). Everything is checked before it is
 * used: each part parses, the key matches the certificate, ca-cert is a CA and currently valid,
 * every certificate of the chain is valid and issued by the next, and the chain ends at a
 * certificate in root-cert.pem. A failure is CA_FILE_INVALID naming the file (or Secret key) and
 * what is wrong, so the caller can keep its last good material. `generateSelfSignedCa` makes a
 * fresh self-signed root in the same layout (Istio's self-signed istio-ca-secret), and
 * `caDirectorySource` is the directory as a CaMaterialSource.
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
  /** Where it came from (a directory, or `Secret <ns>/<name>`). */
  readonly dir: string;
}

/** The four parts as text (`chain` may be empty). */
export interface CaTexts {
  readonly cert: string;
  readonly key: string;
  readonly root: string;
  readonly chain: string;
}

/**
 * Where a CertificateAuthority gets its material: a watched directory, or a Kubernetes Secret.
 * `stamp` and `load` are synchronous (the CA polls them); a source that reads over the network
 * keeps the latest copy in memory.
 */
export interface CaMaterialSource {
  /** Where the material lives, for status and logs. */
  describe(): string;
  /** Makes sure there is material (a self-signed source creates a root on first start). */
  init(opts: { trustDomain: string; keyAlgorithm?: KeyAlgorithm }): Promise<void>;
  /** A cheap change detector: a different stamp means `load` may return something new. */
  stamp(): string;
  /** The current material, validated. Throws CA_FILE_INVALID. */
  load(now?: number): CaMaterial;
  close?(): void;
}

export const CaFileNames = { cert: 'ca-cert.pem', key: 'ca-key.pem', root: 'root-cert.pem', chain: 'cert-chain.pem' } as const;

/** Names one part of the material in errors: a file path, or a Secret's key. */
type Where = (file: string) => string;

function invalid(where: Where, file: string, msg: string, cause?: unknown): TrellisError {
  return new TrellisError('CA_FILE_INVALID', `CA file ${where(file)}: ${msg}`, { context: { file: where(file) }, ...(cause !== undefined ? { cause } : {}) });
}

function read(dir: string, file: string, required: boolean): string | undefined {
  const p = join(dir, file);
  if (!existsSync(p)) {
    if (required) throw invalid((f) => join(dir, f), file, 'missing');
    return undefined;
  }
  try {
    return readFileSync(p, 'utf8');
  } catch (err) {
    throw invalid((f) => join(dir, f), file, `cannot read: ${(err as Error).message}`, err);
  }
}

function certs(where: Where, file: string, text: string): X509Certificate[] {
  const pems = splitCertificates(text);
  if (pems.length === 0) throw invalid(where, file, 'no PEM CERTIFICATE block');
  return pems.map((p, i) => {
    try {
      return new X509Certificate(p);
    } catch (err) {
      throw invalid(where, file, `certificate #${i + 1} is malformed: ${(err as Error).message}`, err);
    }
  });
}

function checkValid(where: Where, file: string, c: X509Certificate, now: number): void {
  if (Date.parse(c.validTo) <= now) throw invalid(where, file, `certificate '${c.subject.replace(/\n/g, ', ')}' expired at ${new Date(c.validTo).toISOString()}`);
  if (Date.parse(c.validFrom) > now + 60_000) throw invalid(where, file, `certificate '${c.subject.replace(/\n/g, ', ')}' is not valid before ${new Date(c.validFrom).toISOString()}`);
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
  const texts: CaTexts = {
    cert: read(dir, CaFileNames.cert, true)!,
    key: read(dir, CaFileNames.key, true)!,
    root: read(dir, CaFileNames.root, true)!,
    chain: read(dir, CaFileNames.chain, false) ?? '',
  };
  return parseCaMaterial(texts, dir, (f) => join(dir, f), now);
}

/**
 * Validates material given as text. `source` names where it came from (CaMaterial.dir), `where`
 * names each part in errors. Throws CA_FILE_INVALID.
 */
export function parseCaMaterial(texts: CaTexts, source: string, where: Where, now = Date.now()): CaMaterial {
  const { cert: certText, key: keyText, root: rootText, chain: chainText } = texts;
  const [signingCert] = certs(where, CaFileNames.cert, certText);
  let signingKey: KeyObject;
  try {
    signingKey = createPrivateKey(keyText);
  } catch (err) {
    throw invalid(where, CaFileNames.key, `not a readable private key: ${(err as Error).message}`, err);
  }
  if (!signingCert.checkPrivateKey(signingKey)) throw invalid(where, CaFileNames.key, `the key does not match the certificate in ${CaFileNames.cert}`);
  if (!signingCert.ca) throw invalid(where, CaFileNames.cert, 'not a CA certificate (basicConstraints CA:TRUE is required)');
  checkValid(where, CaFileNames.cert, signingCert, now);
  const roots = certs(where, CaFileNames.root, rootText);
  for (const r of roots) checkValid(where, CaFileNames.root, r, now);
  // The chain from ca-cert upwards: cert-chain.pem may or may not start with ca-cert itself.
  const chain = chainText.trim() === '' ? [] : certs(where, CaFileNames.chain, chainText);
  const upward = chain.length > 0 && chain[0].fingerprint256 === signingCert.fingerprint256 ? chain.slice(1) : chain;
  const path = [signingCert, ...upward.filter((c) => !roots.some((r) => r.fingerprint256 === c.fingerprint256))];
  for (let i = 1; i < path.length; i++) {
    checkValid(where, CaFileNames.chain, path[i], now);
    if (!path[i - 1].checkIssued(path[i]) || !path[i - 1].verify(path[i].publicKey)) {
      throw invalid(where, CaFileNames.chain, `certificate #${i} ('${path[i - 1].subject.replace(/\n/g, ', ')}') is not issued by the next one ('${path[i].subject.replace(/\n/g, ', ')}')`);
    }
  }
  const top = path[path.length - 1];
  const anchor = roots.find((r) => r.fingerprint256 === top.fingerprint256 || (top.checkIssued(r) && top.verify(r.publicKey)));
  if (anchor === undefined) throw invalid(where, CaFileNames.root, `no root here issued '${top.subject.replace(/\n/g, ', ')}' (the chain from ${CaFileNames.cert} does not end at a trusted root)`);
  const intermediates = path.filter((c) => c.fingerprint256 !== anchor.fingerprint256).map((c) => c.toString());
  const rootPems = [anchor, ...roots.filter((r) => r !== anchor)].map((r) => r.toString());
  return Object.freeze({
    signingCert, signingKey, intermediates: Object.freeze(intermediates), root: anchor.toString(), roots: Object.freeze(rootPems),
    fingerprint: `${signingCert.fingerprint256}/${rootPems.length}/${[...roots].map((r) => r.fingerprint256).join(',')}`, dir: source,
  });
}

/** A new self-signed root in the plug-in layout (ca-cert is the root; no chain). */
export async function generateSelfSignedCa(opts: { trustDomain: string; keyAlgorithm?: KeyAlgorithm; validityDays?: number; now?: number }): Promise<CaTexts> {
  const now = opts.now ?? Date.now();
  const k = await generateKey(opts.keyAlgorithm ?? 'ECDSA_P256');
  const pem = issueCertificate({
    organization: opts.trustDomain, commonName: `trellis root ${new Date(now).toISOString().slice(0, 19)}Z`, isCa: true,
    notBefore: new Date(now - 3_600_000), notAfter: new Date(now + (opts.validityDays ?? 3650) * 86_400_000), publicKey: k.publicKey,
  }, { certificate: undefined, privateKey: k.privateKey });
  return { cert: pem, key: k.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, root: pem, chain: '' };
}

/** Writes a new self-signed root into `dir` (all four files, each atomically). */
export async function createSelfSignedCa(dir: string, opts: { trustDomain: string; keyAlgorithm?: KeyAlgorithm; validityDays?: number; now?: number }): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const t = await generateSelfSignedCa(opts);
  const put = (file: string, text: string, mode: number) => {
    const tmp = join(dir, `.${file}.tmp`);
    writeFileSync(tmp, text, { mode });
    renameSync(tmp, join(dir, file));
  };
  // Key first, certificate last: a reader between the writes sees a mismatch and keeps its old CA.
  put(CaFileNames.key, t.key, 0o600);
  put(CaFileNames.chain, t.chain, 0o644);
  put(CaFileNames.root, t.root, 0o644);
  put(CaFileNames.cert, t.cert, 0o644);
}

/** A CA directory as a material source; `selfSigned` creates a root there when it is empty. */
export function caDirectorySource(dir: string, opts: { selfSigned: boolean; log?: (msg: string, fields: Record<string, unknown>) => void }): CaMaterialSource {
  return {
    describe: () => dir,
    async init(o) {
      if (opts.selfSigned && !hasCaFiles(dir)) {
        await createSelfSignedCa(dir, o);
        opts.log?.('ca: generated a self-signed root', { dir });
      }
    },
    stamp: () => caFilesStamp(dir),
    load: (now) => loadCaFiles(dir, now),
  };
}
