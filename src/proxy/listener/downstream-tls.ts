/**
 * TLS termination for a filter chain (`transport_socket` with a `DownstreamTlsContext`): server
 * certificates inline, from files or from SDS, optional client certificates
 * (`require_client_certificate`) verified against the trusted CA and the SAN matchers, and ALPN.
 * The common_tls_context is parsed by the same code as the upstream side, so SDS and the mesh CA
 * plug into both through one `SecretProvider`.
 */
import tls from 'node:tls';
import type net from 'node:net';
import { Duplex } from 'node:stream';
import type { XdsJson } from '../../xds/types.ts';
import { TrellisError } from '../../errors.ts';
import { child, invalid, optBool, optObject, optString, type FieldPath } from '../upstream/xds-read.ts';
import { parseUpstreamTlsContext, type UpstreamTlsConfig } from '../tls/upstream-tls-config.ts';
import { sansMatch } from '../tls/upstream-tls.ts';
import type { SecretProvider } from '../tls/secret-provider.ts';

export const DownstreamTlsContextType = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';

/** A frozen downstream TLS configuration. */
export interface DownstreamTlsConfig {
  readonly common: UpstreamTlsConfig;
  readonly requireClientCertificate: boolean;
}

/** Parses a filter chain's `transport_socket`; undefined for plaintext (raw_buffer or absent). */
export function parseDownstreamTransportSocket(ts: XdsJson | undefined, at: FieldPath): DownstreamTlsConfig | undefined {
  if (ts === undefined) return undefined;
  const typed = optObject(ts, 'typed_config', at);
  const name = optString(ts, 'name', at);
  if (typed === undefined) {
    if (name === undefined || name === 'envoy.transport_sockets.raw_buffer') return undefined;
    throw invalid(child(at, 'typed_config'), `transport socket '${name}' needs a typed_config`);
  }
  const tp = child(at, 'typed_config');
  if (typed['@type'] !== DownstreamTlsContextType) throw invalid(child(tp, '@type'), `unsupported downstream transport socket ${String(typed['@type'])}`);
  const common = parseUpstreamTlsContext({ common_tls_context: typed.common_tls_context ?? {} }, tp);
  if (common.certificates.length === 0 && common.certificateSdsNames.length === 0) {
    throw invalid(child(tp, 'common_tls_context.tls_certificates'), 'a server certificate is required (tls_certificates or tls_certificate_sds_secret_configs)');
  }
  return Object.freeze({ common, requireClientCertificate: optBool(typed, 'require_client_certificate', tp) ?? false });
}

/** Builds the server options for one new connection (SDS secrets are looked up now, so rotation applies to new connections). */
export function serverTlsOptions(cfg: DownstreamTlsConfig, secrets: SecretProvider): tls.TlsOptions {
  const c = cfg.common;
  const cert = c.certificates[0] ?? (c.certificateSdsNames.length > 0 ? secrets.tlsCertificate(c.certificateSdsNames[0]) : undefined);
  if (cert === undefined) throw new TrellisError('TLS_SECRET_MISSING', `server certificate secret '${c.certificateSdsNames[0]}' has not been received`);
  let ca = c.validation?.trustedCa;
  if (c.validationSdsName !== undefined) ca = secrets.validationContext(c.validationSdsName)?.trustedCa ?? ca;
  return {
    cert: cert.certChain,
    key: cert.privateKey,
    ca,
    requestCert: cfg.requireClientCertificate || ca !== undefined,
    rejectUnauthorized: cfg.requireClientCertificate,
    ALPNProtocols: c.alpn.length > 0 ? [...c.alpn] : undefined,
    minVersion: c.minVersion,
    maxVersion: c.maxVersion,
  };
}

/**
 * Terminates TLS on an accepted (and possibly sniffed) socket. Resolves with the TLS socket once
 * the handshake is done and the client certificate (when required) passed the SAN matchers.
 */
export function terminateTls(socket: net.Socket, cfg: DownstreamTlsConfig, secrets: SecretProvider, handshakeTimeoutMs = 10_000): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    let opts: tls.TlsOptions;
    try {
      opts = serverTlsOptions(cfg, secrets);
    } catch (err) {
      reject(err);
      return;
    }
    const secureContext = tls.createSecureContext(opts);
    const tlsSocket = new tls.TLSSocket(socket.readableLength > 0 ? jsStreamOver(socket) : socket, {
      isServer: true,
      secureContext,
      requestCert: opts.requestCert,
      rejectUnauthorized: opts.rejectUnauthorized,
      ALPNProtocols: opts.ALPNProtocols,
    });
    const timer = setTimeout(() => fail(new TrellisError('TLS_HANDSHAKE_TIMEOUT', 'downstream TLS handshake timed out')), handshakeTimeoutMs);
    const fail = (err: unknown) => {
      clearTimeout(timer);
      tlsSocket.destroy();
      reject(err);
    };
    tlsSocket.once('error', fail);
    tlsSocket.once('secure', () => {
      clearTimeout(timer);
      tlsSocket.off('error', fail);
      if (cfg.requireClientCertificate) {
        const peer = tlsSocket.getPeerCertificate();
        const matchers = cfg.common.validation?.sanMatchers ?? [];
        if (!peer || Object.keys(peer).length === 0 || !sansMatch(peer, matchers)) {
          fail(new TrellisError('TLS_PEER_REJECTED', `client certificate SANs [${peer?.subjectaltname ?? ''}] match none of the configured matchers`));
          return;
        }
      }
      resolve(tlsSocket);
    });
  });
}

/**
 * A plain Duplex over a socket. TLSSocket reads a net.Socket through its native handle, which
 * would skip bytes that sniffing peeked and put back (`unshift`); over a JS stream it sees them.
 * Used only for sniffed connections, so the common path keeps the native fast path.
 */
function jsStreamOver(socket: net.Socket): Duplex {
  const wrapper = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      socket.write(chunk, cb);
    },
    final(cb) {
      socket.end();
      cb();
    },
    destroy(err, cb) {
      socket.destroy(err ?? undefined);
      cb(err);
    },
  });
  socket.on('data', (d: Buffer) => {
    if (!wrapper.push(d)) socket.pause();
  });
  socket.on('end', () => wrapper.push(null));
  socket.on('close', () => wrapper.destroy());
  return wrapper;
}
