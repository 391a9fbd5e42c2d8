/**
 * A bounded grammar of HTTP/1.1 request bytes for the raw differential: request lines (methods,
 * targets in origin, absolute, authority and asterisk form, versions), header fields (names and
 * values with odd characters, obs-fold, bare LF / CR), message framing (Content-Length and
 * Transfer-Encoding alone, duplicated, conflicting, malformed; chunk extensions, trailers, bad
 * chunk sizes; short and overlong bodies), Upgrade / Expect / Connection, and pipelining. Every
 * request carries `x-case: <case>.<n>` so the backend's log says which request reached it.
 * Each case lists tags naming the odd features it contains.
 */
import type { Rng } from './prng.ts';
import { CASE_HEADER } from './recorder.ts';
import { genPath } from './raw-paths.ts';

/** One generated HTTP/1.1 case: bytes written on one connection. */
export interface H1Case {
  readonly id: string;
  /** Written in order, a moment apart (the split points are part of the case). */
  readonly chunks: readonly Buffer[];
  /** Methods of the request heads written, in order (a HEAD response has no body). */
  readonly methods: readonly string[];
  readonly tags: readonly string[];
}

const METHODS: readonly (readonly [number, string])[] = [
  [30, 'GET'], [12, 'POST'], [4, 'PUT'], [3, 'DELETE'], [4, 'HEAD'], [3, 'OPTIONS'], [2, 'PATCH'], [1, 'TRACE'], [1, 'CONNECT'],
  [1, 'get'], [1, 'PROPFIND'], [1, 'FOO'], [1, 'G(T'], [1, ''], [1, 'GET\x00'], [1, 'X-CUSTOM_1'],
];
const VERSIONS: readonly (readonly [number, string])[] = [
  [80, 'HTTP/1.1'], [5, 'HTTP/1.0'], [2, 'HTTP/2.0'], [1, 'HTTP/2'], [1, 'HTTP/0.9'], [1, 'HTTP/1.2'], [1, 'HTTP/3.0'],
  [1, 'http/1.1'], [1, 'HTTP/1.10'], [1, 'HTTP/11'], [1, 'HTTP/1.1 '], [1, ''],
];
const HOSTS: readonly (readonly [number, string])[] = [
  [30, 'diff.example'], [8, 'other.example'], [3, 'other.example:8080'], [2, 'DIFF.Example'], [2, 'diff.example.'],
  [1, '127.0.0.1'], [1, '[::1]:80'], [1, 'x/../y'], [1, 'diff.example/admin'], [1, 'u@other.example'], [1, 'diff.example:'],
  [1, 'diff.example:99999'], [1, 'diff example'], [1, ''], [1, 'caf\xe9.example'], [1, 'diff.example\\x'], [1, 'a?b'], [1, 'a#b'],
];
const NAMES = ['accept', 'user-agent', 'x-foo', 'X-Mixed-Case', 'x_underscore', 'cookie', 'x-forwarded-for', 'x-envoy-foo', 'x-request-id',
  'via', 'forwarded', 'x-forwarded-host', 'authorization', 'accept-encoding', 'content-type', 'range', 'x-b3-traceid'];
