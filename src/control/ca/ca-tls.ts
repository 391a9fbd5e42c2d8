/**
 * The control plane's gRPC services (ADS and CreateCertificate) over TLS on a second port, as
 * istiod serves 15012: a proxy sends its credential (a service-account token) only to a server it
 * verified, with the mesh root it got from the `istio-ca-root-cert` ConfigMap. The serving
 * certificate (istiod's "DNS certificate") is issued by the mesh CA itself for the names the
 * proxies dial, renewed at half its lifetime and whenever the trust bundle changes (a new signing
 * root), and swapped into the listening server without dropping open connections.
 */
import { X509Certificate, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { ServerCredentials, ServerInterceptingCall, type Metadata, type Server, type ServerInterceptor } from '@grpc/grpc-js';
import type { SecureContextOptions } from 'node:tls';
import { generateKey } from '../../pki/keys.ts';
import { TrellisError, describeError } from '../../errors.ts';
import type { CertificateAuthority } from './authority.ts';

/**
 * Tells handlers which calls came over this TLS port: an interceptor on the port's credentials
 * sets a metadata entry to a random per-process value, overwriting whatever a client sent, so a
 * plaintext caller cannot forge it (the handlers of both ports are the same gRPC services).
 */
export class TlsCallMark {
  static readonly key = 'x-trellis-transport-tls';
  readonly #value = randomBytes(16).toString('hex');

  readonly interceptor: ServerInterceptor = (_method, call) => new ServerInterceptingCall(call, {
    start: (next) => next({
      onReceiveMetadata: (md, pass) => {
        md.set(TlsCallMark.key, this.#value);
        pass(md);
      },
    }),
  });

  isTls(md: Metadata): boolean {
    return md.get(TlsCallMark.key)[0] === this.#value;
  }
}

/**
 * Server credentials whose certificate can change after bind: grpc-js's server watches its
 * credentials and calls setSecureContext on an update (what its own certificate providers use).
 */
class RenewableServerCredentials extends ServerCredentials {
  readonly #interceptors: ServerInterceptor[];
  constructor(context: SecureContextOptions, interceptors: ServerInterceptor[]) {
    super({ requestCert: false }, context);
    this.#interceptors = interceptors;
  }
  override _getInterceptors(): ServerInterceptor[] {
    return this.#interceptors;
  }
  renew(context: SecureContextOptions): void {
    this.updateSecureContextOptions(context);
  }
  _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}

export interface CaTlsOptions {
  readonly server: Server;
  readonly ca: CertificateAuthority;
  readonly host: string;
  /** 0 = any free port. */
  readonly port: number;
  /** DNS names and IP addresses proxies dial (the revision's Service names, or a test's 127.0.0.1). */
  readonly hosts: readonly string[];
  /** Serving certificate lifetime (default 24 h). */
  readonly ttlMs?: number;
  /** Marks the calls of this port as TLS. */
  readonly mark?: TlsCallMark;
  readonly log?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
}

export interface CaTlsListener {
  readonly port: number;
  /** Re-issues the serving certificate now (tests; the bundle listener does it on rotation). */
  renew(): Promise<void>;
  close(): void;
}

async function servingContext(o: CaTlsOptions): Promise<{ context: SecureContextOptions; notAfter: number }> {
  const k = await generateKey('ECDSA_P256');
  const chain = o.ca.issueServing({
    dnsSans: o.hosts.filter((h) => isIP(h) === 0), ipSans: o.hosts.filter((h) => isIP(h) !== 0), publicKey: k.publicKey, ttlMs: o.ttlMs ?? 86_400_000,
  });
  return { context: { cert: chain.join(''), key: k.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string }, notAfter: Date.parse(new X509Certificate(chain[0]).validTo) };
}

/** Binds `server` on host:port with TLS; resolves with the bound port. */
export async function serveOverTls(o: CaTlsOptions): Promise<CaTlsListener> {
  let current = await servingContext(o);
  const creds = new RenewableServerCredentials(current.context, o.mark !== undefined ? [o.mark.interceptor] : []);
  const addr = `${o.host}:${o.port}`;
  const port = await new Promise<number>((resolve, reject) => {
    o.server.bindAsync(addr, creds, (err, p) => (err !== null ? reject(new TrellisError('XDS_LISTEN', `TLS port cannot listen on ${addr}: ${err.message}`, { cause: err })) : resolve(p)));
  });
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const renew = async (): Promise<void> => {
    try {
      current = await servingContext(o);
      creds.renew(current.context);
      o.log?.('info', 'ca: TLS serving certificate issued', { hosts: o.hosts, notAfter: new Date(current.notAfter).toISOString() });
    } catch (err) {
      o.log?.('warn', 'ca: renewing the TLS serving certificate failed; the current one stays', { error: describeError(err) });
    }
    plan();
  };
  const plan = (): void => {
    clearTimeout(timer);
    if (closed) return;
    timer = setTimeout(() => void renew(), Math.max(60_000, (current.notAfter - Date.now()) / 2));
    timer.unref();
  };
  plan();
  const unwatch = o.ca.onBundleChange(() => void renew());
  return {
    port,
    renew,
    close() {
      closed = true;
      clearTimeout(timer);
      unwatch();
    },
  };
}
