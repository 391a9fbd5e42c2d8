/**
 * The JWT authentication filter (`envoy.filters.http.jwt_authn`,
 * envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication): the first rule whose match fits
 * the request names a requirement (provider, provider_and_audiences, requires_any, requires_all,
 * allow_missing, allow_missing_or_failed; or a requirement_map entry); tokens are taken from each
 * provider's locations and verified (jwt-provider.ts). A failed requirement is Envoy's local
 * reply: 401 with the failure as body and `www-authenticate: Bearer realm="<url>",
 * error="invalid_token"` (403 when only the audience is wrong). On success the payload goes to
 * dynamic metadata (`payload_in_metadata`, space-delimited claims split into lists), claims and
 * the payload to headers, and without `forward` the token header is removed. Headers the filter
 * writes are removed from every request first, so a client cannot forge them.
 */
import { configError, optArr, optBool, optObj, optStr, type Json } from '../../http/config-json.ts';
import type { FilterRegistration, HttpStream } from '../../http/filter-chain.ts';
import { compileHeaderMatcher, compileStringMatcher, type HeaderMatch } from '../../http/matchers.ts';
import { pathOnly } from '../rbac/rbac-matchers.ts';
import { compileProvider, JwtStatus, type CompiledProvider, type JwtFailure, type VerifiedJwt } from './jwt-provider.ts';

const TYPE = 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';
const PER_ROUTE_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig';
/** Dynamic metadata namespace of the filter (RBAC matches JWT claims there). */
export const JwtMetadataNamespace = 'envoy.filters.http.jwt_authn';

/** What verifying one request produces. */
interface Outcome {
  readonly ok: boolean;
  readonly status?: JwtFailure;
  readonly verified: readonly { provider: CompiledProvider; jwt: VerifiedJwt; from: { kind: 'header' | 'param' | 'cookie'; name: string } }[];
}

/** A requirement compiled to an async check over the request's tokens. */
type Requirement = (ctx: RequestTokens) => Promise<Outcome>;

/** Tokens found in one request, per provider, extracted once. */
class RequestTokens {
  readonly #s: HttpStream;
  readonly #now = Math.floor(Date.now() / 1000);
  readonly #cookies: Map<string, string> | undefined;
  readonly #params: URLSearchParams | undefined;
  constructor(s: HttpStream) {
    this.#s = s;
    const c = s.headers.cookie;
    this.#cookies = c === undefined ? undefined : parseCookies(Array.isArray(c) ? c.join('; ') : c);
    const q = s.path.indexOf('?');
    this.#params = q < 0 ? undefined : new URLSearchParams(s.path.slice(q + 1));
  }

  /** The tokens `p` sees (Envoy verifies the first one found). */
  tokensFor(p: CompiledProvider): { token: string; from: { kind: 'header' | 'param' | 'cookie'; name: string } }[] {
    const out: { token: string; from: { kind: 'header' | 'param' | 'cookie'; name: string } }[] = [];
    for (const h of p.headers) {
      const raw = this.#s.headers[h.name];
      for (const v of raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]) {
        const t = extractToken(v, h.prefix);
        if (t !== undefined) out.push({ token: t, from: { kind: 'header', name: h.name } });
      }
    }
    for (const name of p.params) {
      const v = this.#params?.get(name);
      if (v) out.push({ token: v, from: { kind: 'param', name } });
    }
    for (const name of p.cookies) {
      const v = this.#cookies?.get(name);
      if (v) out.push({ token: v, from: { kind: 'cookie', name } });
    }
    return out;
  }

  async verify(p: CompiledProvider): Promise<Outcome> {
    const tokens = this.tokensFor(p);
    if (tokens.length === 0) return { ok: false, status: JwtStatus.missing, verified: [] };
    const first = tokens[0];
    const r = await p.verify(first.token, this.#now);
    return r.ok ? { ok: true, verified: [{ provider: p, jwt: r.jwt, from: first.from }] } : { ok: false, status: r.status, verified: [] };
  }
}

