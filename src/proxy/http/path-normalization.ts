/**
 * Request path normalization, the one home of the rule: what Envoy's HTTP connection manager does
 * to `:path` before routing, filters (authorization) and forwarding, driven by the HCM fields
 * `normalize_path`, `merge_slashes` and `path_with_escaped_slashes_action`. The order is Envoy's:
 * the `#fragment` is stripped (Istio's bootstrap sets `http_reject_path_with_fragment: false`;
 * rejected with 400 otherwise), `%2F` / `%5C` are handled per the escaped-slashes action, then
 * RFC 3986 normalization (Chromium's path canonicalizer, which Envoy uses: `.` and `..` segments
 * resolved, also when percent-encoded or followed by `;params`; percent-encoded unreserved
 * characters decoded; backslashes become slashes; characters not allowed in a path
 * percent-encoded; `%00` rejected), then slash merging. The query is never touched. Expectations
 * in the tests were recorded from Envoy 1.40.
 */
import { configError, optBool, optStr, type Json } from '../xds-json.ts';

/** HttpConnectionManager.path_with_escaped_slashes_action. */
export type EscapedSlashesAction = 'KEEP_UNCHANGED' | 'REJECT_REQUEST' | 'UNESCAPE_AND_REDIRECT' | 'UNESCAPE_AND_FORWARD';

/** The path rules of one connection manager. */
export interface PathNormalization {
  readonly normalizePath: boolean;
  readonly mergeSlashes: boolean;
  readonly escapedSlashes: EscapedSlashesAction;
  /** true: a `#fragment` is cut off (Istio's Envoy); false: the request is rejected (stock Envoy). */
  readonly stripFragment: boolean;
}

/** What to do with a request after normalizing its path. */
export type PathDecision =
  | { readonly action: 'continue'; readonly path: string }
  /** 307 to `path` (UNESCAPE_AND_REDIRECT found an escaped slash); gRPC requests get 400 instead. */
  | { readonly action: 'redirect'; readonly path: string }
  /** 400 `path_normalization_failed`. */
  | { readonly action: 'reject' };

const ESCAPED_SLASH_ACTIONS = new Set<string>(['KEEP_UNCHANGED', 'REJECT_REQUEST', 'UNESCAPE_AND_REDIRECT', 'UNESCAPE_AND_FORWARD']);

/** The path rules from an HttpConnectionManager config (proto3 JSON); `stripFragment` as Istio's bootstrap has it. */
export function parsePathNormalization(c: Json, at: string, stripFragment = true): PathNormalization {
  const action = optStr(c.path_with_escaped_slashes_action, `${at}.path_with_escaped_slashes_action`) ?? 'IMPLEMENTATION_SPECIFIC_DEFAULT';
  // Envoy's implementation-specific default is KEEP_UNCHANGED.
  const escapedSlashes = action === 'IMPLEMENTATION_SPECIFIC_DEFAULT' ? 'KEEP_UNCHANGED' : action;
  if (!ESCAPED_SLASH_ACTIONS.has(escapedSlashes)) configError(`${at}.path_with_escaped_slashes_action`, `unknown value '${action}'`);
  return Object.freeze({
    normalizePath: optBool(c.normalize_path, `${at}.normalize_path`) ?? false,
    mergeSlashes: optBool(c.merge_slashes, `${at}.merge_slashes`) ?? false,
    escapedSlashes: escapedSlashes as EscapedSlashesAction,
    stripFragment,
  });
}

