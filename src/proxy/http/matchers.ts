/**
 * Envoy's request matchers compiled once into plain predicate objects: StringMatcher
 * (exact/prefix/suffix/contains/safe_regex, ignore_case), HeaderMatcher (string_match, legacy
 * exact/prefix/... fields, present_match, range_match, invert_match,
 * treat_missing_header_as_empty) and QueryParameterMatcher. Regexes are built here, never per request.
 */
import { compileRegex, configError, optBool, optObj, optStr, type Json } from '../xds-json.ts';
import type { HeaderMap } from '../upstream/types.ts';

/** A compiled string predicate. */
export type StringMatch = (value: string) => boolean;

/** Compile an envoy.type.matcher.v3.StringMatcher. */
export function compileStringMatcher(v: unknown, path: string): StringMatch {
  const o = optObj(v, path);
  if (!o) configError(path, 'string matcher is required');
  const ic = optBool(o.ignore_case, `${path}.ignore_case`) ?? false;
  const norm = ic ? (s: string) => s.toLowerCase() : (s: string) => s;
  if (o.exact !== undefined) {
    const e = norm(optStr(o.exact, `${path}.exact`) ?? '');
    return (s) => norm(s) === e;
  }
  if (o.prefix !== undefined) {
    const p = norm(optStr(o.prefix, `${path}.prefix`) ?? '');
    if (p === '') configError(`${path}.prefix`, 'must not be empty');
    return (s) => norm(s).startsWith(p);
  }
  if (o.suffix !== undefined) {
    const p = norm(optStr(o.suffix, `${path}.suffix`) ?? '');
    if (p === '') configError(`${path}.suffix`, 'must not be empty');
    return (s) => norm(s).endsWith(p);
  }
  if (o.contains !== undefined) {
    const p = norm(optStr(o.contains, `${path}.contains`) ?? '');
    if (p === '') configError(`${path}.contains`, 'must not be empty');
    return (s) => norm(s).includes(p);
  }
  if (o.safe_regex !== undefined) {
    const re = compileRegex(o.safe_regex, `${path}.safe_regex`, ic ? 'i' : '');
    return (s) => re.test(s);
  }
  return configError(path, 'one of exact, prefix, suffix, contains, safe_regex is required');
}

/** What header matchers read: regular headers plus the pseudo-headers (:method, :path, :authority, :scheme). */
export interface HeaderSource {
  readonly headers: HeaderMap;
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly scheme: string;
}

/** The value of a header as Envoy sees it for matching: repeated headers joined by ','. */
export function headerValue(src: HeaderSource, name: string): string | undefined {
  if (name.charCodeAt(0) === 58 /* ':' */) {
    switch (name) {
      case ':method': return src.method;
      case ':path': return src.path;
      case ':authority': return src.authority;
      case ':scheme': return src.scheme;
      default: return undefined;
    }
  }
  const v = src.headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : v;
}

/** A compiled header matcher over a lower-cased header map (pseudo-headers included as ':path' etc). */
export type HeaderMatch = (src: HeaderSource) => boolean;