function parseCookies(header: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const k = part.slice(0, i).trim();
    if (!m.has(k)) m.set(k, part.slice(i + 1).trim());
  }
  return m;
}

const TOKEN_CHARS = /^[A-Za-z0-9\-_.=+/]+/;

/** Envoy's extraction: the value after `prefix` (found anywhere in the value), up to the first character a JWT cannot hold. */
export function extractToken(value: string, prefix: string): string | undefined {
  let rest = value;
  if (prefix !== '') {
    const i = value.indexOf(prefix);
    if (i < 0) return undefined;
    rest = value.slice(i + prefix.length);
  }
  const m = TOKEN_CHARS.exec(rest.trimStart());
  return m === null ? undefined : m[0];
}

function worst(a: Outcome, b: Outcome): Outcome {
  // A present-but-bad token says more than a missing one.
  return a.status === JwtStatus.missing ? b : a;
}

function compileRequirement(v: unknown, path: string, providers: ReadonlyMap<string, CompiledProvider>): Requirement {
  const o = optObj(v, path) ?? configError(path, 'a JwtRequirement is required');
  const provider = (name: string, p: string): CompiledProvider => providers.get(name) ?? configError(p, `unknown provider '${name}'`);
  if (o.provider_name !== undefined) {
    const p = provider(optStr(o.provider_name, `${path}.provider_name`) ?? '', `${path}.provider_name`);
    return (t) => t.verify(p);
  }
  if (o.provider_and_audiences !== undefined) {
    const pa = optObj(o.provider_and_audiences, `${path}.provider_and_audiences`) ?? {};
    const p = provider(optStr(pa.provider_name, `${path}.provider_and_audiences.provider_name`) ?? '', `${path}.provider_and_audiences.provider_name`);
    const auds = optArr(pa.audiences, `${path}.provider_and_audiences.audiences`).map(String);
    const withAud = compileProvider(p.name, { ...rawProviders.get(p)!, audiences: auds }, `${path}.provider_and_audiences`);
    return (t) => t.verify(withAud);
  }
  if (o.requires_any !== undefined) {
    const list = optArr(optObj(o.requires_any, `${path}.requires_any`)?.requirements, `${path}.requires_any.requirements`).map((r, i) => compileRequirement(r, `${path}.requires_any.requirements[${i}]`, providers));
    if (list.length < 2) configError(`${path}.requires_any.requirements`, 'needs at least 2 requirements');
    return async (t) => {
      let bad: Outcome | undefined;
      for (const r of list) {
        const out = await r(t);
        if (out.ok) return out;
        bad = bad === undefined ? out : worst(bad, out);
      }
      return bad!;
    };
  }
  if (o.requires_all !== undefined) {
    const list = optArr(optObj(o.requires_all, `${path}.requires_all`)?.requirements, `${path}.requires_all.requirements`).map((r, i) => compileRequirement(r, `${path}.requires_all.requirements[${i}]`, providers));
    if (list.length < 2) configError(`${path}.requires_all.requirements`, 'needs at least 2 requirements');
    return async (t) => {
      const verified: Outcome['verified'][number][] = [];
      for (const r of list) {
        const out = await r(t);
        if (!out.ok) return out;
        verified.push(...out.verified);
      }
      return { ok: true, verified };
    };
  }
  if (o.allow_missing_or_failed !== undefined || o.allow_missing !== undefined) {
    const failedToo = o.allow_missing_or_failed !== undefined;
    const all = [...providers.values()];
    // Envoy: every token found in any provider's locations is verified; a missing token passes,
    // a bad one fails (allow_missing) or passes unverified (allow_missing_or_failed).
    return async (t) => {
      const verified: Outcome['verified'][number][] = [];
      for (const p of all) {
        const out = await t.verify(p);
        if (out.ok) verified.push(...out.verified);
        else if (out.status !== JwtStatus.missing && !failedToo) return out;
      }
      return { ok: true, verified };
    };
  }
  return configError(path, 'one of provider_name, provider_and_audiences, requires_any, requires_all, allow_missing, allow_missing_or_failed is required');
}

