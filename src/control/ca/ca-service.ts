/**
 * The CA's gRPC face: Istio's `IstioCertificateService/CreateCertificate`, added to the xDS server's
 * gRPC server. The caller proves who it is with `authorization: Bearer <token>`; the token's
 * identity (tokens.ts) decides the only SPIFFE id it may get, whatever its CSR asks for. Errors
 * are gRPC statuses with a message saying why: UNAUTHENTICATED (no or unknown token),
 * INVALID_ARGUMENT (bad CSR, wrong SAN), INTERNAL (anything else).
 */
import { createHash } from 'node:crypto';
import { status, type Metadata, type Server, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { certificateServiceDefinition, type CertificateRequestMsg, type CertificateResponseMsg } from '../../xds/ca-wire.ts';
import { describeError, hasCode } from '../../errors.ts';
import { spiffeId } from '../translate/identity.ts';
import type { CertificateAuthority } from './authority.ts';
import { lookupToken, type TokenIdentity } from './tokens.ts';

export interface CaServiceOptions {
  readonly ca: CertificateAuthority;
  /** Where `trellis up` records tokens (tokens.ts). */
  readonly tokenDir: string;
  readonly trustDomain: string;
  readonly log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

function bearer(md: Metadata): string | undefined {
  const v = md.get('authorization')[0];
  if (typeof v !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(v.trim());
  return m?.[1];
}

/** Registers CreateCertificate on `server`. */
export function addCaService(server: Server, opts: CaServiceOptions): void {
  server.addService(certificateServiceDefinition, {
    CreateCertificate(call: ServerUnaryCall<CertificateRequestMsg, CertificateResponseMsg>, cb: sendUnaryData<CertificateResponseMsg>) {
      const token = bearer(call.metadata);
      const who: TokenIdentity | undefined = token === undefined ? undefined : lookupToken(opts.tokenDir, token);
      if (who === undefined) {
        opts.log?.('warn', 'ca: refused a certificate request', { reason: token === undefined ? 'no bearer token' : 'unknown token', peer: call.getPeer() });
        cb({ code: status.UNAUTHENTICATED, details: token === undefined ? 'no bearer token in the authorization metadata' : 'unknown or revoked token' });
        return;
      }
      const id = spiffeId(opts.trustDomain, who.namespace, who.serviceAccount);
      try {
        const chain = opts.ca.sign({
          csr: call.request.csr, spiffeId: id, ttlSeconds: call.request.validityDuration,
          requester: createHash('sha256').update(token!).digest('hex').slice(0, 16), nodeId: call.request.metadata.NODE_ID ?? '',
        });
        cb(null, { certChain: chain });
      } catch (err) {
        const code = hasCode(err, 'CA_REQUEST_INVALID') || hasCode(err, 'PKI_CSR_INVALID') ? status.INVALID_ARGUMENT : status.INTERNAL;
        opts.log?.('warn', 'ca: certificate request failed', { identity: id, error: describeError(err) });
        cb({ code, details: describeError(err) });
      }
    },
  });
}
