/**
 * Generates Envoy RouteConfigurations (proto3 JSON, the form our xDS server sends) and requests
 * aimed at them, from a seeded Rng. Tables cover domain wildcards (exact, `*.suffix`, `prefix.*`,
 * `*`, with and without ports), prefix / path / safe_regex / path_separated_prefix matches with
 * case_sensitive false, header matchers (every kind, invert), query parameter matchers, single
 * and 100/0 weighted clusters (one over HTTP/2), redirects (port_redirect also a port requests
 * carry in Host), direct responses, path and host rewrites, and header mutations at every level
 * with every append action, some values Envoy format strings (%REQ(...)%, %PROTOCOL%,
 * %UPSTREAM_CLUSTER% ...). Requests sometimes carry x-forwarded-proto, and sometimes ask the echo
 * backend to send response headers the mutations then append to or overwrite. Nothing random at request time: weighted
 * clusters always put the whole weight on one cluster. Requests are built to hit (or narrowly
 * miss) the generated matchers, so most of them exercise a specific route.
 */
import type { Rng } from './prng.ts';

export type Json = Record<string, unknown>;

/** One generated request. Header names keep the case given; `authority` is sent as Host. */
export interface GenRequest {
  method: string;
  authority: string;
  path: string;
  headers: [string, string][];
}

/** The clusters a table may reference (each a STATIC cluster of one echo backend; `echo-h2` speaks HTTP/2 to it). */
export const CLUSTERS = ['echo-a', 'echo-b', 'echo-c', 'echo-h2'] as const;

/** Clusters whose upstream protocol is HTTP/2 (prior knowledge). */
export const H2_CLUSTERS: ReadonlySet<string> = new Set(['echo-h2']);

/** The vhost the test uses to see which table a proxy serves; never generated otherwise. */
export const PROBE_DOMAIN = 'probe.diff';

const WORDS = ['api', 'shop', 'www', 'foo', 'bar'];
const TLDS = ['example.com', 'test.io', 'mesh.local'];
const PORTS = ['8080', '443', '80'];
const HEADER_NAMES = ['x-h1', 'x-h2', 'x-h3'];
const HEADER_VALUES = ['alpha', 'beta', 'Alpha', 'gamma-ray', '10', '42', '-5', 'abc123', ''];
const QUERY_NAMES = ['q1', 'q2'];
const QUERY_VALUES = ['one', 'two', 'One', 'three-four', '7'];
const PREFIXES = ['/', '/api', '/api/', '/api/v1', '/Static', '/foo/bar', '/a'];
const EXACT_PATHS = ['/api/v1/items', '/health', '/Foo', '/foo/bar', '/a/b/c'];
const SEP_PREFIXES = ['/api', '/foo/bar', '/Static', '/a'];
const SUFFIXES = ['', '/', '/x', '/items/12', '/Deep/er', 'x', '-y', '/%41b'];
/** Response headers requests ask the echo backend to send (names the response mutations use). */
const UPSTREAM_RESPONSE_HEADERS = ['x-r1', 'x-r2', 'X-R1'];

/** safe_regex path templates with a sampler producing matching paths (RE2 and JS agree on these). */
const REGEXES: { regex: string; sample: (r: Rng) => string }[] = [
  { regex: '/api/v[0-9]+/.*', sample: (r) => `/api/v${r.int(0, 12)}/${r.pick(['', 'x', 'items/3'])}` },
  { regex: '/(foo|bar)/[a-z]+', sample: (r) => `/${r.pick(['foo', 'bar'])}/${r.pick(['abc', 'z', 'Abc'])}` },
  { regex: '/items/\\d+', sample: (r) => `/items/${r.pick(['1', '42', '007', 'x1'])}` },
  { regex: '/[A-Z][a-z]*', sample: (r) => `/${r.pick(['Foo', 'F', 'foo', 'FOO'])}` },
  { regex: '.*/end', sample: (r) => `${r.pick(['', '/a', '/a/b'])}/end` },
];

/** regex_rewrite patterns that use capture groups (RE2 \1 substitutions). */
const REWRITES: { pattern: string; substitution: string }[] = [
  { pattern: '^/api/(.*)$', substitution: '/v2/\\1' },
  // Not '/' -> '_': a path without a leading '/' cannot be sent by our upstream client (README).
  { pattern: '[aeiou]', substitution: '_' },
  { pattern: '^/([a-z]+)/([a-z]+)', substitution: '/\\2/\\1' },
  { pattern: '[0-9]+', substitution: 'N' },
  { pattern: '^(.*)$', substitution: '/wrapped\\1' },
];

