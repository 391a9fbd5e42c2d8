/**
 * The known classes of difference between Envoy 1.40 and `trellis proxy` on raw inputs. A case
 * whose outcomes differ is explained by the first class whose rule matches it; anything else is
 * an unexplained mismatch and fails the test. A class is `deliberate`: a documented difference
 * (docs/http-engine.md, "Deliberate differences"), with the reason it is at least as safe; or
 * `same outcome`: both proxies did the same and the harness could not tell (said here why). Issue
 * 18's findings had classes of their own until their fixes landed.
 * Rules look at the case's tags (what the generator put in) and at the shape of the difference,
 * so that a new behaviour on a tagged case still shows up as unexplained.
 */
import type { H1Outcome } from './raw-client-h1.ts';
import type { H2Outcome } from './raw-client-h2.ts';
import type { Reached } from './recorder.ts';

/** One difference to explain. */
export interface Mismatch<O> {
  readonly tags: readonly string[];
  readonly envoy: O | 'crashed';
  readonly trellis: O | 'crashed';
  readonly envoyReached: readonly Reached[];
  readonly trellisReached: readonly Reached[];
  readonly diff: readonly string[];
}

/** A known class of difference. */
export interface DiffClass<O> {
  readonly id: string;
  readonly status: string;
  readonly explains: (m: Mismatch<O>) => boolean;
}

const has = (m: { tags: readonly string[] }, ...tags: string[]) => tags.some((t) => m.tags.includes(t));
const hasPrefix = (m: { tags: readonly string[] }, prefix: string) => m.tags.some((t) => t.startsWith(prefix));
/** Only these diff fields differ (patterns over `field: envoy=... trellis=...` lines). */
const onlyFields = (m: { diff: readonly string[] }, ...res: RegExp[]) => m.diff.every((d) => res.some((re) => re.test(d.slice(0, d.indexOf(': envoy=')))));

function h1(o: H1Outcome | 'crashed'): H1Outcome {
  return o === 'crashed' ? { statuses: [], end: 'closed' } : o;
}

/** Nothing trellis forwarded that Envoy did not forward too. */
const forwardsNoMore = (m: Mismatch<unknown>) => m.trellisReached.every((r) => m.envoyReached.some((e) => e.id === r.id));

