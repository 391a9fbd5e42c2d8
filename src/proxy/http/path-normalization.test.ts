import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalizePath, mergeSlashes, normalizeRequestPath, parsePathNormalization, type PathNormalization } from './path-normalization.ts';

// Istio's MERGE_SLASHES: normalize_path + merge_slashes, escaped slashes kept, fragment stripped.
const mergeSlashesMode: PathNormalization = { normalizePath: true, mergeSlashes: true, escapedSlashes: 'KEEP_UNCHANGED', stripFragment: true };

const decide = (target: string, rules = mergeSlashesMode): string | undefined => {
  const d = normalizeRequestPath(target, rules);
  return d.action === 'reject' ? undefined : d.action === 'redirect' ? `redirect ${d.path}` : d.path;
};

/** [request target, what Envoy 1.40 forwarded (undefined: 400 path_normalization_failed)], normalize_path + merge_slashes. */
const recordedFromEnvoy: [string, string | undefined][] = [
  ["/", "/"],
  ["//", "//"],
  ["///", "//"],
  ["////a", "/a"],
  ["/a//b", "/a/b"],
  ["/a///b/", "/a/b/"],
  ["/a/b//", "/a/b/"],
  ["//a//b//?x=//y", "/a/b/?x=//y"],
  ["/a/./b", "/a/b"],
  ["/a/../b", "/b"],
  ["/../a", "/a"],
  ["/../../a", "/a"],
  ["/a/b/..", "/a/"],
  ["/a/b/.", "/a/b/"],
  ["/a/b/../", "/a/"],
  ["/a/.b", "/a/.b"],
  ["/a/..b", "/a/..b"],
  ["/a/b..", "/a/b.."],
  ["/a/...", "/a/..."],
  ["/a/.../b", "/a/.../b"],
  ["/x/../admin/secret", "/admin/secret"],
  ["//admin/secret", "/admin/secret"],
  ["/./admin/secret", "/admin/secret"],
  ["/%61dmin/secret", "/admin/secret"],
  ["/x/%2e%2e/admin/secret", "/admin/secret"],
  ["/x\\..\\admin/secret", "/admin/secret"],
  ["/x/%2E%2e/a", "/a"],
  ["/x/.%2e/a", "/a"],
  ["/x/%2e./a", "/a"],
  ["/x/%2e/a", "/x/a"],
  ["/x/%2e", "/x/"],
  ["/x/%2e%2e", "/"],
  ["/a%2fb", "/a%2fb"],
  ["/a%2Fb", "/a%2Fb"],
  ["/a%5cb", "/a%5cb"],
  ["/a%5Cb", "/a%5Cb"],
  ["/a%2f..%2fb", "/a%2f..%2fb"],
  ["/a/%2f/b", "/a/%2f/b"],
  ["/a%252fb", "/a%252fb"],
  ["/a%25", "/a%25"],
  ["/a%", "/a%"],
  ["/a%2", "/a%2"],
  ["/a%zz", "/a%zz"],
  ["/a%%30%30", "/a%2500"],
  ["/a%%300", "/a%2500"],
  ["/a%2%30", "/a%2520"],
  ["/a%%32%65", "/a%252e"],
  ["/a?b/../c", "/a?b/../c"],
  ["/a/../b?c/../d", "/b?c/../d"],
  ["/a//b?c//d", "/a/b?c//d"],
  ["/a/b?%61", "/a/b?%61"],
  ["/a/b?x#y", "/a/b?x"],
  ["/a#b/../c", "/a"],
  ["/a/b#", "/a/b"],
  ["/a?b#c", "/a?b"],
  ["/a#", "/a"],
  ["/#", "/"],
  ["/x/..;/admin/secret", "/admin/secret"],
  ["/x/.;/a", "/x/a"],
  ["/x/..;x/a", "/a"],
  ["/a;b/../c", "/c"],
  ["/a/;/b", "/a/;/b"],
  ["/a/./../b", "/b"],
  ["/a/b/c/../../d", "/a/d"],
  ["/a\\b\\..\\c", "/a/c"],
  ["/a/\\/b", "/a/b"],
  ["/a\\\\b", "/a/b"],
  ["/%2e%2e/a", "/a"],
  ["/.%2E/a", "/a"],
  ["/a/.%00", undefined],
  ["/a%00", undefined],
  ["/%00", undefined],
  ["/a/%e2%82%ac", "/a/%e2%82%ac"],
  ["/a/%E2%82%AC", "/a/%E2%82%AC"],
];

test('normalize_path + merge_slashes decide every recorded target as Envoy 1.40 did', () => {
  for (const [target, want] of recordedFromEnvoy) assert.equal(decide(target), want, target);
});

test('percent-encoded bytes: unreserved characters decoded, %00 rejected, everything else kept as sent (hex case too)', () => {
  const unreserved = new Set('-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz');
  for (let b = 0; b < 256; b++) {
    for (const hex of new Set([b.toString(16).toUpperCase().padStart(2, '0'), b.toString(16).padStart(2, '0')])) {
      const target = `/p%${hex}q`;
      const c = String.fromCharCode(b);
      const want = b === 0 ? undefined : unreserved.has(c) ? `/p${c}q` : target;
      assert.equal(decide(target), want, target);
    }
  }
});

