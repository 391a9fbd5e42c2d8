/**
 * One AuthorizationPolicy rule -> one Envoy RBAC Policy, as Istio generates it: every `from`
 * becomes a principal (and_ids of its source fields and the principal-side `when` conditions),
 * every `to` a permission (and_rules of its operation fields and the permission-side conditions);
 * values of one field are or'ed, `not*` fields negated. Wildcards follow Istio: `*` any (present),
 * `x*` prefix, `*x` suffix; paths with `{*}`/`{**}` become Envoy uri_template matchers. JWT facts
 * (requestPrincipals, request.auth.*) match the jwt_authn payload in dynamic metadata
 * (`envoy.filters.http.jwt_authn` / `payload`), which a stock Envoy writes too.
 * On a TCP filter chain, HTTP-only fields cannot match: an ALLOW rule using one is dropped (less
 * is allowed), a DENY/AUDIT rule loses just that field (more is denied), as Istio does.
 */
type Json = Record<string, unknown>;

/** What a rule needs to know about where it is enforced. */
export interface RuleContext {
  readonly forTcp: boolean;
  readonly action: 'ALLOW' | 'DENY' | 'LOG';
  /** The policy's namespace (default for serviceAccounts without one). */
  readonly namespace: string;
  /** The port the data plane sees for a workload port (explicit capture binds mapped ports). */
  readonly port: (p: number) => number;
}

/** Istio's AuthorizationPolicy rule, as written. */
export interface RuleSpec {
  readonly from?: readonly { readonly source?: SourceSpec }[];
  readonly to?: readonly { readonly operation?: OperationSpec }[];
  readonly when?: readonly { readonly key?: string; readonly values?: readonly string[]; readonly notValues?: readonly string[] }[];
}
type Values = readonly string[] | undefined;
export interface SourceSpec {
  readonly principals?: Values; readonly notPrincipals?: Values;
  readonly requestPrincipals?: Values; readonly notRequestPrincipals?: Values;
  readonly namespaces?: Values; readonly notNamespaces?: Values;
  readonly serviceAccounts?: Values; readonly notServiceAccounts?: Values;
  readonly ipBlocks?: Values; readonly notIpBlocks?: Values;
  readonly remoteIpBlocks?: Values; readonly notRemoteIpBlocks?: Values;
}
export interface OperationSpec {
  readonly hosts?: Values; readonly notHosts?: Values;
  readonly ports?: Values; readonly notPorts?: Values;
  readonly methods?: Values; readonly notMethods?: Values;
  readonly paths?: Values; readonly notPaths?: Values;
}

/** Thrown for a field the filter chain cannot enforce (HTTP-only on TCP) or a malformed value. */
class Unenforceable extends Error {}

const JWT_FILTER = 'envoy.filters.http.jwt_authn';
const JWT_PAYLOAD = 'payload';
const SPIFFE = 'spiffe://';

function reQuote(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Istio's string matcher for a value with `*` wildcards at one end. */
export function stringMatcher(v: string, prefix = '', ignoreCase = false): Json {
  const ic = ignoreCase ? { ignore_case: true } : {};
  if (v === '*') return { safe_regex: { regex: '.+' } };
  if (v.startsWith('*')) return prefix === '' ? { suffix: v.slice(1), ...ic } : { safe_regex: { regex: `${reQuote(prefix)}.*${reQuote(v.slice(1))}` } };
  if (v.endsWith('*')) return { prefix: prefix + v.slice(0, -1), ...ic };
  return { exact: prefix + v, ...ic };
}

function cidr(v: string): Json {
  const [addr, len] = v.split('/');
  const v6 = addr.includes(':');
  const n = len === undefined ? (v6 ? 128 : 32) : Number(len);
  if (!Number.isInteger(n) || n < 0 || n > (v6 ? 128 : 32)) throw new Unenforceable(`invalid CIDR '${v}'`);
  return { address_prefix: addr, prefix_len: n };
}

function port(v: string, ctx: RuleContext): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new Unenforceable(`invalid port '${v}'`);
  return ctx.port(n);
}