const VALUES = ['v', '', ' padded ', 'a\tb', 'a, b', '"quoted"', 'caf\xe9', '1.2.3.4', 'text/plain', 'a=1; b=2', 'bytes=0-1', '*/*', 'x'.repeat(300)];
const ODD_NAMES: readonly (readonly [string, string | undefined])[] = [
  ['X Foo', 'space-in-name'], ['', 'empty-name'], ['x\x00y', 'ctl-in-name'], ['x\x7fy', 'ctl-in-name'], ['x(y)', 'non-token-name'],
  ['x@y', 'non-token-name'], ['x{y}', 'non-token-name'], ['x"y', 'non-token-name'], ['x-trailing-space ', 'space-before-colon'],
  ['x\ty', 'ctl-in-name'], ['caf\xe9', 'high-in-name'], ["!#$%&'*+-.^_`|~", undefined],
];
const ODD_VALUES: readonly (readonly [string, string])[] = [
  ['a\x00b', 'nul-in-value'], ['a\x01b', 'ctl-in-value'], ['a\x7fb', 'ctl-in-value'], ['a\x0bb', 'ctl-in-value'], ['a\rb', 'cr-in-value'],
  ['\xff\xfe', 'high-in-value'], ['a\x1bb', 'ctl-in-value'],
];
const CONTENT_LENGTHS: readonly (readonly [string, string])[] = [
  ['+5', 'cl-invalid'], ['-1', 'cl-invalid'], ['0x5', 'cl-invalid'], ['5a', 'cl-invalid'], [' 5', 'cl-spaces'], ['5 ', 'cl-spaces'],
  ['99999999999999999999', 'cl-huge'], ['005', 'cl-leading-zero'], ['5, 5', 'cl-list'], ['5,5', 'cl-list'], ['', 'cl-empty'], ['5.0', 'cl-invalid'],
];
const TRANSFER_ENCODINGS: readonly (readonly [string, string])[] = [
  ['Chunked', 'te-case'], ['chunked, identity', 'te-not-last'], ['gzip, chunked', 'te-gzip-chunked'], ['identity', 'te-identity'],
  ['xchunked', 'te-invalid'], [' chunked', 'te-spaces'], ['chunked ', 'te-spaces'], ['chunked\t', 'te-spaces'], ['gzip', 'te-gzip'],
  ['chunked, chunked', 'te-double'], ['', 'te-empty'], ['\x0bchunked', 'te-invalid'],
];

class Builder {
  readonly tags = new Set<string>();
  /** Requests written inside another's body (past its Content-Length), in order. */
  extraMethods: string[] = [];
  readonly r: Rng;
  constructor(r: Rng) {
    this.r = r;
  }
  tag(t: string): void {
    this.tags.add(t);
  }
}

/** A chunked body, mostly valid; `odd` is the chance of each kind of damage. */
function chunked(b: Builder, body: string, odd: number): string {
  const r = b.r;
  if (body === '' && !r.chance(odd)) return '0\r\n\r\n';
  const half = Math.ceil(body.length / 2);
  const parts = [body.slice(0, half), body.slice(half)].filter((p) => p !== '');
  let out = '';
  for (const p of parts) {
    let size = p.length.toString(16);
    if (r.chance(odd * 0.3)) {
      const [s, t] = r.pick<readonly [string, string | undefined]>([[size.toUpperCase() + ';ext=1', 'chunk-ext'], [`${size} `, 'chunk-size-space'], [`0x${size}`, 'chunk-size-invalid'],
        [`-${size}`, 'chunk-size-invalid'], ['zz', 'chunk-size-invalid'], ['ffffffffffffffffff', 'chunk-size-huge'], [`${size};a="b c"`, 'chunk-ext'],
        [`${size}\x00`, 'chunk-size-invalid'], [`0${size}`, undefined]]);
      size = s;
      if (t !== undefined) b.tag(t);
    }
    const eol = r.chance(odd * 0.1) ? (b.tag('chunk-bare-lf'), '\n') : '\r\n';
    out += `${size}${eol}${p}${r.chance(odd * 0.1) ? (b.tag('chunk-missing-crlf'), '') : '\r\n'}`;
  }
  if (r.chance(odd * 0.15)) {
    b.tag('trailers');
    return `${out}0\r\n${r.pick(['x-trailer: 1\r\n', 'content-length: 5\r\n', 'host: evil\r\n', 'bad trailer\r\n'])}\r\n`;
  }
  if (r.chance(odd * 0.1)) {
    b.tag('chunk-unterminated');
    return `${out}0\r\n`;
  }
  return `${out}0\r\n\r\n`;
}