const APPEND_ACTIONS = ['APPEND_IF_EXISTS_OR_ADD', 'ADD_IF_ABSENT', 'OVERWRITE_IF_EXISTS_OR_ADD', 'OVERWRITE_IF_EXISTS'];

/** A domain of a generated vhost, plus how to build hosts that match it. */
interface DomainSpec {
  domain: string;
  hosts: (r: Rng) => string;
}

function domainSpec(r: Rng, used: Set<string>, allowStar: boolean): DomainSpec | undefined {
  const w = r.pick(WORDS);
  const tld = r.pick(TLDS);
  const port = r.chance(0.3) ? `:${r.pick(PORTS)}` : '';
  const kind = r.weighted<string>([[4, 'exact'], [3, 'suffix'], [2, 'prefix'], [allowStar ? 1 : 0, 'star']]);
  let spec: DomainSpec;
  switch (kind) {
    case 'exact':
      spec = { domain: `${w}.${tld}${port}`, hosts: () => `${w}.${tld}${port}` };
      break;
    case 'suffix': {
      // `*.tld` and `*-w.tld` style suffixes; a wildcard must match at least one character.
      const suffix = r.chance(0.7) ? `.${tld}${port}` : `-${w}.${tld}${port}`;
      spec = { domain: `*${suffix}`, hosts: (rr) => `${rr.pick(WORDS)}${rr.chance(0.3) ? '.deep' : ''}${suffix}` };
      break;
    }
    case 'prefix': {
      const prefix = r.chance(0.7) ? `${w}.` : `${w}-`;
      spec = { domain: `${prefix}*`, hosts: (rr) => `${prefix}${rr.pick(TLDS)}${rr.chance(0.3) ? `:${rr.pick(PORTS)}` : ''}` };
      break;
    }
    default:
      spec = { domain: '*', hosts: (rr) => `${rr.pick(['other', 'unknown'])}.${rr.pick(TLDS)}` };
  }
  if (used.has(spec.domain)) return undefined;
  used.add(spec.domain);
  return spec;
}

function stringMatcher(r: Rng, values: readonly string[]): Json {
  const v = r.pick(values.filter((x) => x !== ''));
  const kind = r.pick(['exact', 'prefix', 'suffix', 'contains', 'safe_regex']);
  const ignoreCase = r.chance(0.25);
  let m: Json;
  switch (kind) {
    case 'exact': m = { exact: v }; break;
    case 'prefix': m = { prefix: v.slice(0, Math.max(1, r.int(1, v.length))) }; break;
    case 'suffix': m = { suffix: v.slice(-Math.max(1, r.int(1, v.length))) }; break;
    case 'contains': m = { contains: v.slice(0, Math.max(1, r.int(1, v.length))) }; break;
    default: m = { safe_regex: { regex: r.pick(['[a-z]+', '-?[0-9]+', 'a.*', '.*ph.*', '(alpha|beta)']) } };
  }
  // Envoy rejects ignore_case on safe_regex (RE2 has its own (?i) syntax).
  if (ignoreCase && kind !== 'safe_regex') m.ignore_case = true;
  return m;
}

function headerMatcher(r: Rng): Json {
  const name = r.pick(HEADER_NAMES);
  const kind = r.weighted<string>([[5, 'string'], [2, 'present'], [2, 'range'], [1, 'legacy']]);
  const m: Json = { name };
  if (kind === 'string') m.string_match = stringMatcher(r, HEADER_VALUES);
  else if (kind === 'present') m.present_match = r.chance(0.7);
  else if (kind === 'range') {
    const start = r.int(-10, 20);
    m.range_match = { start: String(start), end: String(start + r.int(1, 40)) };
  } else m.exact_match = r.pick(HEADER_VALUES.filter((x) => x !== ''));
  if (r.chance(0.25)) m.invert_match = true;
  return m;
}

function queryMatcher(r: Rng): Json {
  const name = r.pick(QUERY_NAMES);
  if (r.chance(0.3)) return { name, present_match: true };
  return { name, string_match: stringMatcher(r, QUERY_VALUES) };
}

/** Envoy format strings whose value is the same for both proxies (no ports, ids or clocks finer than a year). */
const REQUEST_FORMATS = [
  '%REQ(x-h1)%', '%REQ(x-h2?x-h3)%', 'p=%REQ(:PATH)%', '%REQ(:AUTHORITY)%/%REQ(:METHOD)%', '%REQ(x-h1):3%', '%PROTOCOL%',
  '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%', 'a%%b-%REQ(x-m1)%', '%HOSTNAME%', '%UPSTREAM_CLUSTER%', '%ROUTE_NAME%', '%START_TIME(%Y)%', '%REQ(x-none)%',
];
const RESPONSE_FORMATS = [...REQUEST_FORMATS, '%RESP(content-type)%', '%RESPONSE_CODE%', '%UPSTREAM_HOST%', '%RESP(x-r1?x-r2)%:%REQ(x-h1)%'];