function httpOnly(ctx: RuleContext, field: string): void {
  if (ctx.forTcp) throw new Unenforceable(`${field} is HTTP only`);
}

const PCHAR = "a-zA-Z0-9\\-._~%!$&'()+,;:@=";

/**
 * A path with Istio's `{*}` (one segment) and `{**}` (any rest) as an RE2 regex over the path,
 * with Envoy's uri_template character classes. Istio emits Envoy's `uri_template` matcher, but a
 * stock Envoy 1.40 dies on that RBAC config (std::terminate at listener load), so we say the same
 * thing with `url_path.safe_regex`, which every Envoy and Trellis proxy accepts.
 */
export function pathTemplateRegex(template: string): string {
  return template.split('/').map((seg) => (seg === '{*}' ? `[${PCHAR}]+` : seg === '{**}' ? `[${PCHAR}/]*` : reQuote(seg))).join('/');
}

/** A header matcher matching one comma-separated value of the header (Istio's regex). */
function headerValue(name: string, v: string): Json {
  if (v === '*') return { name, present_match: true };
  const p = v.startsWith('*') ? `.*${reQuote(v.slice(1))}` : v.endsWith('*') ? `${reQuote(v.slice(0, -1))}.*` : reQuote(v);
  return { name, safe_regex_match: { regex: `^${p}$|^${p},.*|.*,${p},.*|.*,${p}$` } };
}

function pseudoHeader(name: string, v: string, ignoreCase: boolean): Json {
  return v === '*' ? { name, present_match: true } : { name, string_match: stringMatcher(v, '', ignoreCase) };
}

/** Metadata matcher on a JWT claim path that accepts a string claim or a list containing one. */
function claim(path: readonly string[], values: readonly string[]): Json {
  const one = values.map((v) => ({ string_match: stringMatcher(v) }));
  const value = one.length === 1 ? one[0] : { or_match: { value_matchers: one } };
  return {
    metadata: {
      filter: JWT_FILTER,
      path: [JWT_PAYLOAD, ...path].map((key) => ({ key })),
      value: { or_match: { value_matchers: [{ list_match: { one_of: value } }, value] } },
    },
  };
}

function claimString(name: string, m: Json): Json {
  return { metadata: { filter: JWT_FILTER, path: [{ key: JWT_PAYLOAD }, { key: name }], value: { string_match: m } } };
}

/** requestPrincipals `iss/sub` (issuer may contain '/'; the last '/' splits), with Istio's wildcards. */
function requestPrincipal(v: string): Json {
  const idx = v.lastIndexOf('/');
  const found = idx >= 0;
  const iss = found ? v.slice(0, idx) : v;
  const sub = found ? v.slice(idx + 1) : '';
  const any = { safe_regex: { regex: '.+' } };
  let mi: Json;
  let ms: Json;
  if (v === '*') [mi, ms] = [any, any];
  else if (v.startsWith('*')) [mi, ms] = found ? [iss === '*' ? any : { suffix: iss.slice(1) }, { exact: sub }] : [any, { suffix: v.slice(1) }];
  else if (v.endsWith('*')) [mi, ms] = found ? [{ exact: iss }, sub === '*' ? any : { prefix: sub.slice(0, -1) }] : [{ prefix: v.slice(0, -1) }, any];
  else [mi, ms] = [{ exact: iss }, { exact: sub }];
  return { and_ids: { ids: [claimString('iss', mi), claimString('sub', ms)] } };
}

function nestedClaim(key: string): string[] {
  const m = key.slice('request.auth.claims'.length).match(/\[([^\]]*)\]/g);
  if (m === null) throw new Unenforceable(`invalid claim key '${key}'`);
  return m.map((s) => s.slice(1, -1));
}

function bracketName(key: string, prefix: string): string {
  const rest = key.slice(prefix.length);
  if (!rest.startsWith('[') || !rest.endsWith(']')) throw new Unenforceable(`invalid key '${key}'`);
  return rest.slice(1, -1);
}

type Kind = 'principal' | 'permission';

