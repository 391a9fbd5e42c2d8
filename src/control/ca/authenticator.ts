/**
 * How the CA learns who is asking (Istio's `authenticate.Authenticator`s): each authenticator
 * looks at the bearer token of a CreateCertificate call and answers with the caller's identity
 * (namespace and service account: the only SPIFFE id it may get), "not mine" (undefined: the next
 * authenticator is asked), or a refusal it is sure of. Local mode has `trellis up`'s per-workload
 * tokens (tokens.ts); Kubernetes adds service-account tokens checked by the API server's
 * TokenReview (kube/token-review.ts). A refusal is CA_TOKEN_REJECTED (the token is bad: gRPC
 * UNAUTHENTICATED) or CA_AUTH_UNAVAILABLE (the authenticator could not decide, e.g. the API server
 * is unreachable: gRPC UNAVAILABLE, retried by the caller). Neither ever issues.
 */
import type { Metadata } from '@grpc/grpc-js';
import { TrellisError } from '../../errors.ts';

/** The caller, once authenticated. */
export interface CaCaller {
  readonly namespace: string;
  readonly serviceAccount: string;
  /** A stable id of the workload instance (not the credential), for the CA's records of who holds which root. */
  readonly requester: string;
  /** Which authenticator vouched for it (logs, /debug/ca). */
  readonly authenticator: string;
  /** The pod the token is bound to, when the token says so. */
  readonly pod?: string;
}

/** What an authenticator may look at besides the token: the call's metadata (ca-tls.ts marks calls that came over TLS there). */
export interface CaCallContext {
  readonly metadata: Metadata;
}

export interface CaAuthenticator {
  readonly name: string;
  /** The caller, or undefined when the token is not this authenticator's kind. Throws CA_TOKEN_REJECTED / CA_AUTH_UNAVAILABLE. */
  authenticate(token: string, call: CaCallContext): Promise<CaCaller | undefined>;
}

/** A token this authenticator knows and refuses. */
export function tokenRejected(message: string, context: Record<string, unknown> = {}): TrellisError {
  return new TrellisError('CA_TOKEN_REJECTED', message, { context });
}

/** The authenticator could not decide (its backend failed); nothing is issued. */
export function authUnavailable(message: string, cause: unknown): TrellisError {
  return new TrellisError('CA_AUTH_UNAVAILABLE', message, { cause });
}

/** Asks each authenticator in turn; the first answer wins. Undefined when none knows the token. */
export async function authenticateCaller(authenticators: readonly CaAuthenticator[], token: string, call: CaCallContext): Promise<CaCaller | undefined> {
  for (const a of authenticators) {
    const who = await a.authenticate(token, call);
    if (who !== undefined) return who;
  }
  return undefined;
}
