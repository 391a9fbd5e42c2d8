/**
 * A bounded grammar of HTTP/2 frame sequences (prior-knowledge h2c) for the raw differential: the
 * client's SETTINGS (odd and invalid values), requests on streams 1, 3, 5 (or on even, zero and
 * decreasing ids) whose header lists get odd pseudo-headers (missing, duplicated, unknown, after a
 * regular field, `:status` in a request), connection-specific and upper-case fields, bad values,
 * HPACK representations (indexing, Huffman, invalid indexes and table updates), CONTINUATION
 * splits, padding (valid and not), DATA with or without a matching content-length, trailers, and
 * frames between them: PING, PRIORITY, WINDOW_UPDATE, RST_STREAM, GOAWAY, unknown types,
 * PUSH_PROMISE. Every request carries `x-case: <case>.<stream>`; tags name the odd features.
 */
import type { Rng } from './prng.ts';
import { CASE_HEADER } from './recorder.ts';
import { continuation, data, frame, FrameType, goaway, headers, ping, PREFACE, priority, rstStream, settings, Setting, windowUpdate } from './h2-frames.ts';
import { encodeBlock, type FieldRep } from './hpack.ts';
import { genPath } from './raw-paths.ts';

/** One generated HTTP/2 case. */
export interface H2Case {
  readonly id: string;
  /** Written in order, a moment apart. */
  readonly chunks: readonly Buffer[];
  /** Streams that carry a request (the outcome lists each). */
  readonly streams: readonly number[];
  readonly tags: readonly string[];
}

const CLIENT_SETTINGS: readonly (readonly [string, () => Buffer])[] = [
  ['settings:enable-push-2', () => settings([[Setting.ENABLE_PUSH, 2]])],
  ['settings:window-too-big', () => settings([[Setting.INITIAL_WINDOW_SIZE, 2 ** 31]])],
  ['settings:frame-size-small', () => settings([[Setting.MAX_FRAME_SIZE, 100]])],
  ['settings:frame-size-big', () => settings([[Setting.MAX_FRAME_SIZE, 2 ** 24]])],
  ['settings:unknown-id', () => settings([[0x99, 7]])],
  ['settings:table-size-0', () => settings([[Setting.HEADER_TABLE_SIZE, 0]])],
  ['settings:bad-length', () => frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(5))],
  ['settings:on-stream', () => frame(FrameType.SETTINGS, 0, 1, Buffer.alloc(0))],
  ['settings:ack-with-payload', () => frame(FrameType.SETTINGS, 1, 0, Buffer.alloc(6))],
  ['settings:missing', () => Buffer.alloc(0)],
  ['settings:window-0', () => settings([[Setting.INITIAL_WINDOW_SIZE, 0]])],
  ['settings:max-streams-0', () => settings([[Setting.MAX_CONCURRENT_STREAMS, 0]])],
];

const REGULAR: readonly (readonly [string, string])[] = [
  ['accept', '*/*'], ['user-agent', 'raw-h2'], ['x-foo', 'bar'], ['cookie', 'a=1'], ['cookie', 'b=2'], ['x-forwarded-for', '1.2.3.4'],
  ['x-envoy-foo', '1'], ['content-type', 'text/plain'], ['x-empty', ''], ['via', 'proxy'], ['x_underscore', 'v'],
];