function headerAdds(r: Rng, dir: 'request' | 'response', level: string): Json[] {
  const keys = dir === 'request' ? ['x-m1', 'x-m2', 'x-h1'] : ['x-r1', 'x-r2', 'x-content-type-options'];
  const out: Json[] = [];
  for (let i = r.int(0, 2); i > 0; i--) {
    const value = r.chance(0.1) ? '' : r.chance(0.3) ? r.pick(dir === 'request' ? REQUEST_FORMATS : RESPONSE_FORMATS) : `${level}-${r.int(1, 3)}`;
    const o: Json = { header: { key: r.pick(keys), value } };
    const style = r.weighted<string>([[6, 'action'], [2, 'append'], [2, 'none']]);
    if (style === 'action') o.append_action = r.pick(APPEND_ACTIONS);
    else if (style === 'append') o.append = r.chance(0.5);
    if (value === '' && r.chance(0.5)) o.keep_empty_value = true;
    out.push(o);
  }
  return out;
}

/** Adds header mutations of one level to `o`, with some probability. */
function mutations(r: Rng, o: Json, level: string, p: number): void {
  if (r.chance(p)) {
    const add = headerAdds(r, 'request', level);
    if (add.length > 0) o.request_headers_to_add = add;
  }
  if (r.chance(p / 2)) o.request_headers_to_remove = [r.pick(['x-h2', 'x-m1', 'x-h3'])];
  if (r.chance(p)) {
    const add = headerAdds(r, 'response', level);
    if (add.length > 0) o.response_headers_to_add = add;
  }
  if (r.chance(p / 3)) o.response_headers_to_remove = [r.pick(['x-content-type-options', 'x-r1'])];
}

/** A generated route: its JSON and a sampler of paths that match its path specifier. */
interface RouteSpec {
  json: Json;
  samplePath: (r: Rng) => string;
}

function pathSpec(r: Rng): { match: Json; sample: (r: Rng) => string; kind: string } {
  const kind = r.weighted<string>([[4, 'prefix'], [2, 'path'], [2, 'safe_regex'], [2, 'path_separated_prefix']]);
  switch (kind) {
    case 'prefix': {
      const p = r.pick(PREFIXES);
      return { kind, match: { prefix: p }, sample: (rr) => p + rr.pick(SUFFIXES).replace(/^\/?/, p.endsWith('/') ? '' : rr.chance(0.2) ? '' : '/') };
    }
    case 'path': {
      const p = r.pick(EXACT_PATHS);
      return { kind, match: { path: p }, sample: (rr) => (rr.chance(0.8) ? p : p + '/') };
    }
    case 'safe_regex': {
      const t = r.pick(REGEXES);
      return { kind, match: { safe_regex: { regex: t.regex } }, sample: t.sample };
    }
    default: {
      const p = r.pick(SEP_PREFIXES);
      return { kind, match: { path_separated_prefix: p }, sample: (rr) => p + rr.pick(['', '/', '/x/y', 'x', '-z']) };
    }
  }
}

function forwardAction(r: Rng, matchKind: string): Json {
  const a: Json = {};
  if (r.chance(0.7)) a.cluster = r.pick(CLUSTERS);
  else {
    const [first, second] = [r.pick(CLUSTERS), r.pick(CLUSTERS)];
    const clusters: Json[] = [{ name: first, weight: 100 }];
    if (second !== first && r.chance(0.6)) clusters.push({ name: second, weight: 0 });
    if (r.chance(0.5)) clusters.reverse();
    for (const c of clusters) {
      mutations(r, c, `wc-${String(c.name)}`, 0.4);
      if (r.chance(0.2)) c.host_rewrite_literal = `wc-${String(c.name)}.internal`;
    }
    a.weighted_clusters = { clusters };
  }
  const rewrite = r.weighted<string>([[5, 'none'], [2, 'prefix'], [matchKind === 'safe_regex' ? 0 : 1, 'prefix-empty'], [2, 'regex']]);
  if (rewrite === 'prefix') a.prefix_rewrite = r.pick(['/', '/new', '/new/', '/v2/api']);
  else if (rewrite === 'prefix-empty') a.prefix_rewrite = '';
  else if (rewrite === 'regex') {
    const rw = r.pick(REWRITES);
    a.regex_rewrite = { pattern: { regex: rw.pattern }, substitution: rw.substitution };
  }
  if (r.chance(0.2)) a.host_rewrite_literal = r.pick(['rewritten.example.com', 'backend:9000']);
  return a;
}