/** Compile an envoy.config.route.v3.HeaderMatcher. */
export function compileHeaderMatcher(v: unknown, path: string): HeaderMatch {
  const o = optObj(v, path);
  if (!o) configError(path, 'header matcher is required');
  const name = optStr(o.name, `${path}.name`)?.toLowerCase();
  if (!name) configError(`${path}.name`, 'header name is required');
  const invert = optBool(o.invert_match, `${path}.invert_match`) ?? false;
  const missingAsEmpty = optBool(o.treat_missing_header_as_empty, `${path}.treat_missing_header_as_empty`) ?? false;
  const specifiers = ['string_match', 'exact_match', 'prefix_match', 'suffix_match', 'contains_match', 'safe_regex_match', 'range_match', 'present_match'];
  // No match specifier at all is a presence match (Envoy: HeaderMatchType::Present, present_ = true).
  const isPresent = o.present_match !== undefined || !specifiers.some((k) => o[k] !== undefined);
  const presentWant = o.present_match !== undefined ? (optBool(o.present_match, `${path}.present_match`) ?? true) : true;
  let test: (value: string) => boolean;
  if (isPresent) {
    test = () => presentWant;
  } else if (o.range_match !== undefined) {
    const r = optObj(o.range_match, `${path}.range_match`) as Json;
    const start = Number(r.start ?? 0);
    const end = Number(r.end ?? 0);
    if (!Number.isFinite(start) || !Number.isFinite(end)) configError(`${path}.range_match`, 'start and end must be integers');
    // Envoy: the header must be a signed integer in [start, end).
    test = (val) => /^-?\d+$/.test(val) && Number(val) >= start && Number(val) < end;
  } else {
    let sm: StringMatch | undefined;
    if (o.string_match !== undefined) sm = compileStringMatcher(o.string_match, `${path}.string_match`);
    // Legacy exact_match '' matches any value (Envoy: `value_.empty() || value == value_`).
    else if (o.exact_match !== undefined) sm = o.exact_match === '' ? () => true : compileStringMatcher({ exact: o.exact_match }, `${path}.exact_match`);
    else if (o.prefix_match !== undefined) sm = compileStringMatcher({ prefix: o.prefix_match }, `${path}.prefix_match`);
    else if (o.suffix_match !== undefined) sm = compileStringMatcher({ suffix: o.suffix_match }, `${path}.suffix_match`);
    else if (o.contains_match !== undefined) sm = compileStringMatcher({ contains: o.contains_match }, `${path}.contains_match`);
    else if (o.safe_regex_match !== undefined) sm = compileStringMatcher({ safe_regex: o.safe_regex_match }, `${path}.safe_regex_match`);
    // No match specifier: Envoy treats it as "header present".
    test = sm ?? (() => true);
  }
  return (headers) => {
    // Envoy 1.40 matches each value of a repeated header on its own: the matcher holds when any
    // value matches (then invert_match flips it); observed by the differential test, where the
    // joined 'a,b' form no longer matches.
    const raw = name.charCodeAt(0) === 58 ? undefined : headers.headers[name];
    if (Array.isArray(raw)) return raw.some(test) !== invert;
    let val = headerValue(headers, name);
    if (val === undefined && missingAsEmpty) val = '';
    // Envoy's HeaderUtility::matchHeaders: a missing header matches only a presence matcher that
    // asks for absence — present_match: false, or present_match: true inverted. Every other
    // matcher, inverted or not, fails on a missing header.
    if (val === undefined) return isPresent && (invert ? presentWant : !presentWant);
    return test(val) !== invert;
  };
}

/** Parsed query string: first value per name (as Envoy's matcher), undefined when absent. */
export type QueryParams = ReadonlyMap<string, string>;

/** Parse the query part of a path once per request. */
export function parseQuery(path: string): QueryParams {
  const q = path.indexOf('?');
  const out = new Map<string, string>();
  if (q < 0) return out;
  for (const part of path.slice(q + 1).split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = safeDecode(eq < 0 ? part : part.slice(0, eq));
    if (!out.has(k)) out.set(k, eq < 0 ? '' : safeDecode(part.slice(eq + 1)));
  }
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/** A compiled query parameter matcher. */
export type QueryMatch = (q: QueryParams) => boolean;

/** Compile an envoy.config.route.v3.QueryParameterMatcher. */
export function compileQueryMatcher(v: unknown, path: string): QueryMatch {
  const o = optObj(v, path);
  if (!o) configError(path, 'query parameter matcher is required');
  const name = optStr(o.name, `${path}.name`);
  if (!name) configError(`${path}.name`, 'name is required');
  if (o.string_match !== undefined) {
    const sm = compileStringMatcher(o.string_match, `${path}.string_match`);
    return (q) => {
      const val = q.get(name);
      return val !== undefined && sm(val);
    };
  }
  if (o.present_match !== undefined) {
    const want = optBool(o.present_match, `${path}.present_match`) ?? true;
    return (q) => q.has(name) === want;
  }
  return (q) => q.has(name);
}