/** One field: its values become one or'ed matcher (or one extended matcher over all values). */
interface Field {
  readonly kind: Kind;
  readonly values: readonly string[];
  readonly notValues: readonly string[];
  /** One matcher per value, or'ed. */
  readonly each?: (v: string) => Json;
  /** One matcher for all values (JWT claims). */
  readonly all?: (vs: readonly string[]) => Json;
}

function fieldFor(kind: Kind, key: string, values: Values, notValues: Values, ctx: RuleContext): Field | undefined {
  const vs = values ?? [];
  const nvs = notValues ?? [];
  if (vs.length === 0 && nvs.length === 0) return undefined;
  const f = (each: (v: string) => Json): Field => ({ kind, values: vs, notValues: nvs, each });
  const authenticated = (m: Json) => ({ authenticated: { principal_name: m } });
  switch (key) {
    case 'source.principal': return f((v) => authenticated(stringMatcher(v, SPIFFE)));
    case 'source.namespace': return f((v) => authenticated({ safe_regex: { regex: `.*/ns/${reQuote(v).replace(/\\\*/g, '.*')}/.*` } }));
    case 'source.serviceAccount': return f((v) => {
      const [ns, sa] = v.includes('/') ? [v.slice(0, v.indexOf('/')), v.slice(v.indexOf('/') + 1)] : [ctx.namespace, v];
      return authenticated({ safe_regex: { regex: `spiffe://.+/ns/${reQuote(ns)}/(.+/|)sa/${reQuote(sa)}(/.+)?` } });
    });
    case 'source.ip': return f((v) => ({ direct_remote_ip: cidr(v) }));
    case 'remote.ip': return f((v) => ({ remote_ip: cidr(v) }));
    case 'request.auth.principal': httpOnly(ctx, key); return f(requestPrincipal);
    case 'request.auth.audiences': httpOnly(ctx, key); return { kind, values: vs, notValues: nvs, all: (x) => claim(['aud'], x) };
    case 'request.auth.presenter': httpOnly(ctx, key); return { kind, values: vs, notValues: nvs, all: (x) => claim(['azp'], x) };
    case 'destination.ip': return f((v) => ({ destination_ip: cidr(v) }));
    case 'destination.port': return f((v) => ({ destination_port: port(v, ctx) }));
    case 'connection.sni': return f((v) => ({ requested_server_name: stringMatcher(v) }));
    case ':authority': httpOnly(ctx, 'hosts'); return f((v) => ({ header: pseudoHeader(':authority', v, true) }));
    case ':method': httpOnly(ctx, 'methods'); return f((v) => ({ header: pseudoHeader(':method', v, false) }));
    case ':path': httpOnly(ctx, 'paths'); return f((v) => ({ url_path: { path: /\{\*\*?\}/.test(v) ? { safe_regex: { regex: pathTemplateRegex(v) } } : stringMatcher(v) } }));
    default: break;
  }
  if (key.startsWith('request.headers[')) {
    httpOnly(ctx, key);
    const name = bracketName(key, 'request.headers');
    return f((v) => ({ header: headerValue(name, v) }));
  }
  if (key.startsWith('request.auth.claims[')) {
    httpOnly(ctx, key);
    const path = nestedClaim(key);
    return { kind, values: vs, notValues: nvs, all: (x) => claim(path, x) };
  }
  if (key.startsWith('experimental.envoy.filters.')) {
    const [filter, k] = key.slice('experimental.'.length).replace(/\]$/, '').split('[');
    if (k === undefined) throw new Unenforceable(`invalid key '${key}'`);
    return f((v) => (v.startsWith('[') && v.endsWith(']')
      ? { metadata: { filter, path: [{ key: k }], value: { list_match: { one_of: { string_match: stringMatcher(v.slice(1, -1)) } } } } }
      : { metadata: { filter, path: [{ key: k }], value: { string_match: stringMatcher(v) } } }));
  }
  throw new Unenforceable(`unknown condition key '${key}'`);
}

/** Which side of a Policy a `when` key belongs to (Istio's model). */
function whenKind(key: string): Kind {
  return key === 'destination.ip' || key === 'destination.port' || key === 'connection.sni' || key.startsWith('experimental.envoy.filters.') ? 'permission' : 'principal';
}

