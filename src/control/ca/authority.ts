/**
 * The mesh certificate authority: signs workload CSRs with the material of a watched source
 * (ca-files.ts: a directory with a self-signed root generated on first start and persisted there,
 * or a plug-in CA; on Kubernetes, kube/ca-secret.ts: the same layout in a Secret), and owns the
 * trust bundle proxies receive as `ROOTCA`.
 *
 * Rotation. The source is polled; new material that does not validate is logged once and the
 * last good material keeps signing. New material under a root the bundle already trusts (a new
 * intermediate) signs at once. New material under a new root goes in two steps, so no proxy ever
 * meets a certificate it cannot verify: (1) the new root joins the bundle (old signing root first)
 * and is pushed; (2) once every connected proxy has it (`distributed()`, bounded by
 * `distributionTimeoutMs`), the new material signs and the bundle puts the new root first, which
 * tells identity agents to renew early. An old root leaves the bundle only when no workload still
 * holds an unexpired certificate under it as its latest (Istio's overlapping trust bundle). Who
 * holds what is kept in `stateFile` (written shortly after each signing, read at start), so a
 * control plane restarted in the middle of a rotation still trusts the old root its workloads'
 * certificates chain to.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { TrellisError, describeError } from '../../errors.ts';
import { issueCertificate } from '../../pki/certificate.ts';
import { parseCsr } from '../../pki/csr.ts';
import type { KeyAlgorithm } from '../../pki/keys.ts';
import { caDirectorySource, type CaMaterial, type CaMaterialSource } from './ca-files.ts';

export interface CertificateAuthorityOptions {
  /** Where the signing material comes from; default: the directory `dir`. */
  readonly source?: CaMaterialSource;
  /** The CA directory (Istio plug-in layout), when no `source` is given. */
  readonly dir?: string;
  /** Generate a self-signed root when the directory is empty (false for a plug-in CA: its files must exist). */
  readonly selfSigned?: boolean;
  readonly trustDomain: string;
  readonly keyAlgorithm?: KeyAlgorithm;
  /** Default workload certificate lifetime (Istio: 24 h). */
  readonly defaultTtlMs?: number;
  /** Longest lifetime a caller may ask for (default: 90 days, Istio's max). */
  readonly maxTtlMs?: number;
  /** How often the source is checked for new material (default 1000 ms). */
  readonly pollMs?: number;
  /** Longest the switch to a new root waits for every proxy to hold it (default 60 s). */
  readonly distributionTimeoutMs?: number;
  /** Where the latest certificate of each requester is remembered across restarts (none: in memory only). */
  readonly stateFile?: string;
  readonly log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

/** One issued certificate, as the CA remembers the latest per requester. */
export interface IssuedRecord {
  readonly requester: string;
  readonly spiffeId: string;
  readonly nodeId: string;
  readonly serial: string;
  readonly notAfter: number;
  /** PEM of the root the certificate chains to. */
  readonly root: string;
}

export interface CaStatus {
  /** Where the material comes from (a directory, or `Secret <ns>/<name>`). */
  readonly dir: string;
  readonly phase: 'serving' | 'distributing-new-root';
  readonly signingRootSubject: string;
  readonly signingRootNotAfter: string;
  readonly bundle: readonly { subject: string; notAfter: string; fingerprint: string }[];
  readonly lastError: string | undefined;
  readonly issued: readonly IssuedRecord[];
}

/** What the CA was asked to certify and by whom (after authentication). */
export interface SignRequest {
  readonly csr: string;
  /** The SPIFFE id the caller is entitled to. */
  readonly spiffeId: string;
  /** Requested lifetime in seconds (0 = default). */
  readonly ttlSeconds: number;
  /** Stable id of the caller (its token's hash), to track which root it holds. */
  readonly requester: string;
  /** The caller's xDS node id, for proxy-status (informational). */
  readonly nodeId: string;
}

export class CertificateAuthority {
  readonly #opts: CertificateAuthorityOptions;
  readonly #source: CaMaterialSource;
  #material: CaMaterial;
  #pending: { material: CaMaterial; since: number } | undefined;
  #bundle: readonly string[];
  #stamp: string;
  #lastError: string | undefined;
  readonly #issued = new Map<string, IssuedRecord>();
  readonly #listeners = new Set<(bundle: readonly string[]) => void>();
  #timer: NodeJS.Timeout | undefined;
  #saveTimer: NodeJS.Timeout | undefined;
  /** Set by the control plane: true once every connected proxy holds a bundle containing `root`. */
  distributed: (root: string) => boolean = () => true;

  private constructor(opts: CertificateAuthorityOptions, source: CaMaterialSource, stamp: string, material: CaMaterial) {
    this.#opts = opts;
    this.#source = source;
    this.#material = material;
    this.#bundle = material.roots;
    this.#stamp = stamp;
  }

