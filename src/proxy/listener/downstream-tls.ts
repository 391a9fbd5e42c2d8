/**
 * TLS termination for a filter chain (`transport_socket` with a `DownstreamTlsContext`): server
 * certificates inline, from files or from SDS, optional client certificates
 * (`require_client_certificate`) verified against the trusted CA and the SAN matchers, and ALPN.
 * The common_tls_context is parsed by the same code as the upstream side, so SDS and the mesh CA
 * plug into both through one `SecretProvider`.
 */
import tls from 'node:tls';
import type net from 'node:net';
import type { XdsJson } from '../../xds/types.ts';
import { TrellisError } from '../../errors.ts';
import { child, configError, optBool, optObj, optStr } from '../xds-json.ts';
import { parseUpstreamTlsContext, type UpstreamTlsConfig } from '../tls/upstream-tls-config.ts';
import { sansMatch } from '../tls/upstream-tls.ts';
import { PeerExchangeAlpn } from '../../telemetry/peer-exchange.ts';
import type { SecretProvider } from '../tls/secret-provider.ts';

export const DownstreamTlsContextType = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';

/** A frozen downstream TLS configuration. */
export interface DownstreamTlsConfig {
  readonly common: UpstreamTlsConfig;
  readonly requireClientCertificate: boolean;
}

/** Parses a filter chain's `transport_socket`; undefined for plaintext (raw_buffer or absent). */
export function parseDownstreamTransportSocket(ts: XdsJson | undefined, at: string): DownstreamTlsConfig | undefined {
  if (ts === undefined) return undefined;
  const typed = optObj(ts.typed_config, child(at, 'typed_config'));
  const name = optStr(ts.name, child(at, 'name'));
  if (typed === undefined) {
    if (name === undefined || name === 'envoy.transport_sockets.raw_buffer') return undefined;
    configError(child(at, 'typed_config'), `transport socket '${name}' needs a typed_config`);
  }
  const tp = child(at, 'typed_config');
  if (typed['@type'] !== DownstreamTlsContextType) configError(child(tp, '@type'), `unsupported downstream transport socket ${String(typed['@type'])}`);
  const common = parseUpstreamTlsContext({ common_tls_context: typed.common_tls_context ?? {} }, tp);
  if (common.certificates.length === 0 && common.certificateSdsNames.length === 0) {
    configError(child(tp, 'common_tls_context.tls_certificates'), 'a server certificate is required (tls_certificates or tls_certificate_sds_secret_configs)');
  }
  return Object.freeze({ common, requireClientCertificate: optBool(typed.require_client_certificate, child(tp, 'require_client_certificate')) ?? false });
}

/** Builds the server options for one new connection (SDS secrets are looked up now, so rotation applies to new connections). */
export function serverTlsOptions(cfg: DownstreamTlsConfig, secrets: SecretProvider): tls.TlsOptions {
  const c = cfg.common;
  const cert = c.certificates[0] ?? (c.certificateSdsNames.length > 0 ? secrets.tlsCertificate(c.certificateSdsNames[0]) : undefined);
  if (cert === undefined) throw new TrellisError('TLS_SECRET_MISSING', `server certificate secret '${c.certificateSdsNames[0]}' has not been received`);
  let ca = c.validation?.trustedCa;
  if (c.validationSdsName !== undefined) ca = secrets.validationContext(c.validationSdsName)?.trustedCa ?? ca;
  const opts: tls.TlsOptions = {
    cert: cert.certChain,
    key: cert.privateKey,
    ca,
    requestCert: cfg.requireClientCertificate || ca !== undefined,
    rejectUnauthorized: cfg.requireClientCertificate,
    minVersion: c.minVersion,
    maxVersion: c.maxVersion,
  };
  if (c.alpn.length > 0) opts.ALPNCallback = alpnSelector(c.alpn);
  return opts;
}

const alpnSelectors = new WeakMap<readonly string[], (arg: { protocols: string[] }) => string | undefined>();

/**
 * Server ALPN as Envoy does it: our first protocol the client also offers. When none overlaps Envoy
 * carries on without ALPN, while OpenSSL (Node) would abort the handshake; we answer with the
 * client's first protocol instead, which every client accepts (a mesh client offering only
 * `istio-peer-exchange, istio` then talks to an `h2, http/1.1` server; the HTTP version is sniffed).
 * That stand-in is never `istio-peer-exchange`: selecting it commits both sides to Istio's metadata
 * exchange prefix (proxy/tcp/tcp-proxy.ts), which only a chain that lists it runs.
 */
