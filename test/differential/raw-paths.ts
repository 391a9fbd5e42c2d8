/**
 * Request targets for the raw differential, shared by the HTTP/1.1 and HTTP/2 generators: paths
 * built from segments that path normalization cares about (dot segments, percent-encoded dots,
 * unreserved characters and slashes, backslashes, empty segments, NUL, fragments, queries), each
 * tagged with what it contains so a mismatch can be traced to the feature behind it.
 */
import type { Rng } from './prng.ts';

/** A generated path with the features it exercises. */
export interface GenPath {
  /** Latin1 string: one char per byte on the wire. */
  path: string;
  tags: string[];
}

/** Segment text and the tag it adds (none for plain segments). */
const SEGMENTS: readonly (readonly [string, string | undefined])[] = [
  ['a', undefined], ['b', undefined], ['admin', undefined], ['secret', undefined], ['x', undefined], ['ADMIN', undefined], ['index.html', undefined],
  ['..', 'dot-segment'], ['.', 'dot-segment'], ['%2e%2e', 'pct-dot'], ['%2E%2e', 'pct-dot'], ['%2e', 'pct-dot'], ['.%2e', 'pct-dot'],
  ['%61dmin', 'pct-unreserved'], ['%41DMIN', 'pct-unreserved'], ['%7e', 'pct-unreserved'], ['~user', undefined], ['a%2db', 'pct-unreserved'],
  ['a%2fb', 'escaped-slash'], ['a%2Fb', 'escaped-slash'], ['a%5cb', 'escaped-slash'], ['a%5Cb', 'escaped-slash'],
  ['', 'empty-segment'], ['x%20y', undefined], ['%zz', 'bad-pct'], ['%', 'bad-pct'], ['%0', 'bad-pct'], ['a;b=c', 'semicolon'], [';', 'semicolon'],
  ['%00', 'pct-nul'], ['caf\xc3\xa9', 'utf8'], ['%C3%A9', undefined], ['a:b', undefined], ['@', undefined], ['a+b', undefined], ["!$&'()*,=", undefined],
];

/** A path aimed at the test's routes: `/`, `/admin/...` (403), `/b/...` (cluster b), `/exact`. */
export function genPath(r: Rng, odd: number): GenPath {
  const tags: string[] = [];
  const base = r.weighted<string[]>([[4, ['admin', 'secret']], [3, ['b']], [2, []], [1, ['exact']], [2, ['a', 'x']]]);
  const segs = [...base];
  const extra = r.chance(odd) ? r.int(1, 3) : 0;
  for (let i = 0; i < extra; i++) {
    const [text, tag] = r.pick(SEGMENTS);
    segs.splice(r.int(0, segs.length), 0, text);
    if (tag !== undefined) tags.push(tag);
  }
  let sep = '/';
  if (r.chance(odd * 0.15)) {
    sep = '\\';
    tags.push('backslash');
  }
  let path = (r.chance(odd * 0.1) ? (tags.push('double-slash'), '//') : r.chance(odd * 0.05) ? (tags.push('no-leading-slash'), '') : '/') + segs.join(sep);
  if (base.length > 0 && r.chance(0.3)) path += '/';
  if (r.chance(0.2)) {
    path += r.pick(['?q=1', '?a=b&c=d', '?', '?x=%2e%2e/admin', '?x=/../admin', '?%zz', '?a=1#f']);
    tags.push('query');
  }
  if (r.chance(odd * 0.12)) {
    path += r.pick(['#frag', '#', '#/../admin', '#a?b']);
    tags.push('fragment');
  }
  if (r.chance(odd * 0.04)) {
    const at = r.int(1, path.length);
    path = path.slice(0, at) + r.pick(['\x00', '\x7f', '\x01', '\x1b']) + path.slice(at);
    tags.push('raw-ctl');
  }
  if (r.chance(odd * 0.04)) {
    path += r.pick(['\xff', '\x80', '\xc3\xa9']);
    tags.push('raw-high');
  }
  if (path.includes('#')) tags.push('fragment');
  return { path, tags: [...new Set(tags.map((t) => `path:${t}`))] };
}