/** One request (head and body) as a string; `odd` in [0, 1] scales how much damage it carries. */
function request(b: Builder, caseTag: string, odd: number, method: string): string {
  const r = b.r;
  const eol = r.chance(odd * 0.05) ? (b.tag('bare-lf'), '\n') : r.chance(odd * 0.02) ? (b.tag('bare-cr'), '\r') : '\r\n';
  const p = genPath(r, odd);
  p.tags.forEach((t) => b.tag(t));
  let target = p.path;
  if (r.chance(odd * 0.08)) {
    target = `${r.pick(['http', 'https', 'HTTP', 'ftp'])}://${r.pick(['diff.example', 'other.example', 'other.example:8080', 'u@x', ''])}${target}`;
    b.tag('absolute-form');
  } else if (r.chance(odd * 0.02)) {
    target = r.pick(['*', 'diff.example:443', '']);
    b.tag('odd-target');
  }
  let version = r.chance(odd) ? r.weighted(VERSIONS) : 'HTTP/1.1';
  if (version !== 'HTTP/1.1') b.tag(`version:${version}`);
  const sp = r.chance(odd * 0.03) ? (b.tag('odd-request-line-space'), r.pick(['  ', '\t'])) : ' ';
  let line = version === '' ? `${method}${sp}${target}` : `${method}${sp}${target}${sp}${version}`;
  if (r.chance(odd * 0.02)) {
    line = r.pick(['GARBAGE', '\x16\x03\x01', 'GET', ' GET / HTTP/1.1']);
    b.tag('garbage-line');
    version = '';
  }
  const lines: string[] = [line];
  const add = (name: string, value: string) => lines.push(`${name}:${r.chance(0.9) ? ' ' : ''}${value}`);
  // Host: usually one, sometimes none, two, or odd.
  const hostMode = r.chance(odd * 0.3) ? r.pick(['none', 'two', 'odd', 'empty']) : 'one';
  if (hostMode !== 'none') add(r.chance(0.1) ? 'host' : 'Host', hostMode === 'odd' ? r.weighted(HOSTS) : hostMode === 'empty' ? '' : r.chance(0.8) ? 'diff.example' : 'other.example');
  if (hostMode === 'two') add('Host', r.pick(['other.example', 'diff.example']));
  if (hostMode !== 'one') b.tag(`host:${hostMode}`);
  lines.splice(r.int(1, lines.length), 0, `${CASE_HEADER}: ${caseTag}`);
  const n = r.int(0, 4);
  for (let i = 0; i < n; i++) add(r.chance(0.2) ? r.mangleCase(r.pick(NAMES)) : r.pick(NAMES), r.pick(VALUES));
  if (r.chance(odd * 0.15)) {
    const [name, t] = r.pick(ODD_NAMES);
    add(name, 'v');
    if (t !== undefined) b.tag(`name:${t}`);
  }
  if (r.chance(odd * 0.15)) {
    const [value, t] = r.pick(ODD_VALUES);
    add(r.pick(NAMES), value);
    b.tag(`value:${t}`);
  }
  if (r.chance(odd * 0.06)) {
    add('x-folded', 'a');
    lines.push(r.pick([' b', '\tb', ' ']));
    b.tag('obs-fold');
  }
  if (r.chance(odd * 0.12)) {
    const [name, value, t] = r.pick([['Connection', 'close', 'conn-close'], ['Connection', 'keep-alive', 'conn-keep-alive'], ['Connection', 'x-foo', 'conn-lists-header'],
      ['Connection', 'Upgrade', 'conn-upgrade'], ['Upgrade', 'websocket', 'upgrade-ws'], ['Upgrade', 'h2c', 'upgrade-h2c'], ['Expect', '100-continue', 'expect-continue'],
      ['Expect', 'foo', 'expect-other'], ['TE', 'trailers', 'te-trailers'], ['TE', 'gzip', 'te-header-gzip'], ['Proxy-Connection', 'keep-alive', 'proxy-connection'],
      ['Keep-Alive', 'timeout=5', 'keep-alive-header'], ['HTTP2-Settings', 'AAMAAABkAAQCAAAAAAIAAAAA', 'http2-settings']] as const);
    add(name, value);
    b.tag(t);
    if (t === 'conn-upgrade' && r.chance(0.7)) {
      const up = r.pick(['h2c', 'websocket', 'foo']);
      add('Upgrade', up);
      if (up === 'h2c') add('HTTP2-Settings', 'AAMAAABkAAQCAAAAAAIAAAAA');
      b.tag(`upgrade-${up}`);
    }
    if (t === 'conn-lists-header') add('x-foo', 'dropped');
  }
  // Framing and body.
  const bodyText = r.pick(['', 'hello', 'x=1&y=2', 'a'.repeat(40)]);
  let body = '';
  const framing = r.chance(odd * 0.5) ? r.pick(['cl-odd', 'te-odd', 'cl-te', 'te-cl', 'cl-dup', 'te-dup', 'cl-short', 'cl-long']) : method === 'POST' || method === 'PUT' || method === 'PATCH' ? r.pick(['cl', 'te', 'none']) : r.chance(0.05) ? 'cl' : 'none';
  if (framing !== 'none' && framing !== 'cl' && framing !== 'te') b.tag(`framing:${framing}`);
  switch (framing) {
    case 'cl':
      add('Content-Length', String(bodyText.length));
      body = bodyText;
      break;
    case 'te':
      add('Transfer-Encoding', 'chunked');
      body = chunked(b, bodyText, odd);
      break;
    case 'cl-odd': {
      const [v, t] = r.pick(CONTENT_LENGTHS);
      add('Content-Length', v);
      b.tag(t);
      body = 'hello';
      break;
    }
    case 'te-odd': {
      const [v, t] = r.pick(TRANSFER_ENCODINGS);
      add('Transfer-Encoding', v);
      b.tag(t);
      body = chunked(b, 'hello', odd);
      break;
    }
    case 'cl-te':
    case 'te-cl':
      if (framing === 'cl-te') add('Content-Length', String(r.pick([0, 5, 3])));
      add('Transfer-Encoding', r.pick(['chunked', 'Chunked', 'chunked, identity']));
      if (framing === 'te-cl') add('Content-Length', String(r.pick([0, 5, 3])));
      body = chunked(b, 'hello', odd);
      break;
    case 'cl-dup': {
      const a = r.pick([5, 3]);
      add('Content-Length', String(a));
      add(r.pick(['Content-Length', 'content-length']), String(r.chance(0.5) ? a : 4));
      body = 'hello';
      break;
    }
    case 'te-dup':
      add('Transfer-Encoding', r.pick(['chunked', 'gzip', 'identity']));
      add('Transfer-Encoding', r.pick(['chunked', 'gzip']));
      body = chunked(b, 'hello', odd);
      break;
    case 'cl-short':
      add('Content-Length', '10');
      body = 'short';
      break;
    case 'cl-long':
      add('Content-Length', '3');
      body = r.pick(['hello', `abcGET /b/smuggled HTTP/1.1\r\nHost: diff.example\r\n${CASE_HEADER}: ${caseTag}s\r\n\r\n`]);
      // The bytes past the Content-Length are a request of their own: one more response to wait for.
      if (body.startsWith('abcGET')) b.extraMethods.push('GET');
      break;
  }
  // Shuffle the header lines (not the request line, not a fold continuation).
  const head = lines.slice(1);
  if (r.chance(0.3) && !b.tags.has('obs-fold')) {
    for (let i = head.length - 1; i > 0; i--) {
      const j = r.int(0, i);
      [head[i], head[j]] = [head[j], head[i]];
    }
  }
  return `${[lines[0], ...head].join(eol)}${eol}${eol}${body}`;
}

