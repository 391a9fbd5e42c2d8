/**
 * One jwt_authn provider (envoy.extensions.filters.http.jwt_authn.v3.JwtProvider) compiled once:
 * where its tokens are (headers with a value prefix, query parameters, cookies; Envoy's default is
 * `Authorization: Bearer` and `access_token`), its issuer, audiences and clock skew, and its keys
 * (a JWKS, inline or from a file; `remote_jwks` fetched and cached for `cache_duration`). A fetch
 * or parse failure leaves the provider without keys, so every token fails: a bad JWKS never lets
 * a token in. Verification (signature through `jose`, then Envoy's checks in Envoy's order with
 * Envoy's messages) is cached per token until it expires.
 */
import type { JWK } from 'jose';
import { readFileSync } from 'node:fs';
import { parseJwks } from '../../../config/jwks.ts';
import { configError, optArr, optBool, optDurationMs, optObj, optStr, optUint, type Json } from '../../xds-json.ts';

// `jose` (46 modules, ~0.8 MB of heap) loads with the first jwt_authn provider, not with every
// proxy: most proxies never verify a JWT (bench/README.md, "2026-12-07 (evening): memory pass").
let jose: Promise<typeof import('jose')> | undefined;
const loadJose = () => (jose ??= import('jose'));

/** Envoy's jwt_authn failure statuses and their messages (the 401/403 body). */
export const JwtStatus = {
  missing: 'Jwt is missing',
  badFormat: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
  badHeader: 'Jwt header is an invalid JSON',
  badAlg: 'Jwt header [alg] is not supported',
  badPayload: 'Jwt payload is an invalid JSON',
  expired: 'Jwt is expired',
  notYetValid: 'Jwt not yet valid',
  unknownIssuer: 'Jwt issuer is not configured',
  audience: 'Audiences in Jwt are not allowed',
  noKey: "Jwks doesn't have key to match kid or alg from Jwt",
  verifyFail: 'Jwt verification fails',
  jwksFailed: 'Jwks remote fetch is failed',
} as const;

export type JwtFailure = (typeof JwtStatus)[keyof typeof JwtStatus];

/** A verified token's facts. */
export interface VerifiedJwt {
  readonly payload: Record<string, unknown>;
  /** The base64url payload segment as sent (forward_payload_header). */
  readonly payloadSegment: string;
  readonly exp: number | undefined;
}

export type VerifyResult = { ok: true; jwt: VerifiedJwt } | { ok: false; status: JwtFailure };

/** Where a token was found, so `forward: false` can remove it. */
export interface TokenLocation {
  readonly kind: 'header' | 'param' | 'cookie';
  readonly name: string;
}

export interface CompiledProvider {
  readonly name: string;
  readonly issuer: string | undefined;
  readonly audiences: readonly string[];
  readonly forward: boolean;
  readonly forwardPayloadHeader: string | undefined;
  readonly payloadInMetadata: string | undefined;
  readonly claimToHeaders: readonly { readonly header: string; readonly claim: string }[];
  readonly spaceDelimitedClaims: readonly string[];
  readonly headers: readonly { readonly name: string; readonly prefix: string }[];
  readonly params: readonly string[];
  readonly cookies: readonly string[];
  /** Verify a compact token (signature, issuer, audiences, time). */
  verify(token: string, nowSec: number): Promise<VerifyResult>;
}

const SUPPORTED_ALGS = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512', 'EdDSA']);

function keyFits(jwk: JWK, alg: string): boolean {
  if (jwk.alg !== undefined && jwk.alg !== alg) return false;
  if (alg.startsWith('RS') || alg.startsWith('PS')) return jwk.kty === 'RSA';
  if (alg.startsWith('HS')) return jwk.kty === 'oct';
  if (alg === 'EdDSA') return jwk.kty === 'OKP';
  const crv = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' }[alg];
  return jwk.kty === 'EC' && (jwk.crv === undefined || jwk.crv === crv);
}

/** The keys of a JWKS document; undefined when it is not one. */
function jwksKeys(text: string): JWK[] | undefined {
  const r = parseJwks(text);
  return 'keys' in r ? r.keys : undefined;
}