/** Applies the rules to an origin-form request target (path and query). */
export function normalizeRequestPath(target: string, rules: PathNormalization): PathDecision {
  let path = target;
  const hash = path.indexOf('#');
  if (hash >= 0) {
    if (!rules.stripFragment) return REJECT;
    path = path.slice(0, hash);
  }
  let redirect = false;
  if (rules.escapedSlashes !== 'KEEP_UNCHANGED') {
    const q = path.indexOf('?');
    const head = q < 0 ? path : path.slice(0, q);
    if (head.includes('%')) {
      const unescaped = head.replace(ESCAPED_SLASH, (m) => (m.charCodeAt(1) === 0x32 ? '/' : '\\'));
      if (unescaped.length !== head.length) {
        if (rules.escapedSlashes === 'REJECT_REQUEST') return REJECT;
        redirect = rules.escapedSlashes === 'UNESCAPE_AND_REDIRECT';
        path = q < 0 ? unescaped : unescaped + path.slice(q);
      }
    }
  }
  if (rules.normalizePath) {
    const q = path.indexOf('?');
    const head = stripDotSegmentParameters(q < 0 ? path : path.slice(0, q));
    const canonical = canonicalizePath(head);
    if (canonical === undefined) return REJECT;
    path = q < 0 ? canonical : canonical + path.slice(q);
  }
  if (rules.mergeSlashes) path = mergeSlashes(path);
  return redirect ? { action: 'redirect', path } : { action: 'continue', path };
}

const REJECT: PathDecision = Object.freeze({ action: 'reject' });
const ESCAPED_SLASH = /%(?:2[fF]|5[cC])/g;

/**
 * Collapses runs of slashes in the path part, keeping one leading and one trailing slash when
 * the path had them (Envoy's rule, so `//` stays `//`: an empty path between two kept slashes).
 */
export function mergeSlashes(target: string): string {
  const q = target.indexOf('?');
  const head = q < 0 ? target : target.slice(0, q);
  if (!head.includes('//')) return target;
  const prefix = head.startsWith('/') ? '/' : '';
  const suffix = head.endsWith('/') ? '/' : '';
  const merged = prefix + head.split('/').filter((s) => s !== '').join('/') + suffix;
  return q < 0 ? merged : merged + target.slice(q);
}

/** `..;x` and `.;x` segments lose their parameters so they still count as dot segments (Envoy, Tomcat-style `;` params). */
function stripDotSegmentParameters(head: string): string {
  if (!head.includes('.;')) return head;
  return head.split('/').map((s) => (s.startsWith('..;') ? '..' : s.startsWith('.;') ? '.' : s)).join('/');
}

// ---- Chromium's path canonicalizer (the behaviour Envoy links), over latin1 code units --------

const PASS = 0;
const SPECIAL = 1;
const ESCAPE = 2 | SPECIAL;
const UNESCAPE = 4;
const INVALID = 8 | SPECIAL;

/** How each byte is treated in a path, raw or once percent-decoded. */
const CHAR_CLASS: Uint8Array = (() => {
  const t = new Uint8Array(256).fill(ESCAPE); // controls and every byte >= 0x7f are escaped
  t[0] = INVALID;
  for (const c of "!$&'()*+,/:;=@[]") t[c.charCodeAt(0)] = PASS;
  for (const c of '-_~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz') t[c.charCodeAt(0)] = UNESCAPE;
  t[0x2e] = SPECIAL; // '.': dot segments
  // Escaped in a path: space " # % < > ? \ ^ ` { | } (the backslash and '%' are handled specially).
  return t;
})();

const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