function redirectAction(r: Rng, matchKind: string): Json {
  const a: Json = {};
  if (r.chance(0.3)) {
    if (r.chance(0.5)) a.https_redirect = true;
    else a.scheme_redirect = r.pick(['https', 'http', 'ftp']);
  }
  if (r.chance(0.4)) a.host_redirect = r.pick(['new.example.com', 'other.test.io']);
  // Also the ports requests carry in Host (a listener's port, as Gateway API redirects set it).
  if (r.chance(0.4)) a.port_redirect = Number(r.pick(['8443', '80', '443', '9090', ...PORTS]));
  const path = r.weighted<string>([[3, 'none'], [2, 'path'], [matchKind === 'safe_regex' ? 0 : 2, 'prefix'], [1, 'regex']]);
  if (path === 'path') a.path_redirect = r.pick(['/new', '/moved/here', '/q?x=1']);
  else if (path === 'prefix') a.prefix_rewrite = r.pick(['/', '/new', '/new/']);
  else if (path === 'regex') {
    const rw = r.pick(REWRITES);
    a.regex_rewrite = { pattern: { regex: rw.pattern }, substitution: rw.substitution };
  }
  if (r.chance(0.6)) a.response_code = r.pick(['MOVED_PERMANENTLY', 'FOUND', 'SEE_OTHER', 'TEMPORARY_REDIRECT', 'PERMANENT_REDIRECT']);
  if (r.chance(0.3)) a.strip_query = true;
  return a;
}

function routeSpec(r: Rng, index: number): RouteSpec {
  const ps = pathSpec(r);
  const match: Json = { ...ps.match };
  if (ps.kind !== 'safe_regex' && r.chance(0.25)) match.case_sensitive = false;
  const nh = r.weighted<number>([[5, 0], [3, 1], [1, 2]]);
  if (nh > 0) match.headers = Array.from({ length: nh }, () => headerMatcher(r));
  if (r.chance(0.2)) match.query_parameters = [queryMatcher(r)];
  const route: Json = { name: `r${index}`, match };
  const kind = r.weighted<string>([[6, 'route'], [2, 'redirect'], [2, 'direct']]);
  if (kind === 'route') route.route = forwardAction(r, ps.kind);
  else if (kind === 'redirect') route.redirect = redirectAction(r, ps.kind);
  else {
    const status = r.pick([200, 201, 301, 302, 403, 404, 418, 503]);
    route.direct_response = r.chance(0.7) ? { status, body: { inline_string: `direct ${index} ${r.pick(['hello', 'bye'])}` } } : { status };
  }
  mutations(r, route, `route${index}`, 0.3);
  return { json: route, samplePath: ps.sample };
}

/** A generated table and what the request generator needs to aim at it. */
export interface GenTable {
  /** The RouteConfiguration (without the probe vhost, which `withProbe` adds). */
  config: Json;
  vhosts: { domains: DomainSpec[]; routes: RouteSpec[] }[];
}

/** Generates one route table named `name`. */
export function generateTable(r: Rng, name: string): GenTable {
  const used = new Set<string>([PROBE_DOMAIN]);
  const nv = r.int(2, 5);
  const vhosts: GenTable['vhosts'] = [];
  let starUsed = false;
  for (let i = 0; i < nv; i++) {
    const domains: DomainSpec[] = [];
    for (let j = r.int(1, 3); j > 0; j--) {
      const d = domainSpec(r, used, !starUsed);
      if (d === undefined) continue;
      if (d.domain === '*') starUsed = true;
      domains.push(d);
    }
    if (domains.length === 0) continue;
    const routes = Array.from({ length: r.int(2, 8) }, (_, k) => routeSpec(r, i * 10 + k));
    vhosts.push({ domains, routes });
  }
  const config: Json = {
    name,
    virtual_hosts: vhosts.map((v, i) => {
      const vh: Json = { name: `vh${i}`, domains: v.domains.map((d) => d.domain), routes: v.routes.map((x) => x.json) };
      mutations(r, vh, `vh${i}`, 0.4);
      return vh;
    }),
  };
  mutations(r, config, 'rc', 0.4);
  if (r.chance(0.2)) config.most_specific_header_mutations_wins = true;
  return { config, vhosts };
}