/** HTTP/1.1 classes, first match wins: rules that look at the exact shape of the difference come first. */
export const H1_CLASSES: readonly DiffClass<H1Outcome>[] = [
  {
    id: 'x-envoy-* request headers from an external client: trellis strips them all, Envoy only those it acts on',
    status: 'deliberate',
    explains: (m) => m.diff.length > 0 && m.diff.every((d) => /^reached\.[^:]*\.headers\.x-envoy-[a-z-]+: envoy=.* trellis=undefined$/.test(d)),
  },
  {
    id: 'HTTP2-Settings is connection-specific (RFC 9113 3.2.1): trellis never forwards it, Envoy does without Upgrade: h2c',
    status: 'deliberate',
    explains: (m) => m.diff.length > 0 && m.diff.every((d) => /^reached\.[^:]*\.headers\.(http2-settings|x-envoy-[a-z-]+): envoy=.* trellis=undefined$/.test(d)),
  },
  {
    id: 'two Host lines: 400, as RFC 9112 section 3.2 requires (Envoy 1.40 accepts two equal ones)',
    status: 'deliberate',
    explains: (m) => has(m, 'host:two') && h1(m.trellis).statuses.at(-1) === 400 && h1(m.trellis).end === 'closed' && forwardsNoMore(m),
  },
  {
    id: 'stricter HTTP/1.1 parsing: 400 for bare CR or LF line ends, tabs in the request line, obs-fold, whitespace around Transfer-Encoding, control characters, framing fields in trailers, where Envoy 1.40 accepts',
    status: 'deliberate',
    explains: (m) => has(m, 'value:cr-in-value', 'bare-cr', 'bare-lf', 'obs-fold', 'odd-request-line-space', 'te-spaces', 'version:HTTP/1.1 ', 'version:http/1.1', 'version:HTTP/1.10', 'value:ctl-in-value', 'value:nul-in-value', 'chunk-size-space', 'chunk-bare-lf', 'chunk-ext', 'trailers')
      && h1(m.trellis).statuses.at(-1) === 400 && h1(m.trellis).end === 'closed' && forwardsNoMore(m),
  },
  {
    id: 'absolute-form URL with userinfo (http://u@host/): 400, Envoy strips it and routes',
    status: 'deliberate',
    explains: (m) => has(m, 'absolute-form') && h1(m.trellis).statuses.at(-1) === 400 && forwardsNoMore(m),
  },
  {
    id: 'a parse error in the same read as a request head is answered 400 before the route\'s local reply (Envoy sends the local reply, then closes)',
    status: 'deliberate',
    explains: (m) => (hasPrefix(m, 'chunk-') || hasPrefix(m, 'framing:') || hasPrefix(m, 'te-') || hasPrefix(m, 'cl-') || has(m, 'trailers')) && h1(m.trellis).statuses.join() === '400'
      && h1(m.envoy).statuses.length === 1 && h1(m.envoy).end === 'closed' && h1(m.trellis).end === 'closed' && m.trellisReached.length === 0,
  },
  {
    id: 'unsupported or doubled Transfer-Encoding: 400 (Envoy: 501)',
    status: 'deliberate',
    explains: (m) => h1(m.envoy).statuses.at(-1) === 501 && h1(m.trellis).statuses.at(-1) === 400 && m.trellisReached.length <= m.envoyReached.length,
  },
  {
    id: 'malformed request body (chunk framing): Envoy forwarded the request head before finding the error, trellis forwards nothing',
    status: 'deliberate',
    explains: (m) => (hasPrefix(m, 'chunk-') || hasPrefix(m, 'framing:') || hasPrefix(m, 'cl-') || hasPrefix(m, 'te-'))
      && JSON.stringify(h1(m.envoy).statuses) === JSON.stringify(h1(m.trellis).statuses) && forwardsNoMore(m) && onlyFields(m, /^reached\./),
  },
  {
    id: 'a request line without a version, or naming another version, with another reason to refuse it (a parse error, a transfer coding Envoy does not implement, an https URL on plaintext): trellis and Envoy name different reasons (400, 403, 426, 501); both refuse and close',
    status: 'deliberate',
    explains: (m) => {
      const e = h1(m.envoy).statuses;
      const t = h1(m.trellis).statuses;
      return hasPrefix(m, 'version:') && h1(m.trellis).end === 'closed' && forwardsNoMore(m) && e.length === t.length && e.slice(0, -1).every((x, i) => t[i] === x)
        && [400, 426].includes(t.at(-1)!) && [400, 403, 426, 501].includes(e.at(-1)!) && e.at(-1) !== t.at(-1) && (e.at(-1) === 426 || t.at(-1) === 426);
    },
  },
  {
    id: 'bytes after a complete request that cannot begin a request line for node (a lower-case or unknown method): 400 and close at once; Envoy waits for the line, and its 400 comes with the next request',
    status: 'deliberate',
    explains: (m) => has(m, 'framing:cl-long') && h1(m.envoy).end === 'kept' && h1(m.envoy).canary === 400 && h1(m.trellis).end === 'closed'
      && JSON.stringify(h1(m.trellis).statuses) === JSON.stringify([...h1(m.envoy).statuses, 400]) && forwardsNoMore(m),
  },
  {
    id: 'pipelined requests after two local replies are served; Envoy 1.40 closes the connection after the second one, leaving the rest unanswered',
    status: 'deliberate',
    explains: (m) => has(m, 'pipelined') && h1(m.envoy).end === 'closed' && h1(m.envoy).statuses.filter((x) => x === 403 || x === 404).length >= 2
      && h1(m.trellis).statuses.length > h1(m.envoy).statuses.length && h1(m.envoy).statuses.every((x, i) => h1(m.trellis).statuses[i] === x)
      && m.envoyReached.every((e) => m.trellisReached.some((r) => r.id === e.id)),
  },
];

function h2(o: H2Outcome | 'crashed'): H2Outcome {
  return o === 'crashed' ? { streams: {}, conn: 'closed', detail: ['crashed'] } : o;
}

/** Tags of header fields with characters HTTP/2 forbids, which node's nghttp2 drops silently. */
const H2_INVALID_FIELD = ['field:value-nul', 'field:value-crlf', 'field:value-ctl', 'field:name-odd', 'field:value-space'];

/**
 * Streams the proxy reset as malformed (RST_STREAM PROTOCOL_ERROR it sent). A NO_ERROR reset ends
 * a stream after its response (RFC 9113 8.1: the server need not read the rest of the request).
 */
function malformedResets(o: H2Outcome | 'crashed'): string[] {
  return h2(o).detail.map((d) => /^RST_STREAM (\d+) PROTOCOL_ERROR$/.exec(d)?.[1]).filter((x): x is string => x !== undefined);
}
/** Whether a request of stream `sid` reached a backend. */
function reachedStream(list: readonly Reached[], sid: string): boolean {
  return list.some((r) => r.id.endsWith(`.${sid}`));
}