/** Generates one case; `id` is the case number (`h1-<id>` is its x-case prefix). */
export function generateH1Case(r: Rng, id: number): H1Case {
  const b = new Builder(r);
  const caseId = `h1-${id}`;
  // Most cases carry a little damage; a few are clean (the baseline) or very damaged.
  const odd = r.weighted([[2, 0], [6, 0.35], [2, 1]]);
  const count = r.weighted([[8, 1], [2, 2], [1, 3]]);
  const methods: string[] = [];
  let text = r.chance(odd * 0.05) ? (b.tag('leading-crlf'), '\r\n') : '';
  for (let i = 0; i < count; i++) {
    // Pipelined requests after the first are usually plain, to see what happens to them.
    const m = r.chance(odd) ? r.weighted(METHODS) : r.pick(['GET', 'GET', 'POST', 'HEAD']);
    methods.push(m);
    text += request(b, `${caseId}.${i}`, i === 0 || r.chance(0.3) ? odd : 0, m);
    methods.push(...b.extraMethods);
    b.extraMethods = [];
  }
  if (count > 1) b.tag('pipelined');
  const bytes = Buffer.from(text, 'latin1');
  // Sometimes split the bytes at random points (parsers must not care).
  const chunks: Buffer[] = [];
  if (r.chance(0.15) && bytes.length > 2) {
    const cuts = [...new Set(Array.from({ length: r.int(1, 3) }, () => r.int(1, bytes.length - 1)))].sort((x, y) => x - y);
    let prev = 0;
    for (const c of cuts) {
      chunks.push(bytes.subarray(prev, c));
      prev = c;
    }
    chunks.push(bytes.subarray(prev));
  } else {
    chunks.push(bytes);
  }
  return { id: caseId, chunks, methods, tags: [...b.tags].sort() };
}