/** The table plus the probe vhost whose direct response names the table (to see what a proxy serves). */
export function withProbe(config: Json, tableId: string): Json {
  const probe = { name: 'probe', domains: [PROBE_DOMAIN], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: tableId } } }] };
  return { ...config, virtual_hosts: [probe, ...(config.virtual_hosts as Json[])] };
}

function headerValueFor(r: Rng, m: Json): string | undefined {
  if (m.present_match !== undefined) return r.chance(0.5) ? r.pick(HEADER_VALUES) : undefined;
  const range = m.range_match as Json | undefined;
  if (range) return String(r.chance(0.7) ? r.int(Number(range.start), Number(range.end)) : r.pick(['x5', '3.5', '99999', '']));
  const sm = (m.string_match as Json | undefined) ?? (m.exact_match !== undefined ? { exact: m.exact_match } : {});
  const lit = [sm.exact, sm.prefix, sm.suffix, sm.contains].find((x) => typeof x === 'string') as string | undefined;
  if (lit === undefined) return r.pick(HEADER_VALUES);
  if (sm.prefix !== undefined) return lit + r.pick(['', 'zz', '-1']);
  if (sm.suffix !== undefined) return r.pick(['', 'zz', 'a-']) + lit;
  if (sm.contains !== undefined) return r.pick(['', 'q']) + lit + r.pick(['', 'w']);
  return r.chance(0.2) ? r.mangleCase(lit) : lit;
}

/** Generates `count` requests aimed at `t`. */
export function generateRequests(r: Rng, t: GenTable, count: number): GenRequest[] {
  const out: GenRequest[] = [];
  for (let i = 0; i < count; i++) {
    let authority: string;
    let route: RouteSpec | undefined;
    if (t.vhosts.length === 0 || r.chance(0.08)) {
      authority = r.pick(['nomatch.example.org', 'api.example.com:9', 'localhost']);
    } else {
      const vh = r.pick(t.vhosts);
      authority = r.pick(vh.domains).hosts(r);
      if (r.chance(0.1)) authority = authority.toUpperCase();
      if (r.chance(0.08) && !authority.includes(':')) authority += `:${r.pick(PORTS)}`;
      route = r.pick(vh.routes);
    }
    let path = route && r.chance(0.85) ? route.samplePath(r) : r.pick(['/', '/api/v1/items', '/nothing/here', '/Foo/Bar', '/items/9']);
    if (r.chance(0.15)) path = r.mangleCase(path);
    if (r.chance(0.3)) {
      const qs: string[] = [];
      const match = (route?.json.match as Json | undefined)?.query_parameters as Json[] | undefined;
      for (const q of match ?? []) {
        const sm = q.string_match as Json | undefined;
        const lit = sm && ([sm.exact, sm.prefix, sm.suffix, sm.contains].find((x) => typeof x === 'string') as string | undefined);
        qs.push(`${String(q.name)}=${encodeURIComponent(lit ?? r.pick(QUERY_VALUES))}`);
      }
      if (qs.length === 0 || r.chance(0.3)) qs.push(`${r.pick(QUERY_NAMES)}=${r.pick(QUERY_VALUES)}`);
      if (r.chance(0.2)) qs.push('flag');
      path += `?${qs.join('&')}`;
    }
    const headers: [string, string][] = [];
    const matchers = ((route?.json.match as Json | undefined)?.headers as Json[] | undefined) ?? [];
    for (const m of matchers) {
      if (!r.chance(0.9)) continue;
      const v = headerValueFor(r, m);
      if (v !== undefined) headers.push([r.chance(0.2) ? String(m.name).toUpperCase() : String(m.name), v]);
    }
    if (r.chance(0.2)) headers.push([r.pick([...HEADER_NAMES, 'x-m1']), r.pick(HEADER_VALUES.filter((x) => x !== ''))]);
    // The scheme the request came in with, which decides whether a redirect keeps the Host's port.
    if (r.chance(0.15)) headers.push(['x-forwarded-proto', r.pick(['http', 'https'])]);
    // The echo backend answers with these response headers (a name twice: two header lines), so
    // route mutations append to, overwrite or skip headers the upstream sent.
    if (r.chance(0.35)) {
      const pairs = Array.from({ length: r.int(1, 3) }, () => `${r.pick(UPSTREAM_RESPONSE_HEADERS)}:${r.pick(['up-1', 'up-2'])}`);
      headers.push(['X-Echo-Set-Header', pairs.join(',')]);
    }
    out.push({ method: r.weighted<string>([[8, 'GET'], [1, 'POST'], [1, 'DELETE']]), authority, path, headers });
  }
  return out;
}