/** Header list mutations: [tag, change]. */
type Fields = [string, string][];
const MUTATIONS: readonly (readonly [string, (f: Fields, r: Rng) => void])[] = [
  ['pseudo:missing-method', (f) => drop(f, ':method')],
  ['pseudo:missing-path', (f) => drop(f, ':path')],
  ['pseudo:missing-scheme', (f) => drop(f, ':scheme')],
  ['pseudo:missing-authority', (f) => drop(f, ':authority')],
  ['pseudo:missing-authority-with-host', (f) => (drop(f, ':authority'), f.push(['host', 'diff.example']))],
  ['pseudo:host-conflicts', (f) => f.push(['host', 'other.example'])],
  ['pseudo:host-same', (f) => f.push(['host', 'diff.example'])],
  ['pseudo:duplicate', (f, r) => f.splice(1, 0, [r.pick([':method', ':path', ':scheme', ':authority']), r.pick(['GET', '/b/dup', 'https', 'other.example'])])],
  ['pseudo:unknown', (f) => f.splice(2, 0, [':foo', 'bar'])],
  ['pseudo:status-in-request', (f) => f.splice(1, 0, [':status', '200'])],
  ['pseudo:after-regular', (f) => {
    const i = f.findIndex(([n]) => n === ':authority' || n === ':path');
    const [moved] = f.splice(i, 1);
    f.push(moved);
  }],
  ['pseudo:protocol', (f) => f.push([':protocol', 'websocket'])],
  ['pseudo:empty-path', (f) => set(f, ':path', '')],
  ['pseudo:path-no-slash', (f) => set(f, ':path', 'a/b')],
  ['pseudo:path-asterisk', (f, r) => (set(f, ':path', '*'), set(f, ':method', r.pick(['OPTIONS', 'GET'])))],
  ['pseudo:scheme-odd', (f, r) => set(f, ':scheme', r.pick(['ftp', 'HTTP', '', 'https']))],
  ['pseudo:authority-odd', (f, r) => set(f, ':authority', r.pick(['x/../y', 'diff.example/admin', 'a b', 'u@diff.example', 'other.example:8080', '', 'DIFF.example', 'a?b', '[::1]:80']))],
  ['method:odd', (f, r) => set(f, ':method', r.pick(['get', 'G T', 'PROPFIND', 'FOO', '', 'CONNECT', 'TRACE', 'HEAD']))],
  ['field:upper-case', (f) => f.push(['X-Upper', 'v'])],
  ['field:connection', (f, r) => f.push(r.pick([['connection', 'keep-alive'], ['keep-alive', 'timeout=5'], ['proxy-connection', 'x'], ['transfer-encoding', 'chunked'], ['upgrade', 'websocket']] as const).slice() as [string, string])],
  ['field:te-gzip', (f) => f.push(['te', 'gzip'])],
  ['field:te-trailers', (f) => f.push(['te', 'trailers'])],
  ['field:value-nul', (f) => f.push(['x-bad', 'a\x00b'])],
  ['field:value-crlf', (f, r) => f.push(['x-bad', r.pick(['a\r\nb', 'a\rb', 'a\nb'])])],
  ['field:value-space', (f, r) => f.push(['x-bad', r.pick([' a', 'a ', 'a\t', '\ta'])])],
  ['field:value-high', (f) => f.push(['x-bad', 'caf\xe9'])],
  ['field:value-ctl', (f) => f.push(['x-bad', 'a\x01b'])],
  ['field:name-odd', (f, r) => f.push([r.pick(['x y', 'x:y', 'x(y)', '', 'x\x00', 'caf\xe9']), 'v'])],
  ['field:long-value', (f) => f.push(['x-long', 'v'.repeat(9000)])],
];

function drop(f: Fields, name: string): void {
  const i = f.findIndex(([n]) => n === name);
  if (i >= 0) f.splice(i, 1);
}
function set(f: Fields, name: string, value: string): void {
  const i = f.findIndex(([n]) => n === name);
  if (i >= 0) f[i] = [name, value];
  else f.push([name, value]);
}

/** HPACK block for `fields`: mostly literal, sometimes indexed or Huffman, rarely invalid. */
function block(r: Rng, fields: Fields, odd: number, tags: Set<string>): Buffer {
  const reps: FieldRep[] = fields.map(([name, value]) => {
    if (name === ':method' && value === 'GET' && r.chance(0.5)) return { kind: 'indexed', index: 2 };
    if (name === ':scheme' && value === 'http' && r.chance(0.5)) return { kind: 'indexed', index: 6 };
    return { kind: 'literal', name, value, huffman: r.chance(0.3), index: r.pick(['without', 'without', 'incremental', 'never'] as const) };
  });
  if (r.chance(odd * 0.08)) {
    const bad = r.pick<readonly [string, FieldRep]>([['hpack:index-out-of-range', { kind: 'indexed', index: 200 }], ['hpack:index-0', { kind: 'indexed', index: 0 }],
      ['hpack:size-update-too-big', { kind: 'size-update', size: 100_000 }], ['hpack:size-update-late', { kind: 'size-update', size: 0 }]]);
    tags.add(bad[0]);
    reps.splice(bad[0] === 'hpack:size-update-late' ? reps.length : 0, 0, bad[1]);
  }
  let out = encodeBlock(reps);
  if (r.chance(odd * 0.03)) {
    tags.add('hpack:truncated');
    out = out.subarray(0, Math.max(1, out.length - r.int(1, 3)));
  }
  return out;
}

