/**
 * A JSON Web Key Set document (RFC 7517 section 5) as RequestAuthentication `jwks` holds it and
 * a `jwksUri` serves it: parsed once, to tell a usable set from one that is not (not JSON, no
 * `keys` array). Shared by the control plane (validation, JWKS fetching) and the proxy (jwt_authn).
 */
import type { JWK } from 'jose';

/** The keys of a JWKS document, or the reason it is not one. */
export function parseJwks(text: string): { keys: JWK[] } | { error: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { error: `not JSON (${(err as Error).message})` };
  }
  if (doc === null || typeof doc !== 'object' || !Array.isArray((doc as { keys?: unknown }).keys)) return { error: 'not a JWKS: no "keys" array' };
  const keys = ((doc as { keys: unknown[] }).keys).filter((k): k is JWK => k !== null && typeof k === 'object' && typeof (k as JWK).kty === 'string');
  return { keys };
}