function wrap(kind: Kind, list: Json[]): Json {
  if (kind === 'principal') return list.length === 1 ? list[0] : { or_ids: { ids: list } };
  return list.length === 1 ? list[0] : { or_rules: { rules: list } };
}

function negate(kind: Kind, m: Json): Json {
  return kind === 'principal' ? { not_id: m } : { not_rule: m };
}

/** The matchers of one field (values or'ed; notValues or'ed and negated). */
function matchersOf(field: Field): Json[] {
  const out: Json[] = [];
  const build = (vs: readonly string[]) => (field.all ? field.all(vs) : wrap(field.kind, vs.map(field.each!)));
  if (field.values.length > 0) out.push(build(field.values));
  if (field.notValues.length > 0) out.push(negate(field.kind, build(field.notValues)));
  return out;
}

/** A field's matchers, or none when it cannot be enforced here and the action tolerates dropping it. */
function tolerant(make: () => Field | undefined, ctx: RuleContext): Json[] {
  try {
    const f = make();
    return f === undefined ? [] : matchersOf(f);
  } catch (err) {
    if (err instanceof Unenforceable && ctx.action !== 'ALLOW') return [];
    throw err;
  }
}

function and(kind: Kind, list: Json[]): Json {
  if (list.length === 0) return { any: true };
  return kind === 'principal' ? { and_ids: { ids: list } } : { and_rules: { rules: list } };
}

/**
 * The RBAC Policy of one rule, or undefined when an ALLOW rule cannot be enforced on this filter
 * chain (HTTP-only fields on TCP, malformed values): dropping it allows less.
 */
export function rbacPolicyOf(rule: RuleSpec, ctx: RuleContext): Json | undefined {
  try {
    const whens = rule.when ?? [];
    const baseOf = (kind: Kind) => whens.filter((w) => whenKind(w.key ?? '') === kind)
      .flatMap((w) => tolerant(() => fieldFor(kind, w.key ?? '', w.values, w.notValues, ctx), ctx));
    const principalBase = baseOf('principal');
    const permissionBase = baseOf('permission');
    const principals = (rule.from ?? []).map(({ source: s = {} }) => and('principal', [
      ...tolerant(() => fieldFor('principal', 'source.principal', s.principals, s.notPrincipals, ctx), ctx),
      ...tolerant(() => fieldFor('principal', 'request.auth.principal', s.requestPrincipals, s.notRequestPrincipals, ctx), ctx),
      ...tolerant(() => fieldFor('principal', 'source.serviceAccount', s.serviceAccounts, s.notServiceAccounts, ctx), ctx),
      ...tolerant(() => fieldFor('principal', 'source.namespace', s.namespaces, s.notNamespaces, ctx), ctx),
      ...tolerant(() => fieldFor('principal', 'remote.ip', s.remoteIpBlocks, s.notRemoteIpBlocks, ctx), ctx),
      ...tolerant(() => fieldFor('principal', 'source.ip', s.ipBlocks, s.notIpBlocks, ctx), ctx),
      ...principalBase,
    ]));
    const permissions = (rule.to ?? []).map(({ operation: o = {} }) => and('permission', [
      ...tolerant(() => fieldFor('permission', ':authority', o.hosts, o.notHosts, ctx), ctx),
      ...tolerant(() => fieldFor('permission', ':method', o.methods, o.notMethods, ctx), ctx),
      ...tolerant(() => fieldFor('permission', ':path', o.paths, o.notPaths, ctx), ctx),
      ...tolerant(() => fieldFor('permission', 'destination.port', o.ports, o.notPorts, ctx), ctx),
      ...permissionBase,
    ]));
    return {
      permissions: permissions.length > 0 ? permissions : [and('permission', permissionBase)],
      principals: principals.length > 0 ? principals : [and('principal', principalBase)],
    };
  } catch (err) {
    if (err instanceof Unenforceable) return undefined;
    throw err;
  }
}

/** A policy that never matches (an AuthorizationPolicy with no rules: ALLOW nothing, DENY nothing). */
export const MatchNever: Json = Object.freeze({ permissions: [{ not_rule: { any: true } }], principals: [{ not_id: { any: true } }] });
