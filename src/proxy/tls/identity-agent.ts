/**
 * The workload identity agent (what Istio's pilot-agent does for Envoy): generates the workload's
 * key pair in this process, sends a CSR for its SPIFFE id to the mesh CA
 * (`IstioCertificateService/CreateCertificate`, authenticated by the workload token read from a
 * file at every request), and keeps the certificate fresh: renewal at half the lifetime with
 * jitter (Istio's SECRET_GRACE_PERIOD_RATIO 0.5), retried with backoff while the current one is
 * still valid, and early (within seconds) when the trust bundle puts a different root first, which
 * is how the CA says it now signs under a new root. A new key for every certificate; the private
 * key never leaves the proxy (it goes to this proxy's own worker processes only). With `caRoots`
 * (Kubernetes: the mounted `istio-ca-root-cert`) the CA is reached over TLS and verified against
 * those roots before the token is sent; a changed roots file makes a new channel.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { certificateServiceDefinition, type CertificateRequestMsg, type CertificateResponseMsg } from '../../xds/ca-wire.ts';
import { TrellisError, describeError } from '../../errors.ts';
import { createCsr } from '../../pki/csr-create.ts';
import { generateKey, type KeyAlgorithm } from '../../pki/keys.ts';
import { splitCertificates } from '../../pki/pem.ts';

export interface IdentityAgentOptions {
  /** `host:port` of the CA (the control plane's xDS port). */
  readonly caAddress: string;
  /** The workload token, asked for at every request (a file re-read: tokens may be rotated). */
  readonly token: () => string;
  /** The SPIFFE id to request. */
  readonly spiffeId: string;
  /** Sent as request metadata NODE_ID, for the CA's status. */
  readonly nodeId: string;
  readonly keyAlgorithm?: KeyAlgorithm;
  /** Requested lifetime in seconds (0 = the CA's default). */
  readonly ttlSeconds?: number;
  readonly credentials?: grpc.ChannelCredentials;
  /** PEM roots that verify the CA's TLS certificate, asked for at every request (a file re-read); undefined = `credentials` (default plaintext). */
  readonly caRoots?: () => string;
  readonly log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  readonly random?: () => number;
}

/** The workload's current certificate. */
export interface WorkloadCertificate {
  /** PEM: leaf then intermediates (the root is in the trust bundle, as Envoy expects). */
  readonly certChain: string;
  readonly privateKey: string;
  /** The root the chain ends at (PEM). */
  readonly root: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly serial: string;
}

const Client = grpc.makeGenericClientConstructor(certificateServiceDefinition, 'IstioCertificateService');

export class IdentityAgent {
  readonly #opts: IdentityAgentOptions;
  #client: grpc.Client | undefined;
  #clientRoots: string | undefined;
  #current: WorkloadCertificate | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #inFlight: Promise<void> | undefined;
  #failures = 0;
  readonly #listeners = new Set<(c: WorkloadCertificate) => void>();
  #firstResolve!: () => void;
  /** Resolves once the first certificate is held. */
  readonly ready: Promise<void>;
  /** Counters for the admin stats. */
  readonly stats = { renewals: 0, failures: 0 };