/** The byte a valid `%XX` at `i` stands for, or -1. */
function decodeEscape(s: string, i: number, end: number): number {
  if (i + 3 > end) return -1;
  const hi = hexValue(s.charCodeAt(i + 1));
  const lo = hexValue(s.charCodeAt(i + 2));
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

function isSlash(c: number): boolean {
  return c === 0x2f || c === 0x5c;
}

/** Length of a dot at `i` ('.' or '%2e'), 0 if none. */
function dotLength(s: string, i: number, end: number): number {
  if (i >= end) return 0;
  if (s.charCodeAt(i) === 0x2e) return 1;
  if (s.charCodeAt(i) === 0x25 && i + 3 <= end && s.charCodeAt(i + 1) === 0x32 && (s.charCodeAt(i + 2) | 0x20) === 0x65) return 3;
  return 0;
}

/**
 * Canonical form of a path (no query), or undefined when it contains an (escaped) NUL.
 * Exported for authorization, which must see exactly what routing saw.
 */
export function canonicalizePath(input: string): string | undefined {
  if (PLAIN_PATH.test(input)) return input;
  // Code units above 0xff (never from node's parsers, which give latin1) are taken as UTF-8 bytes.
  const path = NON_LATIN1.test(input) ? Buffer.from(input, 'utf8').toString('latin1') : input;
  const out: number[] = [];
  const end = path.length;
  if (end === 0 || !isSlash(path.charCodeAt(0))) out.push(0x2f);
  let ok = true;
  // Where a '%' that began no valid escape was written: a later unescape must not complete it.
  let lastBadPercent = -10;
  for (let i = 0; i < end; i++) {
    const c = path.charCodeAt(i);
    const cls = CHAR_CLASS[c];
    if ((cls & SPECIAL) === 0) {
      out.push(c);
      continue;
    }
    const dot = dotLength(path, i, end);
    if (dot > 0) {
      if (out.length > 0 && out[out.length - 1] === 0x2f) {
        const after = i + dot;
        let consumed = 0;
        let kind: 'name' | 'cur' | 'up' = 'name';
        if (after === end) kind = 'cur';
        else if (isSlash(path.charCodeAt(after))) [kind, consumed] = ['cur', 1];
        else {
          const dot2 = dotLength(path, after, end);
          if (dot2 > 0 && (after + dot2 === end || isSlash(path.charCodeAt(after + dot2)))) [kind, consumed] = ['up', after + dot2 === end ? dot2 : dot2 + 1];
        }
        if (kind === 'name') out.push(0x2e);
        else if (kind === 'up') backUpToPreviousSlash(out);
        i += kind === 'name' ? dot - 1 : dot + consumed - 1;
      } else {
        out.push(0x2e);
        i += dot - 1;
      }
    } else if (c === 0x5c) {
      out.push(0x2f);
    } else if (c === 0x25) {
      const v = decodeEscape(path, i, end);
      if (v < 0) {
        lastBadPercent = out.length;
        out.push(0x25);
        continue;
      }
      i += 2;
      const vcls = CHAR_CLASS[v];
      if ((vcls & UNESCAPE) !== 0) {
        out.push(v);
        if (lastBadPercent >= out.length - 3) fixNestedEscape(path, i + 1, end, lastBadPercent, out);
      } else {
        // Kept escaped exactly as sent (hex case included).
        out.push(0x25, path.charCodeAt(i - 1), path.charCodeAt(i));
        if (vcls === INVALID) ok = false;
      }
    } else {
      if (cls === INVALID) ok = false;
      out.push(0x25, HEX.charCodeAt(c >> 4), HEX.charCodeAt(c & 15));
    }
  }
  return ok ? Buffer.from(out).toString('latin1') : undefined;
}

/** A path canonicalization leaves as it is: a leading slash and no dot, '%', backslash or character to escape. */
const PLAIN_PATH = /^\/[A-Za-z0-9\-_~!$&'()*+,/:;=@[\]]*$/;
const NON_LATIN1 = /[^\u0000-\u00ff]/;

/** Drops the last segment of `out` (which ends in '/'), never above the first slash. */
function backUpToPreviousSlash(out: number[]): void {
  let i = out.length - 1;
  if (i === 0) return;
  i--;
  while (i > 0 && out[i] !== 0x2f) i--;
  out.length = i + 1;
}

/**
 * `%%30%30` must not come out as `%00`: when an unescaped character completes a valid escape with
 * an earlier stray '%', that '%' is written as `%25` (Chromium's nested-escape rule).
 */
function fixNestedEscape(path: string, next: number, end: number, badPercent: number, out: number[]): void {
  const length = out.length;
  const last = out[length - 1];
  const appendNext = badPercent === length - 2;
  if (appendNext) {
    if (next === end || path.charCodeAt(next) >= 0x80) return;
    out.push(path.charCodeAt(next));
  }
  const hi = hexValue(out[badPercent + 1] ?? -1);
  const lo = hexValue(out[badPercent + 2] ?? -1);
  if (badPercent + 3 <= out.length && hi >= 0 && lo >= 0) {
    if (!appendNext) out.push(out[badPercent + 1]);
    out[badPercent + 1] = 0x32;
    out[badPercent + 2] = 0x35;
    out.push(last);
  } else if (appendNext) {
    out.length = length;
  }
}