/** HTTP/2 classes, first match wins. */
export const H2_CLASSES: readonly DiffClass<H2Outcome>[] = [
  {
    id: 'HTTP/2 malformed request: Envoy drops the whole connection, trellis resets the stream (RFC 9113 8.1.1) and serves the other streams',
    status: 'deliberate',
    explains: (m) => h2(m.envoy).conn === 'closed' && h2(m.trellis).detail.some((d) => /^RST_STREAM \d+ PROTOCOL_ERROR/.test(d))
      && malformedResets(m.trellis).every((sid) => !h2(m.envoy).streams[sid]?.startsWith('status:'))
      && malformedResets(m.trellis).every((sid) => !reachedStream(m.trellisReached, sid) || reachedStream(m.envoyReached, sid)),
  },
  {
    id: 'HTTP/2 header field with forbidden characters: Envoy drops the connection, node (nghttp2) drops the field and serves the request without it',
    status: 'deliberate',
    explains: (m) => has(m, ...H2_INVALID_FIELD) && h2(m.envoy).conn === 'closed'
      && m.envoyReached.every((e) => m.trellisReached.some((r) => r.id === e.id))
      // A value with a byte above 0x7f (obs-text, which RFC 9110 section 5.5 allows) is forwarded
      // by both when alone; here another field made Envoy drop the connection.
      && m.trellisReached.every((r) => !r.headers.some(([n, v]) => n === 'x-bad' && !(has(m, 'field:value-high') && v === 'caf\xe9'))),
  },
  {
    id: 'HTTP/2 RST_STREAM whose length is not 4: connection error FRAME_SIZE_ERROR, as RFC 9113 6.4 requires; Envoy 1.40 kept the connection',
    status: 'deliberate',
    explains: (m) => has(m, 'frame:rst-bad-length') && h2(m.envoy).conn === 'kept' && h2(m.trellis).detail.some((d) => /^GOAWAY .* FRAME_SIZE_ERROR$/.test(d))
      && onlyFields(m, /^outcome\.conn$/, /^outcome\.streams\.\d+$/, /^reached\./)
      && m.trellisReached.every((r) => m.envoyReached.some((e) => e.id === r.id)),
  },
  {
    id: 'HTTP/2 RST_STREAM on stream 0: connection error PROTOCOL_ERROR, as RFC 9113 6.4 requires; Envoy 1.40 ignores the frame',
    status: 'deliberate',
    explains: (m) => has(m, 'frame:rst-stream-0') && h2(m.trellis).detail.some((d) => /^GOAWAY .* PROTOCOL_ERROR$/.test(d))
      && m.trellisReached.every((r) => m.envoyReached.some((e) => e.id === r.id))
      && m.diff.every((d) => d.startsWith('outcome.conn') || d.startsWith('outcome.detail') || /^reached\.[^:]*\.headers\.x-envoy-[a-z-]+: envoy=.* trellis=undefined$/.test(d)),
  },
  {
    id: 'HTTP/2 DATA beyond the declared content-length: node ends the whole connection (GOAWAY INTERNAL_ERROR), Envoy resets the stream',
    status: 'deliberate',
    explains: (m) => has(m, 'content-length-mismatch') && h2(m.trellis).detail.some((d) => /^GOAWAY .* INTERNAL_ERROR$/.test(d))
      && m.trellisReached.every((r) => m.envoyReached.some((e) => e.id === r.id && e.body.startsWith(r.body))),
  },
  {
    id: 'HTTP/2 requests opened after the client\'s own GOAWAY are not served (node closes the session); Envoy serves them',
    status: 'deliberate',
    explains: (m) => has(m, 'frame:goaway') && h2(m.trellis).conn === 'closed' && m.trellisReached.every((r) => m.envoyReached.some((e) => e.id === r.id)),
  },
  {
    id: 'HTTP/2 frame larger than SETTINGS_MAX_FRAME_SIZE: connection error FRAME_SIZE_ERROR (RFC 9113 4.2); Envoy 1.40 ignored it',
    status: 'deliberate',
    explains: (m) => has(m, 'frame:too-large') && h2(m.trellis).detail.some((d) => /^GOAWAY .* FRAME_SIZE_ERROR$/.test(d)) && m.trellisReached.every((r) => m.envoyReached.some((e) => e.id === r.id)),
  },
  {
    id: 'HTTP/2 field value with leading or trailing whitespace: node drops the field, Envoy trims and forwards it',
    status: 'deliberate',
    // An x-envoy-* header in the same request is stripped as by the x-envoy-* class below.
    explains: (m) => has(m, 'field:value-space') && m.diff.some((d) => /^reached\.[^:]*\.headers\.x-bad: /.test(d))
      && m.diff.every((d) => /^reached\.[^:]*\.headers\.(x-bad|x-envoy-[a-z-]+): envoy=.* trellis=undefined$/.test(d)),
  },
  {
    id: 'HTTP/2 request reset by the client, or whose DATA contradicts its content-length: Envoy forwarded (part of) it before the reset, trellis forwards less',
    status: 'deliberate',
    explains: (m) => has(m, 'rapid-reset', 'content-length-mismatch', 'frame:rst-open-stream') && onlyFields(m, /^reached\./)
      && m.trellisReached.every((r) => m.envoyReached.some((e) => e.id === r.id && e.body.startsWith(r.body))),
  },
  {
    id: 'HTTP/2 connection error: Envoy had already forwarded or answered streams that arrived before the bad frame in the same read; trellis forwards and answers none of them',
    status: 'deliberate',
    explains: (m) => h2(m.envoy).conn === 'closed' && h2(m.trellis).detail.some((d) => d.startsWith('GOAWAY'))
      && m.diff.every((d) => d.startsWith('reached.') || /^outcome\.streams\.\d+: envoy=.* trellis="none"$/.test(d))
      && m.trellisReached.every((r) => m.envoyReached.some((e) => e.id === r.id)),
  },
  {
    id: 'HTTP/2 WINDOW_UPDATE past 2^31-1: connection error FLOW_CONTROL_ERROR, as RFC 9113 6.9.1 requires; Envoy 1.40 kept the connection',
    status: 'deliberate',
    explains: (m) => has(m, 'frame:window-update-overflow') && h2(m.trellis).detail.some((d) => /^GOAWAY .* FLOW_CONTROL_ERROR$/.test(d))
      && m.trellisReached.every((r) => m.envoyReached.some((e) => e.id === r.id))
      && m.diff.every((d) => d.startsWith('outcome.conn') || d.startsWith('reached.') || /^outcome\.streams\.\d+: envoy=.* trellis="none"$/.test(d)),
  },
  {
    id: 'after the client\'s own GOAWAY, trellis serves the open streams and leaves closing to the client; Envoy closes once they are done',
    status: 'deliberate',
    explains: (m) => has(m, 'frame:goaway') && h2(m.envoy).conn === 'closed' && h2(m.trellis).conn === 'kept'
      && m.trellisReached.every((r) => m.envoyReached.some((e) => e.id === r.id))
      && m.diff.every((d) => d.startsWith('outcome.conn') || /^reached\.[^:]*\.headers\.x-envoy-[a-z-]+: envoy=.* trellis=undefined$/.test(d)),
  },
  {
    id: 'the same connection error from both (equal GOAWAY codes, equal streams); trellis acknowledged the harness\'s PING before its GOAWAY (a frame whose length lies swallowed it), so it read as kept',
    status: 'same outcome',
    explains: (m) => {
      const codes = (o: H2Outcome | 'crashed') => h2(o).detail.filter((d) => d.startsWith('GOAWAY')).map((d) => d.slice(d.lastIndexOf(' ') + 1));
      return codes(m.trellis).length > 0 && JSON.stringify(codes(m.trellis)) === JSON.stringify(codes(m.envoy)) && h2(m.trellis).conn === 'kept'
        && m.diff.every((d) => d.startsWith('outcome.conn') || /^reached\.[^:]*\.headers\.x-envoy-[a-z-]+: envoy=.* trellis=undefined$/.test(d));
    },
  },
  {
    id: 'x-envoy-* request headers from an external client: trellis strips them all, Envoy only those it acts on',
    status: 'deliberate',
    explains: (m) => m.diff.length > 0 && m.diff.every((d) => /^reached\.[^:]*\.headers\.x-envoy-[a-z-]+: envoy=.* trellis=undefined$/.test(d)),
  },
  {
    id: 'HTTP/2 request left open without a body: Envoy forwards its head at once, trellis with the first body bytes',
    status: 'deliberate',
    explains: (m) => has(m, 'stream:left-open') && onlyFields(m, /^reached\./) && m.trellisReached.every((r) => m.envoyReached.some((e) => e.id === r.id)),
  },
];