function alpnSelector(ours: readonly string[]): (arg: { protocols: string[] }) => string | undefined {
  let f = alpnSelectors.get(ours);
  if (f === undefined) {
    f = ({ protocols }) => ours.find((p) => protocols.includes(p)) ?? protocols.find((p) => p !== PeerExchangeAlpn) ?? protocols[0];
    alpnSelectors.set(ours, f);
  }
  return f;
}

interface TlsTerminator {
  server: tls.Server;
  /** Material the server's context was built from, to rebuild only when SDS rotated it. */
  material: string;
  pending: WeakMap<object, { resolve: (s: tls.TLSSocket) => void; reject: (e: unknown) => void }>;
}

const terminators = new WeakMap<DownstreamTlsConfig, TlsTerminator>();

/**
 * A (never listening) tls.Server per chain config does the handshakes: Node's HTTP/2 needs a
 * TLSSocket set up the way tls.Server sets it up (a hand-built `new TLSSocket(..., {isServer})`
 * completes the handshake but then never serves h2). SDS rotation swaps its secure context.
 */
function terminatorFor(cfg: DownstreamTlsConfig, opts: tls.TlsOptions, handshakeTimeoutMs: number): TlsTerminator {
  const material = `${String(opts.cert)}\0${String(opts.key)}\0${String(opts.ca ?? '')}`;
  let t = terminators.get(cfg);
  if (t === undefined) {
    const server = tls.createServer({ ...opts, handshakeTimeout: handshakeTimeoutMs });
    const pending: TlsTerminator['pending'] = new WeakMap();
    // TLSSocket keeps the socket it wraps as `_parent`: how a finished handshake finds its caller.
    const parentOf = (s: tls.TLSSocket) => (s as unknown as { _parent?: object })._parent;
    server.on('secureConnection', (s: tls.TLSSocket) => {
      const p = parentOf(s);
      const waiter = p && pending.get(p);
      if (waiter) {
        pending.delete(p!);
        waiter.resolve(s);
      } else s.destroy();
    });
    server.on('tlsClientError', (err: Error, s: tls.TLSSocket) => {
      const p = parentOf(s);
      const waiter = p && pending.get(p);
      if (waiter) {
        pending.delete(p!);
        waiter.reject(err);
      }
      s.destroy();
    });
    t = { server, material, pending };
    terminators.set(cfg, t);
  } else if (t.material !== material) {
    t.server.setSecureContext(opts);
    t.material = material;
  }
  return t;
}

/**
 * Terminates TLS on an accepted (and possibly sniffed) socket. Resolves with the TLS socket once
 * the handshake is done and the client certificate (when required) passed the SAN matchers.
 */
export function terminateTls(socket: net.Socket, cfg: DownstreamTlsConfig, secrets: SecretProvider, handshakeTimeoutMs = 10_000): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    let opts: tls.TlsOptions;
    let term: TlsTerminator;
    try {
      opts = serverTlsOptions(cfg, secrets);
      term = terminatorFor(cfg, opts, handshakeTimeoutMs);
    } catch (err) {
      reject(err);
      return;
    }
    const finish = (tlsSocket: tls.TLSSocket) => {
      if (cfg.requireClientCertificate) {
        const peer = tlsSocket.getPeerCertificate();
        const matchers = cfg.common.validation?.sanMatchers ?? [];
        if (!peer || Object.keys(peer).length === 0 || !sansMatch(peer, matchers)) {
          tlsSocket.destroy();
          reject(new TrellisError('TLS_PEER_REJECTED', `client certificate SANs [${peer?.subjectaltname ?? ''}] match none of the configured matchers`));
          return;
        }
      }
      resolve(tlsSocket);
    };
    // A sniffed socket holds the ClientHello it peeked in its JS buffer (unshifted): TLSSocket
    // feeds buffered bytes to OpenSSL before it reads the native handle, so TLS stays on the
    // native socket (a JS stream in between cost ~20% of a TLS server's CPU in writes alone).
    term.pending.set(socket, { resolve: finish, reject });
    socket.once('close', () => {
      if (term.pending.delete(socket)) reject(new TrellisError('TLS_HANDSHAKE_ABORTED', 'connection closed during the TLS handshake'));
    });
    term.server.emit('connection', socket);
  });
}