test('raw characters not allowed in a path are percent-encoded; a backslash is a slash', () => {
  for (const [c, want] of [['"', '%22'], ['<', '%3C'], ['>', '%3E'], ['^', '%5E'], ['`', '%60'], ['{', '%7B'], ['|', '%7C'], ['}', '%7D'], ['\\', '/'], ['\x7f', '%7F'], ['\xe9', '%E9'], [' ', '%20']]) {
    assert.equal(decide(`/p${c}q`), `/p${want}q`, JSON.stringify(c));
  }
  for (const c of "!$&'()*+,:;=@[]-._~") assert.equal(decide(`/p${c}q`), `/p${c}q`, c);
  assert.equal(canonicalizePath('/caf\u00e9'), '/caf%E9');
  assert.equal(canonicalizePath('/\u20ac'), '/%E2%82%AC', 'code units above 0xff count as UTF-8');
});

test('the issue\'s bypass paths all reach /admin/ once normalized', () => {
  for (const t of ['/x/../admin/secret', '//admin/secret', '/./admin/secret', '/%61dmin/secret', '/x/%2e%2e/admin/secret', '/x\\..\\admin/secret']) {
    assert.equal(decide(t), '/admin/secret', t);
  }
  // BASE (Istio's default) does not merge slashes: `//admin` stays what it is, on Envoy too.
  assert.equal(decide('//admin/secret', { ...mergeSlashesMode, mergeSlashes: false }), '//admin/secret');
});

test('fragments: stripped as Istio configures Envoy, or rejected as stock Envoy does', () => {
  assert.equal(decide('/a/b?x#y'), '/a/b?x');
  assert.equal(decide('/a#../../b'), '/a');
  assert.equal(decide('/a#b', { ...mergeSlashesMode, stripFragment: false }), undefined);
  // Stripping happens whatever else is configured.
  assert.equal(decide('/a//b#c', { normalizePath: false, mergeSlashes: false, escapedSlashes: 'KEEP_UNCHANGED', stripFragment: true }), '/a//b');
});

test('path_with_escaped_slashes_action: keep, reject, redirect (unescaped and normalized), forward', () => {
  const rules = (escapedSlashes: PathNormalization['escapedSlashes']): PathNormalization => ({ ...mergeSlashesMode, escapedSlashes });
  assert.equal(decide('/a%2fb', rules('KEEP_UNCHANGED')), '/a%2fb');
  assert.equal(decide('/a%2fb', rules('REJECT_REQUEST')), undefined);
  assert.equal(decide('/a%2fb', rules('UNESCAPE_AND_REDIRECT')), 'redirect /a/b');
  assert.equal(decide('/a%2fb', rules('UNESCAPE_AND_FORWARD')), '/a/b');
  // Recorded from Envoy: %5C becomes a backslash, then a slash; `..` applies after unescaping.
  assert.equal(decide('/a%5C..%5Cb', rules('UNESCAPE_AND_FORWARD')), '/b');
  assert.equal(decide('/a%5C..%5Cb', rules('UNESCAPE_AND_REDIRECT')), 'redirect /b');
  // The query is never unescaped; without merge_slashes the unescaped // stays.
  assert.equal(decide('/a%2F%2Fb?x=%2f', { ...rules('UNESCAPE_AND_FORWARD'), mergeSlashes: false }), '/a//b?x=%2f');
  assert.equal(decide('/a%2F%2Fb?x=%2f', rules('UNESCAPE_AND_REDIRECT')), 'redirect /a/b?x=%2f');
  // Nothing escaped: nothing to redirect.
  assert.equal(decide('/a/b', rules('UNESCAPE_AND_REDIRECT')), '/a/b');
  assert.equal(decide('/a/b?c=%2f', rules('REJECT_REQUEST')), '/a/b?c=%2f');
});

test('everything off leaves the target alone (except the fragment)', () => {
  const off: PathNormalization = { normalizePath: false, mergeSlashes: false, escapedSlashes: 'KEEP_UNCHANGED', stripFragment: true };
  for (const t of ['/a/../b', '//x', '/%61', '/a\\b', '/a%00']) assert.equal(decide(t, off), t);
});

test('merge_slashes alone: leading and trailing slash kept, query untouched', () => {
  assert.equal(mergeSlashes('///'), '//');
  assert.equal(mergeSlashes('/a//b///c/'), '/a/b/c/');
  assert.equal(mergeSlashes('/a?b//c'), '/a?b//c');
  assert.equal(mergeSlashes('/a//b?c//d'), '/a/b?c//d');
});

test('long and plain paths: no stack limits, plain paths returned as they are', () => {
  const long = `/${'a/./'.repeat(20_000)}b`;
  assert.equal(canonicalizePath(long), `/${'a/'.repeat(20_000)}b`);
  const plain = '/api/v1/items;matrix=1/x';
  assert.equal(canonicalizePath(plain), plain);
});

test('parsePathNormalization reads the HCM fields with Envoy\'s defaults and rejects unknown actions', () => {
  assert.deepEqual(parsePathNormalization({}, 'hcm'), { normalizePath: false, mergeSlashes: false, escapedSlashes: 'KEEP_UNCHANGED', stripFragment: true });
  assert.deepEqual(parsePathNormalization({ normalize_path: true, merge_slashes: true, path_with_escaped_slashes_action: 'UNESCAPE_AND_FORWARD' }, 'hcm'),
    { normalizePath: true, mergeSlashes: true, escapedSlashes: 'UNESCAPE_AND_FORWARD', stripFragment: true });
  assert.equal(parsePathNormalization({ path_with_escaped_slashes_action: 'IMPLEMENTATION_SPECIFIC_DEFAULT' }, 'hcm').escapedSlashes, 'KEEP_UNCHANGED');
  assert.throws(() => parsePathNormalization({ path_with_escaped_slashes_action: 'DECODE' }, 'hcm'), /hcm\.path_with_escaped_slashes_action.*DECODE/);
  assert.throws(() => parsePathNormalization({ normalize_path: 'yes' }, 'hcm'), /hcm\.normalize_path/);
});