  constructor(opts: IdentityAgentOptions) {
    this.#opts = opts;
    this.ready = new Promise((r) => (this.#firstResolve = r));
  }

  get current(): WorkloadCertificate | undefined {
    return this.#current;
  }

  onChange(fn: (c: WorkloadCertificate) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  start(): void {
    this.#schedule(0);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#client?.close();
  }

  /** The channel to the CA; over TLS with the current roots when `caRoots` is set. */
  #channel(): grpc.Client {
    const roots = this.#opts.caRoots?.();
    if (this.#client !== undefined && roots === this.#clientRoots) return this.#client;
    let creds: grpc.ChannelCredentials;
    if (roots === undefined) creds = this.#opts.credentials ?? grpc.credentials.createInsecure();
    else {
      try {
        creds = grpc.credentials.createSsl(Buffer.from(roots));
      } catch (err) {
        throw new TrellisError('IDENTITY_CA_ROOT', `the CA root certificates are unusable: ${(err as Error).message}`, { cause: err });
      }
    }
    this.#client?.close();
    // Reconnect within half a second, as the ADS client does: `trellis up` starts proxies next to
    // the control plane (and its CA), so the first request often meets a CA not listening yet.
    this.#client = new Client(this.#opts.caAddress, creds, { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 500 });
    this.#clientRoots = roots;
    return this.#client;
  }

  /** The trust bundle changed: renew soon when it now puts another root first (the CA signs under it). */
  setTrustBundle(roots: readonly string[]): void {
    const cur = this.#current;
    if (cur === undefined || roots.length === 0) return;
    const first = new X509Certificate(roots[0]).fingerprint256;
    if (new X509Certificate(cur.root).fingerprint256 === first) return;
    this.#opts.log?.('info', 'identity: the trust bundle leads with a new root; renewing early');
    this.#schedule(Math.floor((this.#opts.random ?? Math.random)() * 2000));
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#renew(), delayMs);
    this.#timer.unref?.();
  }

  #renew(): Promise<void> {
    this.#inFlight ??= this.#fetch().finally(() => (this.#inFlight = undefined));
    return this.#inFlight;
  }

  async #fetch(): Promise<void> {
    try {
      const cert = await this.#request();
      if (this.#stopped) return;
      this.#current = cert;
      this.#failures = 0;
      this.stats.renewals++;
      this.#opts.log?.('info', 'identity: certificate issued', { spiffeId: this.#opts.spiffeId, serial: cert.serial, notAfter: new Date(cert.notAfter).toISOString() });
      for (const fn of this.#listeners) fn(cert);
      this.#firstResolve();
      // The lifetime counts from receipt: the CA backdates notBefore for clock skew.
      const now = Date.now();
      const life = cert.notAfter - Math.max(cert.notBefore, now);
      const jitter = ((this.#opts.random ?? Math.random)() - 0.5) * 0.1; // +-5% of the lifetime
      this.#schedule(Math.max(1000, life * (0.5 + jitter)));
    } catch (err) {
      this.#failures++;
      this.stats.failures++;
      const backoff = Math.min(30_000, 500 * 2 ** Math.min(this.#failures, 6));
      // Never wait past the current certificate's end for the next try.
      const left = this.#current !== undefined ? this.#current.notAfter - Date.now() : Infinity;
      const delay = Math.max(200, Math.min(backoff, left / 4));
      this.#opts.log?.(this.#current === undefined || left < 60_000 ? 'error' : 'warn', 'identity: certificate request failed; retrying', { error: describeError(err), retryInMs: Math.round(delay) });
      this.#schedule(delay);
    }
  }

  async #request(): Promise<WorkloadCertificate> {
    const token = this.#opts.token();
    const client = this.#channel();
    const keys = await generateKey(this.#opts.keyAlgorithm ?? 'ECDSA_P256');
    const req: CertificateRequestMsg = { csr: createCsr(keys.privateKey, [this.#opts.spiffeId]), validityDuration: this.#opts.ttlSeconds ?? 0, metadata: { NODE_ID: this.#opts.nodeId } };
    // waitForReady: a CA that is still starting delays the request (up to its deadline) instead of failing it into the retry backoff.
    const md = new grpc.Metadata({ waitForReady: true });
    md.set('authorization', `Bearer ${token}`);
    const res = await new Promise<CertificateResponseMsg>((resolve, reject) => {
      (client as unknown as { CreateCertificate: (r: CertificateRequestMsg, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, v?: CertificateResponseMsg) => void) => void })
        .CreateCertificate(req, md, { deadline: Date.now() + 10_000 }, (err, v) => (err ? reject(new TrellisError('IDENTITY_CA', `CA refused: ${err.details || err.message}`, { cause: err })) : resolve(v!)));
    });
    const pems = res.certChain.flatMap((c) => splitCertificates(c));
    if (pems.length === 0) throw new TrellisError('IDENTITY_CA', 'the CA returned no certificate');
    const leaf = new X509Certificate(pems[0]);
    if (!leaf.checkPrivateKey(keys.privateKey)) throw new TrellisError('IDENTITY_CA', 'the CA returned a certificate for another key');
    if (!(leaf.subjectAltName ?? '').split(', ').includes(`URI:${this.#opts.spiffeId}`)) throw new TrellisError('IDENTITY_CA', `the CA returned a certificate for [${leaf.subjectAltName}], not ${this.#opts.spiffeId}`);
    const root = pems.length > 1 ? pems[pems.length - 1] : pems[0];
    return Object.freeze({
      certChain: (pems.length > 1 ? pems.slice(0, -1) : pems).join(''),
      privateKey: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      root,
      notBefore: Date.parse(leaf.validFrom),
      notAfter: Date.parse(leaf.validTo),
      serial: leaf.serialNumber,
    });
  }
}

/** A token source reading `file` at every call (TrellisError IDENTITY_TOKEN when unreadable). */
export function tokenFromFile(file: string): () => string {
  return () => {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new TrellisError('IDENTITY_TOKEN', `cannot read the workload token ${file}: ${(err as Error).message}`, { cause: err });
    }
  };
}

/** PEM roots read from `file` at every call (TrellisError IDENTITY_CA_ROOT when unreadable or empty). */
export function caRootsFromFile(file: string): () => string {
  return () => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new TrellisError('IDENTITY_CA_ROOT', `cannot read the CA root certificates ${file}: ${(err as Error).message}`, { cause: err });
    }
    if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new TrellisError('IDENTITY_CA_ROOT', `${file} holds no PEM certificate`);
    return text;
  };
}