/** Raw provider JSON by compiled provider (provider_and_audiences recompiles with other audiences). */
const rawProviders = new WeakMap<CompiledProvider, Json>();

interface Rule {
  readonly matches: (s: HttpStream) => boolean;
  readonly requirement: Requirement | undefined;
}

function compileMatch(v: unknown, path: string): (s: HttpStream) => boolean {
  const o = optObj(v, path) ?? configError(path, 'a RouteMatch is required');
  const ci = optBool(o.case_sensitive, `${path}.case_sensitive`) === false;
  const norm = (x: string) => (ci ? x.toLowerCase() : x);
  let pathTest: (p: string) => boolean;
  if (o.prefix !== undefined) {
    const pre = norm(optStr(o.prefix, `${path}.prefix`) ?? '');
    pathTest = (p) => norm(p).startsWith(pre);
  } else if (o.path !== undefined) {
    const exact = norm(optStr(o.path, `${path}.path`) ?? '');
    pathTest = (p) => norm(p) === exact;
  } else if (o.safe_regex !== undefined) {
    const sm = compileStringMatcher({ safe_regex: o.safe_regex }, path);
    pathTest = (p) => sm(p);
  } else {
    return configError(path, 'one of prefix, path, safe_regex is required');
  }
  const headers: HeaderMatch[] = optArr(o.headers, `${path}.headers`).map((h, i) => compileHeaderMatcher(h, `${path}.headers[${i}]`));
  return (s) => pathTest(pathOnly(s.path)) && headers.every((h) => h(s));
}

/** A compiled JwtAuthentication. */
export interface JwtAuthnConfig {
  readonly rules: readonly Rule[];
  readonly requirementMap: ReadonlyMap<string, Requirement>;
  readonly providers: readonly CompiledProvider[];
  readonly bypassCorsPreflight: boolean;
  /** Request headers the filter writes (cleared first). */
  readonly outputHeaders: readonly string[];
}

/** Compile a JwtAuthentication typed config. */
export function compileJwtAuthn(o: Json, path: string): JwtAuthnConfig {
  if (o.filter_state_rules !== undefined) configError(`${path}.filter_state_rules`, 'is not supported');
  const provObj = optObj(o.providers, `${path}.providers`) ?? {};
  const providers = new Map<string, CompiledProvider>();
  for (const name of Object.keys(provObj).sort()) {
    const raw = optObj(provObj[name], `${path}.providers[${JSON.stringify(name)}]`) ?? {};
    const p = compileProvider(name, raw, `${path}.providers[${JSON.stringify(name)}]`);
    rawProviders.set(p, raw);
    providers.set(name, p);
  }
  const requirementMap = new Map<string, Requirement>();
  const rm = optObj(o.requirement_map, `${path}.requirement_map`) ?? {};
  for (const [k, v] of Object.entries(rm)) requirementMap.set(k, compileRequirement(v, `${path}.requirement_map[${JSON.stringify(k)}]`, providers));
  const rules = optArr(o.rules, `${path}.rules`).map((r, i): Rule => {
    const p = `${path}.rules[${i}]`;
    const ro = optObj(r, p) ?? {};
    let requirement: Requirement | undefined;
    if (ro.requires !== undefined) requirement = compileRequirement(ro.requires, `${p}.requires`, providers);
    else if (ro.requirement_name !== undefined) {
      const n = optStr(ro.requirement_name, `${p}.requirement_name`) ?? '';
      requirement = requirementMap.get(n) ?? configError(`${p}.requirement_name`, `unknown requirement '${n}'`);
    }
    return { matches: compileMatch(ro.match, `${p}.match`), requirement };
  });
  const outputHeaders = new Set<string>();
  for (const p of providers.values()) {
    if (p.forwardPayloadHeader !== undefined) outputHeaders.add(p.forwardPayloadHeader.toLowerCase());
    for (const c of p.claimToHeaders) outputHeaders.add(c.header);
  }
  return Object.freeze({ rules, requirementMap, providers: [...providers.values()], bypassCorsPreflight: optBool(o.bypass_cors_preflight, `${path}.bypass_cors_preflight`) ?? false, outputHeaders: [...outputHeaders] });
}

