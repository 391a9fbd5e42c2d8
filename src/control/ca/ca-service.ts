/**
 * The CA's gRPC face: Istio's `IstioCertificateService/CreateCertificate`, added to the xDS server's
 * gRPC server. The caller proves who it is with `authorization: Bearer <token>`; the authenticators
 * (authenticator.ts: `trellis up`'s workload tokens, Kubernetes service-account tokens) decide the
 * only SPIFFE id it may get, whatever its CSR asks for. Errors are gRPC statuses with a message
 * saying why: UNAUTHENTICATED (no, unknown or refused token), UNAVAILABLE (the token could not be
 * checked, e.g. the API server is unreachable: nothing is issued, the agent retries),
 * INVALID_ARGUMENT (bad CSR, an identity other than the token's), INTERNAL (anything else).
 */
import { status, type Metadata, type Server, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { certificateServiceDefinition, type CertificateRequestMsg, type CertificateResponseMsg } from '../../xds/ca-wire.ts';
import { describeError, hasCode } from '../../errors.ts';
import { spiffeId } from '../translate/identity.ts';
import type { CertificateAuthority } from './authority.ts';
import { authenticateCaller, type CaAuthenticator, type CaCaller } from './authenticator.ts';

export interface CaServiceOptions {
  readonly ca: CertificateAuthority;
  /** Asked in order; the first that knows the token decides. */
  readonly authenticators: readonly CaAuthenticator[];
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
  const refuse = (call: ServerUnaryCall<CertificateRequestMsg, CertificateResponseMsg>, cb: sendUnaryData<CertificateResponseMsg>, code: status, details: string): void => {
    opts.log?.('warn', 'ca: refused a certificate request', { reason: details, peer: call.getPeer(), node: call.request.metadata.NODE_ID ?? '' });
    cb({ code, details });
  };
  server.addService(certificateServiceDefinition, {
    CreateCertificate(call: ServerUnaryCall<CertificateRequestMsg, CertificateResponseMsg>, cb: sendUnaryData<CertificateResponseMsg>) {
      const token = bearer(call.metadata);
      if (token === undefined) {
        refuse(call, cb, status.UNAUTHENTICATED, 'no bearer token in the authorization metadata');
        return;
      }
      void authenticateCaller(opts.authenticators, token, { metadata: call.metadata }).then((who: CaCaller | undefined) => {
        if (who === undefined) {
          refuse(call, cb, status.UNAUTHENTICATED, 'unknown or revoked token');
          return;
        }
        const id = spiffeId(opts.trustDomain, who.namespace, who.serviceAccount);
        try {
          const chain = opts.ca.sign({ csr: call.request.csr, spiffeId: id, ttlSeconds: call.request.validityDuration, requester: who.requester, nodeId: call.request.metadata.NODE_ID ?? '' });
          cb(null, { certChain: chain });
        } catch (err) {
          const code = hasCode(err, 'CA_REQUEST_INVALID') || hasCode(err, 'PKI_CSR_INVALID') ? status.INVALID_ARGUMENT : status.INTERNAL;
          opts.log?.('warn', 'ca: certificate request failed', { identity: id, authenticator: who.authenticator, error: describeError(err) });
          cb({ code, details: describeError(err) });
        }
      }, (err: unknown) => {
        if (hasCode(err, 'CA_AUTH_UNAVAILABLE')) refuse(call, cb, status.UNAVAILABLE, describeError(err));
        else if (hasCode(err, 'CA_TOKEN_REJECTED')) refuse(call, cb, status.UNAUTHENTICATED, describeError(err));
        else refuse(call, cb, status.INTERNAL, `authenticating the caller failed: ${describeError(err)}`);
      });
    },
  });
}