/** One request's frames on `sid`. */
function requestFrames(r: Rng, caseId: string, sid: number, odd: number, tags: Set<string>): Buffer[] {
  const p = genPath(r, odd);
  p.tags.forEach((t) => tags.add(t));
  const method = r.weighted([[6, 'GET'], [3, 'POST'], [1, 'HEAD'], [1, 'PUT']]);
  const fields: Fields = [[':method', method], [':scheme', 'http'], [':path', p.path.replace(/#.*$/, r.chance(0.5) ? '' : '$&')], [':authority', r.chance(0.85) ? 'diff.example' : 'other.example']];
  if (r.chance(0.1)) fields.splice(r.int(0, 3), 0, fields.splice(r.int(0, 3), 1)[0]); // pseudo-header order does not matter
  fields.push([CASE_HEADER, `${caseId}.${sid}`]);
  for (let i = r.int(0, 3); i > 0; i--) fields.push([...r.pick(REGULAR)]);
  const muts = r.chance(odd) ? r.int(1, 2) : 0;
  for (let i = 0; i < muts; i++) {
    const [tag, fn] = r.pick(MUTATIONS);
    fn(fields, r);
    tags.add(tag);
  }
  const bodyText = method === 'POST' || method === 'PUT' ? r.pick(['', 'hello', 'x'.repeat(100)]) : r.chance(0.05) ? 'abc' : '';
  if (bodyText !== '' && r.chance(0.6)) {
    const cl = r.chance(odd * 0.3) ? (tags.add('content-length-mismatch'), bodyText.length + r.pick([-1, 1, 10])) : bodyText.length;
    fields.push(['content-length', String(cl)]);
  }
  const trailers = bodyText !== '' && r.chance(odd * 0.15);
  if (trailers) tags.add('trailers');
  const endOnHeaders = bodyText === '' && !trailers && !(r.chance(odd * 0.05) && tags.add('stream:left-open'));
  const hb = block(r, fields, odd, tags);
  const out: Buffer[] = [];
  // HEADERS, possibly split into CONTINUATION frames, possibly padded or with priority.
  const pieces = r.chance(odd * 0.25) ? (tags.add('continuation'), r.int(2, 3)) : 1;
  const size = Math.ceil(hb.length / pieces);
  const frags = Array.from({ length: pieces }, (_, i) => hb.subarray(i * size, (i + 1) * size));
  const pad = r.chance(odd * 0.1) ? (tags.add('padded'), r.int(0, 8)) : undefined;
  const badPad = pad !== undefined && r.chance(0.3) ? (tags.add('bad-padding'), 255) : undefined;
  const selfDep = r.chance(odd * 0.04);
  if (selfDep) tags.add('priority:self-dependency');
  out.push(headers(sid, frags[0], { endStream: endOnHeaders, endHeaders: pieces === 1, pad, padLengthByte: badPad, priority: selfDep ? { dependsOn: sid, weight: 16 } : r.chance(0.05) ? { dependsOn: 0, weight: 200 } : undefined }));
  if (pieces > 1 && r.chance(odd * 0.2)) {
    tags.add('continuation:interrupted');
    out.push(ping());
  }
  for (let i = 1; i < pieces; i++) out.push(continuation(r.chance(odd * 0.05) ? (tags.add('continuation:wrong-stream'), sid + 2) : sid, frags[i], i === pieces - 1));
  if (bodyText !== '') {
    const half = Math.ceil(bodyText.length / 2);
    const parts = r.chance(0.5) ? [bodyText.slice(0, half), bodyText.slice(half)] : [bodyText];
    parts.forEach((part, i) => {
      const last = i === parts.length - 1 && !trailers;
      const dpad = r.chance(odd * 0.05) ? (tags.add('data-padded'), r.int(0, 4)) : undefined;
      out.push(data(sid, Buffer.from(part, 'latin1'), { endStream: last, pad: dpad, padLengthByte: dpad !== undefined && r.chance(0.3) ? (tags.add('bad-padding'), 250) : undefined }));
    });
  }
  if (trailers) {
    const t: Fields = r.chance(0.7) ? [['x-trailer', 'v']] : (tags.add('trailers:pseudo'), [[':path', '/admin/']]);
    out.push(headers(sid, block(r, t, 0, tags), { endStream: true }));
  }
  return out;
}

/** Frames that may be slipped in between requests. */
function interleaved(r: Rng, sids: number[], tags: Set<string>): Buffer {
  const open = sids.length > 0 ? r.pick(sids) : 1;
  const [tag, f] = r.pick<readonly [string, () => Buffer]>([
    ['frame:ping', () => ping(Buffer.from('12345678'))],
    ['frame:ping-bad-length', () => frame(FrameType.PING, 0, 0, Buffer.alloc(7))],
    ['frame:priority', () => priority(open + 100, 0, 10)],
    ['frame:priority-self', () => priority(open, open, 10)],
    ['frame:window-update', () => windowUpdate(0, 1000)],
    ['frame:window-update-zero', () => windowUpdate(r.pick([0, open]), 0)],
    ['frame:window-update-overflow', () => windowUpdate(0, 2 ** 31 - 1)],
    ['frame:rst-open-stream', () => rstStream(open, 8)],
    ['frame:rst-idle-stream', () => rstStream(open + 200, 8)],
    ['frame:rst-stream-0', () => rstStream(0, 8)],
    ['frame:rst-bad-length', () => frame(FrameType.RST_STREAM, 0, open, Buffer.alloc(3))],
    ['frame:unknown-type', () => frame(0xfa, 0xff, open, Buffer.from('???'))],
    ['frame:goaway', () => goaway(0, 0)],
    ['frame:data-idle-stream', () => data(open + 100, Buffer.from('x'))],
    ['frame:data-stream-0', () => data(0, Buffer.from('x'))],
    ['frame:continuation-alone', () => continuation(open, Buffer.from([0x82]), true)],
    ['frame:push-promise', () => frame(FrameType.PUSH_PROMISE, 4, open, Buffer.concat([Buffer.from([0, 0, 0, 2]), Buffer.from([0x82])]))],
    ['frame:too-large', () => frame(FrameType.DATA, 0, open, Buffer.alloc(20_000))],
    ['frame:settings-mid', () => settings([[Setting.INITIAL_WINDOW_SIZE, 1000]])],
    ['frame:length-lies', () => frame(FrameType.PING, 0, 0, Buffer.alloc(8), 1000)],
  ]);
  tags.add(tag);
  return f();
}

/** Generates one case; `id` is the case number (`h2-<id>` is its x-case prefix). */
export function generateH2Case(r: Rng, id: number): H2Case {
  const caseId = `h2-${id}`;
  const tags = new Set<string>();
  const odd = r.weighted([[2, 0], [6, 0.35], [2, 1]]);
  const parts: Buffer[] = [PREFACE];
  if (r.chance(odd * 0.1)) {
    const [tag, f] = r.pick(CLIENT_SETTINGS);
    tags.add(tag);
    parts.push(f());
  } else {
    parts.push(settings(r.chance(0.5) ? [] : [[Setting.INITIAL_WINDOW_SIZE, 1 << 20], [Setting.MAX_HEADER_LIST_SIZE, 65536]]));
  }
  if (r.chance(0.3)) parts.push(windowUpdate(0, 1 << 20));
  const count = r.weighted([[7, 1], [2, 2], [1, 3]]);
  const sids: number[] = [];
  let next = 1;
  for (let i = 0; i < count; i++) {
    let sid = next;
    if (r.chance(odd * 0.04)) {
      sid = r.pick([0, 2, next - 2 > 0 ? next - 2 : 4]);
      tags.add('stream:bad-id');
    }
    next += 2;
    if (r.chance(odd * 0.3)) parts.push(interleaved(r, sids, tags));
    parts.push(...requestFrames(r, caseId, sid, i === 0 || r.chance(0.4) ? odd : 0, tags));
    sids.push(sid);
    if (r.chance(odd * 0.1)) {
      tags.add('rapid-reset');
      parts.push(rstStream(sid, 8));
    }
  }
  if (r.chance(odd * 0.3)) parts.push(interleaved(r, sids, tags));
  if (count > 1) tags.add('multiplexed');
  // Usually one write; sometimes every frame apart (a peer may see partial sequences).
  const chunks = r.chance(0.2) ? parts.filter((p) => p.length > 0) : [Buffer.concat(parts)];
  return { id: caseId, chunks, streams: [...new Set(sids)], tags: [...tags].sort() };
}