function claimValue(payload: Record<string, unknown>, claim: string): string | undefined {
  let cur: unknown = payload;
  for (const k of claim.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  if (typeof cur === 'string') return cur;
  if (typeof cur === 'number' || typeof cur === 'boolean') return String(cur);
  if (Array.isArray(cur) && cur.every((x) => typeof x === 'string')) return cur.join(',');
  return undefined;
}

function applySuccess(s: HttpStream, out: Outcome): void {
  for (const { provider: p, jwt, from } of out.verified) {
    if (p.payloadInMetadata !== undefined) {
      let payload = jwt.payload;
      if (p.spaceDelimitedClaims.length > 0) {
        payload = { ...payload };
        for (const c of p.spaceDelimitedClaims) if (typeof payload[c] === 'string') payload[c] = (payload[c] as string).split(' ').filter(Boolean);
      }
      s.setMetadata(JwtMetadataNamespace, p.payloadInMetadata, payload);
    }
    if (p.forwardPayloadHeader !== undefined) s.headers[p.forwardPayloadHeader.toLowerCase()] = jwt.payloadSegment;
    for (const c of p.claimToHeaders) {
      const v = claimValue(jwt.payload, c.claim);
      if (v !== undefined) s.headers[c.header] = v;
    }
    if (!p.forward && from.kind === 'header') delete s.headers[from.name];
  }
}

/** Registration of the jwt_authn filter. */
export const jwtAuthnFilter: FilterRegistration = {
  name: 'envoy.filters.http.jwt_authn',
  typeUrls: [TYPE],
  parsePerRoute(raw, path) {
    if (raw['@type'] !== undefined && raw['@type'] !== PER_ROUTE_TYPE) configError(`${path}.@type`, `expected ${PER_ROUTE_TYPE}`);
    return { disabled: optBool(raw.disabled, `${path}.disabled`) ?? false, requirementName: optStr(raw.requirement_name, `${path}.requirement_name`) };
  },
  createFactory(typedConfig, _ctx, path, configuredName) {
    const cfg = compileJwtAuthn(typedConfig, path);
    return {
      name: configuredName,
      terminal: false,
      createFilter: () => ({
        async onRequestHeaders(s) {
          for (const h of cfg.outputHeaders) delete s.headers[h];
          if (cfg.bypassCorsPreflight && s.method === 'OPTIONS' && s.headers.origin !== undefined && s.headers['access-control-request-method'] !== undefined) return 'continue';
          const perRoute = s.perFilterConfig(configuredName) as { disabled: boolean; requirementName?: string } | undefined;
          if (perRoute?.disabled) return 'continue';
          let requirement: Requirement | undefined;
          if (perRoute?.requirementName !== undefined) requirement = cfg.requirementMap.get(perRoute.requirementName);
          else requirement = cfg.rules.find((r) => r.matches(s))?.requirement;
          if (requirement === undefined) return 'continue';
          const out = await requirement(new RequestTokens(s));
          if (s.downstreamSignal.aborted) return 'stop';
          if (out.ok) {
            applySuccess(s, out);
            return 'continue';
          }
          const status = out.status ?? JwtStatus.verifyFail;
          const code = status === JwtStatus.audience ? 403 : 401;
          const realm = `${s.scheme}://${s.authority}${pathOnly(s.path)}`;
          s.sendLocalReply(code, status, {
            details: `jwt_authn_access_denied{${status.replace(/ /g, '_')}}`,
            headers: { 'www-authenticate': `Bearer realm="${realm}", error="invalid_token"` },
          });
          return 'stop';
        },
      }),
    };
  },
};
