/**
 * Kubernetes service-account tokens as CA credentials, as Istio's KubeJWTAuthenticator checks
 * them: the API server's TokenReview (authentication.k8s.io/v1) with the audiences the CA accepts
 * (Istio's `istio-ca`), which verifies signature, expiry, audience and that the bound pod and
 * service account still exist. The caller is who the review says: the token must be authenticated,
 * in the `system:serviceaccounts` group, named `system:serviceaccount:<ns>:<sa>`, and the review
 * must echo one of our audiences (an authenticator that ignores audiences echoes none, and is
 * refused). Positive answers are cached briefly (never past the token's own expiry); refusals and
 * failures are not cached, and a review that fails (API server unreachable, 403) never issues.
 * With `tls`, a token that came over plaintext is refused before it is reviewed: it may have been
 * read on the way, and a proxy that sends one is misconfigured (Istio serves its CA on TLS only).
 */
import { createHash } from 'node:crypto';
import { describeError } from '../../errors.ts';
import type { KubeRest } from '../../config/store/kubernetes-rest.ts';
import { authUnavailable, tokenRejected, type CaAuthenticator, type CaCaller } from '../ca/authenticator.ts';
import type { TlsCallMark } from '../ca/ca-tls.ts';

/** Istio's default audience for tokens presented to its CA. */
export const IstioCaAudience = 'istio-ca';

/** `status` of a TokenReview, as the API server answers it. */
export interface TokenReviewStatus {
  readonly authenticated?: boolean;
  readonly error?: string;
  readonly audiences?: readonly string[];
  readonly user?: { readonly username?: string; readonly uid?: string; readonly groups?: readonly string[]; readonly extra?: Readonly<Record<string, readonly string[]>> };
}

/** Asks the API server to review `token` for `audiences`. */
export type TokenReviewer = (token: string, audiences: readonly string[]) => Promise<TokenReviewStatus>;

/** The TokenReview API of `rest`'s API server (needs `create` on `tokenreviews`). */
export function kubeTokenReviewer(rest: KubeRest, timeoutMs = 10_000): TokenReviewer {
  return async (token, audiences) => {
    const res = await rest.request<{ status?: TokenReviewStatus }>('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences } },
      timeoutMs,
    });
    return res.status ?? {};
  };
}

export interface TokenReviewAuthenticatorOptions {
  readonly review: TokenReviewer;
  /** Audiences a token must carry one of (default `istio-ca`). */
  readonly audiences?: readonly string[];
  /** How long a positive review is reused (default 30 s; never past the token's expiry). */
  readonly cacheTtlMs?: number;
  /** Most cached reviews (default 10,000; the oldest goes first). */
  readonly maxCacheEntries?: number;
  /** Accept tokens only on calls this mark says came over TLS. */
  readonly tls?: Pick<TlsCallMark, 'isTls'>;
  readonly now?: () => number;
}

const PodNameKey = 'authentication.kubernetes.io/pod-name';
const PodUidKey = 'authentication.kubernetes.io/pod-uid';

/** The unverified claims of a JWT, only to word a refusal (the decision is the TokenReview's). */
function peekClaims(token: string): { aud?: unknown; exp?: unknown; sub?: unknown } | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const v = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null ? (v as { aud?: unknown; exp?: unknown; sub?: unknown }) : undefined;
  } catch {
    return undefined;
  }
}

/** Why the API server refused a token, in words a user can act on. */
function refusalReason(token: string, status: TokenReviewStatus, audiences: readonly string[], now: number): string {
  const claims = peekClaims(token);
  if (claims === undefined) return 'the token is not a JWT';
  const aud = Array.isArray(claims.aud) ? claims.aud.map(String) : typeof claims.aud === 'string' ? [claims.aud] : [];
  if (!aud.some((a) => audiences.includes(a))) return `the token's audience [${aud.join(', ')}] is not one the CA accepts [${audiences.join(', ')}]`;
  if (typeof claims.exp === 'number' && claims.exp * 1000 <= now) return `the token expired at ${new Date(claims.exp * 1000).toISOString()}`;
  return `the API server did not authenticate it${status.error ? `: ${status.error}` : ''}`;
}

/** The CA authenticator for Kubernetes service-account tokens. */
export function tokenReviewAuthenticator(o: TokenReviewAuthenticatorOptions): CaAuthenticator {
  const audiences = o.audiences ?? [IstioCaAudience];
  const ttl = o.cacheTtlMs ?? 30_000;
  const max = o.maxCacheEntries ?? 10_000;
  const now = o.now ?? Date.now;
  const cache = new Map<string, { caller: CaCaller; until: number }>();
  const inFlight = new Map<string, Promise<CaCaller>>();

  const review = async (token: string, key: string): Promise<CaCaller> => {
    let st: TokenReviewStatus;
    try {
      st = await o.review(token, audiences);
    } catch (err) {
      throw authUnavailable(`the Kubernetes TokenReview failed, so the token could not be checked: ${describeError(err)}`, err);
    }
    const t = now();
    if (st.authenticated !== true) throw tokenRejected(`service-account token refused: ${refusalReason(token, st, audiences, t)}`);
    const user = st.user ?? {};
    if (!(user.groups ?? []).includes('system:serviceaccounts')) throw tokenRejected(`the token is not a service-account token (user '${user.username ?? ''}')`);
    const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(user.username ?? '');
    if (m === null) throw tokenRejected(`the TokenReview names no service account (user '${user.username ?? ''}')`);
    if (!(st.audiences ?? []).some((a) => audiences.includes(a))) {
      throw tokenRejected(`the TokenReview did not confirm the audience [${audiences.join(', ')}] (it echoed [${(st.audiences ?? []).join(', ')}])`);
    }
    const pod = user.extra?.[PodNameKey]?.[0];
    const podUid = user.extra?.[PodUidKey]?.[0];
    const caller: CaCaller = {
      namespace: m[1], serviceAccount: m[2], authenticator: 'kubernetes-token',
      requester: podUid ?? key.slice(0, 16), ...(pod !== undefined ? { pod } : {}),
    };
    const exp = peekClaims(token)?.exp;
    const until = Math.min(t + ttl, typeof exp === 'number' ? exp * 1000 : Infinity);
    if (until > t) {
      cache.delete(key);
      cache.set(key, { caller, until });
      if (cache.size > max) cache.delete(cache.keys().next().value as string);
    }
    return caller;
  };

  return {
    name: 'kubernetes-token',
    async authenticate(token, call) {
      if (o.tls !== undefined && !o.tls.isTls(call.metadata)) {
        throw tokenRejected('service-account tokens are accepted only over TLS (the CA\'s TLS port, 15012); this one came in plaintext');
      }
      const key = createHash('sha256').update(token).digest('hex');
      const hit = cache.get(key);
      if (hit !== undefined) {
        if (hit.until > now()) return hit.caller;
        cache.delete(key);
      }
      // Concurrent calls with one token (a retry racing the first) share one review.
      let p = inFlight.get(key);
      if (p === undefined) {
        p = review(token, key).finally(() => inFlight.delete(key));
        inFlight.set(key, p);
      }
      return p;
    },
  };
}