function b64json(seg: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(Buffer.from(seg, 'base64url').toString('utf8')) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Where the provider's keys come from. */
type KeySource = () => Promise<JWK[] | undefined>;

function keySource(o: Json, path: string): KeySource {
  const local = optObj(o.local_jwks, `${path}.local_jwks`);
  const remote = optObj(o.remote_jwks, `${path}.remote_jwks`);
  if (local !== undefined) {
    const inline = optStr(local.inline_string, `${path}.local_jwks.inline_string`);
    const file = optStr(local.filename, `${path}.local_jwks.filename`);
    let text: string | undefined = inline;
    if (text === undefined && file !== undefined) {
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        configError(`${path}.local_jwks.filename`, `cannot read ${file}`, err);
      }
    }
    if (text === undefined) configError(`${path}.local_jwks`, 'inline_string or filename is required');
    // Envoy accepts the config and fails every token when the inline JWKS is not usable.
    const keys = jwksKeys(text);
    return async () => keys;
  }
  if (remote !== undefined) {
    const uri = optStr(optObj(remote.http_uri, `${path}.remote_jwks.http_uri`)?.uri, `${path}.remote_jwks.http_uri.uri`) ?? configError(`${path}.remote_jwks.http_uri.uri`, 'is required');
    const timeoutMs = optDurationMs(optObj(remote.http_uri, `${path}.remote_jwks.http_uri`)?.timeout, `${path}.remote_jwks.http_uri.timeout`) ?? 5000;
    const cacheMs = optDurationMs(remote.cache_duration, `${path}.remote_jwks.cache_duration`) ?? 600_000;
    let cached: { keys: JWK[] | undefined; at: number } | undefined;
    let inflight: Promise<JWK[] | undefined> | undefined;
    return () => {
      if (cached !== undefined && Date.now() - cached.at < (cached.keys === undefined ? 1000 : cacheMs)) return Promise.resolve(cached.keys);
      inflight ??= fetch(uri, { signal: AbortSignal.timeout(timeoutMs) })
        .then(async (r) => (r.ok ? jwksKeys(await r.text()) : undefined), () => undefined)
        .then((keys) => {
          // A failed refresh keeps the last good keys; never none-means-anything.
          cached = { keys: keys ?? cached?.keys, at: Date.now() };
          inflight = undefined;
          return cached.keys;
        });
      return inflight;
    };
  }
  return configError(path, 'one of local_jwks or remote_jwks is required');
}

const CACHE_MAX = 256;

