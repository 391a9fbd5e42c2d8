/**
 * Per-workload bearer tokens for the CA in local mode: `trellis up` issues one token per replica
 * (the proxy reads it from a file, as Istio's agent reads its service-account token) and records,
 * under the token's SHA-256, which identity it stands for. The control plane checks a caller's
 * token by looking its hash up, so the directory never holds a usable token, a token is revoked by
 * deleting its file, and no watch is needed (each CreateCertificate reads one small file).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { CaAuthenticator } from './authenticator.ts';

/** Who a token may get certificates for. */
export interface TokenIdentity {
  readonly namespace: string;
  readonly serviceAccount: string;
  /** Informational: the workload instance it was issued for. */
  readonly workload?: string;
}

function hashOf(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Issues a new random token for `identity`, recorded in `dir`; returns the token. */
export function issueToken(dir: string, identity: TokenIdentity): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('base64url');
  const file = join(dir, `${hashOf(token)}.json`);
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify(identity) + '\n', { mode: 0o600 });
  renameSync(tmp, file);
  return token;
}

/** The identity a token stands for, or undefined (unknown, revoked, unreadable). */
export function lookupToken(dir: string, token: string): TokenIdentity | undefined {
  if (token === '' || token.length > 4096) return undefined;
  try {
    const v = JSON.parse(readFileSync(join(dir, `${hashOf(token)}.json`), 'utf8')) as Partial<TokenIdentity>;
    if (typeof v.namespace !== 'string' || typeof v.serviceAccount !== 'string' || v.namespace === '' || v.serviceAccount === '') return undefined;
    return { namespace: v.namespace, serviceAccount: v.serviceAccount, ...(typeof v.workload === 'string' ? { workload: v.workload } : {}) };
  } catch {
    return undefined;
  }
}

/** Revokes a token (no error when already gone). */
export function revokeToken(dir: string, token: string): void {
  rmSync(join(dir, `${hashOf(token)}.json`), { force: true });
}

/** `trellis up`'s tokens as a CA authenticator: a token recorded in `dir`, or not this authenticator's. */
export function tokenFileAuthenticator(dir: string): CaAuthenticator {
  return {
    name: 'workload-token',
    async authenticate(token) {
      const who = lookupToken(dir, token);
      if (who === undefined) return undefined;
      return { namespace: who.namespace, serviceAccount: who.serviceAccount, requester: hashOf(token).slice(0, 16), authenticator: 'workload-token' };
    },
  };
}