  /** Loads (or, self-signed and empty, creates) the CA. Throws CA_FILE_INVALID: a CA that cannot sign must not start. */
  static async open(opts: CertificateAuthorityOptions): Promise<CertificateAuthority> {
    const source = opts.source ?? caDirectorySource(opts.dir ?? '', { selfSigned: opts.selfSigned ?? false, log: (msg, fields) => opts.log?.('info', msg, fields) });
    let ca: CertificateAuthority;
    try {
      await source.init({ trustDomain: opts.trustDomain, keyAlgorithm: opts.keyAlgorithm });
      // The stamp before the load: a change between the two is seen by the next poll.
      const stamp = source.stamp();
      ca = new CertificateAuthority(opts, source, stamp, source.load());
    } catch (err) {
      source.close?.();
      throw err;
    }
    if (opts.stateFile !== undefined) {
      const n = ca.#restore(opts.stateFile);
      if (n > 0) opts.log?.('info', 'ca: remembered the certificates workloads hold', { count: n, bundle: ca.#bundle.length });
    }
    ca.#timer = setInterval(() => ca.poll(), opts.pollMs ?? 1000);
    ca.#timer.unref();
    return ca;
  }

  /** The trust bundle (PEM roots), the signing root first. */
  trustBundle(): readonly string[] {
    return this.#bundle;
  }

  /** Called with the new bundle whenever it changes. */
  onBundleChange(fn: (bundle: readonly string[]) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #setBundle(next: readonly string[]): void {
    if (next.length === this.#bundle.length && next.every((p, i) => p === this.#bundle[i])) return;
    this.#bundle = Object.freeze([...next]);
    for (const fn of this.#listeners) fn(this.#bundle);
  }

  /** Checks the source and advances a rotation. Public for tests; runs on a timer. */
  poll(now = Date.now()): void {
    const stamp = this.#source.stamp();
    if (stamp !== this.#stamp) {
      this.#stamp = stamp;
      try {
        const next = this.#source.load(now);
        this.#lastError = undefined;
        if (next.fingerprint !== this.#material.fingerprint && next.fingerprint !== this.#pending?.material.fingerprint) this.#adopt(next, now);
      } catch (err) {
        this.#lastError = describeError(err);
        this.#opts.log?.('error', 'ca: new CA material rejected; still signing with the previous one', { error: this.#lastError });
      }
    }
    const p = this.#pending;
    if (p !== undefined && (this.distributed(p.material.root) || now - p.since > (this.#opts.distributionTimeoutMs ?? 60_000))) {
      this.#pending = undefined;
      this.#material = p.material;
      this.#opts.log?.('info', 'ca: signing with the new root', { root: new X509Certificate(p.material.root).subject });
    }
    this.#setBundle(this.#computeBundle(now));
  }

  #adopt(next: CaMaterial, now: number): void {
    if (this.#bundle.includes(next.root)) {
      this.#material = next;
      this.#pending = undefined;
      this.#opts.log?.('info', 'ca: new signing certificate under a trusted root', { subject: next.signingCert.subject });
      return;
    }
    this.#pending = { material: next, since: now };
    this.#opts.log?.('info', 'ca: new root; distributing it before signing with it', { root: new X509Certificate(next.root).subject });
  }

  /** Signing root first, the rest of its file's roots, a pending root, then old roots still in use. */
  #computeBundle(now: number): string[] {
    const out: string[] = [];
    const add = (p: string) => {
      if (!out.includes(p)) out.push(p);
    };
    this.#material.roots.forEach(add);
    this.#pending?.material.roots.forEach(add);
    for (const [k, r] of this.#issued) {
      if (r.notAfter <= now) this.#issued.delete(k);
      else add(r.root);
    }
    return out;
  }

  /** Signs a CSR for `req.spiffeId`; returns the chain (leaf, intermediates, root). Throws CA_REQUEST_INVALID. */
  sign(req: SignRequest, now = Date.now()): string[] {
    const csr = parseCsr(req.csr);
    if (csr.uriSans.length !== 1 || csr.uriSans[0] !== req.spiffeId || csr.dnsSans.length > 0) {
      throw new TrellisError('CA_REQUEST_INVALID', `the CSR asks for [${[...csr.uriSans, ...csr.dnsSans].join(', ')}] but the caller may only have ${req.spiffeId}`);
    }
    const max = this.#opts.maxTtlMs ?? 90 * 86_400_000;
    const ttlMs = Math.min(req.ttlSeconds > 0 ? req.ttlSeconds * 1000 : (this.#opts.defaultTtlMs ?? 86_400_000), max);
    const m = this.#material;
    // A workload certificate never outlives its issuer.
    const notAfter = Math.min(now + ttlMs, Date.parse(m.signingCert.validTo));
    const leaf = issueCertificate({ uriSans: [req.spiffeId], isCa: false, notBefore: new Date(now - 60_000), notAfter: new Date(notAfter), publicKey: csr.publicKey },
      { certificate: m.signingCert, privateKey: m.signingKey });
    const serial = new X509Certificate(leaf).serialNumber;
    this.#issued.set(req.requester, { requester: req.requester, spiffeId: req.spiffeId, nodeId: req.nodeId, serial, notAfter, root: m.root });
    this.#scheduleSave();
    return [leaf, ...m.intermediates, m.root];
  }

  /**
   * A serving certificate for the control plane's own TLS port (istiod's DNS certificate): DNS
   * and IP SANs, signed with the current material. Returns the chain without the root (leaf,
   * intermediates), as a TLS server sends it.
   */
  issueServing(o: { dnsSans: readonly string[]; ipSans: readonly string[]; publicKey: KeyObject; ttlMs: number }, now = Date.now()): string[] {
    const m = this.#material;
    const notAfter = Math.min(now + o.ttlMs, Date.parse(m.signingCert.validTo));
    const leaf = issueCertificate({ dnsSans: o.dnsSans, ipSans: o.ipSans, isCa: false, notBefore: new Date(now - 60_000), notAfter: new Date(notAfter), publicKey: o.publicKey },
      { certificate: m.signingCert, privateKey: m.signingKey });
    return [leaf, ...m.intermediates];
  }

  /** Saves soon: a burst of signings (every proxy starting) is one write. */
  #scheduleSave(): void {
    if (this.#opts.stateFile === undefined || this.#saveTimer !== undefined) return;
    this.#saveTimer = setTimeout(() => this.#save(), 200);
    this.#saveTimer.unref();
  }

  #save(): void {
    clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    const file = this.#opts.stateFile;
    if (file === undefined) return;
    const now = Date.now();
    const roots: string[] = [];
    const issued = [...this.#issued.values()].filter((r) => r.notAfter > now).map(({ root, ...r }) => {
      let i = roots.indexOf(root);
      if (i < 0) i = roots.push(root) - 1;
      return { ...r, root: i };
    });
    try {
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      writeFileSync(`${file}.tmp`, JSON.stringify({ version: 1, roots, issued }) + '\n', { mode: 0o600 });
      renameSync(`${file}.tmp`, file);
    } catch (err) {
      this.#opts.log?.('warn', 'ca: cannot save which certificates workloads hold; a restart during a root rotation would forget them', { file, error: describeError(err) });
    }
  }

  /** Reads the state file; a missing file is a first start, a bad one is logged and ignored. Returns the records kept. */
  #restore(file: string, now = Date.now()): number {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return 0;
    }
    try {
      const doc = JSON.parse(text) as { roots?: unknown; issued?: unknown };
      const roots = Array.isArray(doc.roots) ? doc.roots.filter((r): r is string => typeof r === 'string') : [];
      for (const root of roots) new X509Certificate(root);
      for (const r of Array.isArray(doc.issued) ? doc.issued : []) {
        const x = r as Record<string, unknown>;
        const root = typeof x.root === 'number' ? roots[x.root] : undefined;
        if (typeof x.requester !== 'string' || typeof x.notAfter !== 'number' || root === undefined || x.notAfter <= now) continue;
        this.#issued.set(x.requester, { requester: x.requester, spiffeId: String(x.spiffeId ?? ''), nodeId: String(x.nodeId ?? ''), serial: String(x.serial ?? ''), notAfter: x.notAfter, root });
      }
    } catch (err) {
      this.#opts.log?.('warn', 'ca: the saved certificate holders are unreadable; starting without them', { file, error: describeError(err) });
      return 0;
    }
    this.#bundle = Object.freeze(this.#computeBundle(now));
    return this.#issued.size;
  }

  status(now = Date.now()): CaStatus {
    const root = new X509Certificate(this.#material.root);
    return {
      dir: this.#source.describe(),
      phase: this.#pending !== undefined ? 'distributing-new-root' : 'serving',
      signingRootSubject: root.subject,
      signingRootNotAfter: new Date(root.validTo).toISOString(),
      bundle: this.#bundle.map((p) => {
        const c = new X509Certificate(p);
        return { subject: c.subject, notAfter: new Date(c.validTo).toISOString(), fingerprint: c.fingerprint256 };
      }),
      lastError: this.#lastError,
      issued: [...this.#issued.values()].filter((r) => r.notAfter > now),
    };
  }

  close(): void {
    clearInterval(this.#timer);
    this.#source.close?.();
    if (this.#saveTimer !== undefined) this.#save();
  }
}