/** Compile a JwtProvider. */
export function compileProvider(name: string, o: Json, path: string): CompiledProvider {
  for (const f of ['subjects', 'max_lifetime']) if (o[f] !== undefined) configError(`${path}.${f}`, 'is not supported');
  const issuer = optStr(o.issuer, `${path}.issuer`) || undefined;
  const audiences = optArr(o.audiences, `${path}.audiences`).map((a, i) => optStr(a, `${path}.audiences[${i}]`) ?? '');
  const clockSkew = optUint(o.clock_skew_seconds, `${path}.clock_skew_seconds`) ?? 60;
  const requireExp = optBool(o.require_expiration, `${path}.require_expiration`) ?? false;
  const headers = optArr(o.from_headers, `${path}.from_headers`).map((h, i) => {
    const ho = optObj(h, `${path}.from_headers[${i}]`) ?? {};
    return { name: (optStr(ho.name, `${path}.from_headers[${i}].name`) ?? configError(`${path}.from_headers[${i}].name`, 'is required')).toLowerCase(), prefix: optStr(ho.value_prefix, `${path}.from_headers[${i}].value_prefix`) ?? '' };
  });
  const params = optArr(o.from_params, `${path}.from_params`).map((p, i) => optStr(p, `${path}.from_params[${i}]`) ?? '');
  const cookies = optArr(o.from_cookies, `${path}.from_cookies`).map((p, i) => optStr(p, `${path}.from_cookies[${i}]`) ?? '');
  const defaults = headers.length === 0 && params.length === 0 && cookies.length === 0;
  const norm = optObj(o.normalize_payload_in_metadata, `${path}.normalize_payload_in_metadata`);
  const keys = keySource(o, path);
  // Start loading now, so that the first token does not wait for it.
  loadJose().catch(() => undefined);
  const cache = new Map<string, VerifiedJwt>();
  let imported: { list: JWK[] | undefined; objs: Map<JWK, Promise<unknown>> } | undefined;

  async function verifySignature(token: string, header: Record<string, unknown>): Promise<VerifyResult | undefined> {
    const list = await keys();
    if (list === undefined) return { ok: false, status: JwtStatus.noKey };
    if (imported === undefined || imported.list !== list) imported = { list, objs: new Map() };
    const alg = String(header.alg);
    const kid = typeof header.kid === 'string' ? header.kid : undefined;
    const candidates = list.filter((k) => (kid === undefined || k.kid === undefined || k.kid === kid) && keyFits(k, alg));
    if (candidates.length === 0) return { ok: false, status: JwtStatus.noKey };
    const { importJWK, compactVerify } = await loadJose();
    for (const jwk of candidates) {
      let key = imported.objs.get(jwk);
      if (key === undefined) imported.objs.set(jwk, (key = importJWK(jwk, alg).catch(() => undefined)));
      const k = await key;
      if (k === undefined) continue;
      try {
        await compactVerify(token, k as Parameters<typeof compactVerify>[1], { algorithms: [alg] });
        return undefined;
      } catch {
        // try the next key
      }
    }
    return { ok: false, status: JwtStatus.verifyFail };
  }

  function checkTime(jwt: VerifiedJwt, payload: Record<string, unknown>, nowSec: number): JwtFailure | undefined {
    const nbf = typeof payload.nbf === 'number' ? payload.nbf : undefined;
    if (nbf !== undefined && nbf > nowSec + clockSkew) return JwtStatus.notYetValid;
    if (jwt.exp !== undefined && jwt.exp < nowSec - clockSkew) return JwtStatus.expired;
    if (jwt.exp === undefined && requireExp) return JwtStatus.expired;
    return undefined;
  }

  return Object.freeze({
    name, issuer, audiences, forward: optBool(o.forward, `${path}.forward`) ?? false,
    forwardPayloadHeader: optStr(o.forward_payload_header, `${path}.forward_payload_header`) || undefined,
    payloadInMetadata: optStr(o.payload_in_metadata, `${path}.payload_in_metadata`) || undefined,
    claimToHeaders: optArr(o.claim_to_headers, `${path}.claim_to_headers`).map((c, i) => {
      const co = optObj(c, `${path}.claim_to_headers[${i}]`) ?? {};
      return { header: (optStr(co.header_name, `${path}.claim_to_headers[${i}].header_name`) ?? '').toLowerCase(), claim: optStr(co.claim_name, `${path}.claim_to_headers[${i}].claim_name`) ?? '' };
    }),
    spaceDelimitedClaims: norm === undefined ? [] : optArr(norm.space_delimited_claims, `${path}.normalize_payload_in_metadata.space_delimited_claims`).map((c) => String(c)),
    headers: defaults ? [{ name: 'authorization', prefix: 'Bearer ' }] : headers,
    params: defaults ? ['access_token'] : params,
    cookies,
    async verify(token: string, nowSec: number): Promise<VerifyResult> {
      const hit = cache.get(token);
      if (hit !== undefined) {
        const t = checkTime(hit, hit.payload, nowSec);
        return t === undefined ? { ok: true, jwt: hit } : { ok: false, status: t };
      }
      const parts = token.split('.');
      if (parts.length !== 3) return { ok: false, status: JwtStatus.badFormat };
      const header = b64json(parts[0]);
      if (header === undefined) return { ok: false, status: JwtStatus.badHeader };
      if (typeof header.alg !== 'string' || !SUPPORTED_ALGS.has(header.alg)) return { ok: false, status: JwtStatus.badAlg };
      const payload = b64json(parts[1]);
      if (payload === undefined) return { ok: false, status: JwtStatus.badPayload };
      const jwt: VerifiedJwt = { payload, payloadSegment: parts[1], exp: typeof payload.exp === 'number' ? payload.exp : undefined };
      // Envoy's order: issuer, time, audiences, then the signature.
      if (issuer !== undefined && payload.iss !== issuer) return { ok: false, status: JwtStatus.unknownIssuer };
      const t = checkTime(jwt, payload, nowSec);
      if (t !== undefined) return { ok: false, status: t };
      if (audiences.length > 0) {
        const aud = Array.isArray(payload.aud) ? payload.aud : typeof payload.aud === 'string' ? [payload.aud] : [];
        if (!aud.some((a) => audiences.includes(String(a)))) return { ok: false, status: JwtStatus.audience };
      }
      const sig = await verifySignature(token, header);
      if (sig !== undefined) return sig;
      if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string);
      cache.set(token, jwt);
      return { ok: true, jwt };
    },
  });
}
