/**
 * Header fields sent on several lines stay several values, as Envoy keeps them (forwarded as
 * separate lines, matched joined with ','). Node's header objects join such lines with ', ' (its
 * http and http2 modules alike); the raw header list still has them apart.
 */
import type { HeaderMap } from './types.ts';

/** Fields node keeps only the first of (and cookie, which it joins with '; '): never split into lines. */
const NODE_SINGLE = new Set(['age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent', 'cookie', 'set-cookie']);

/**
 * Over HTTP/2 node keeps only the first line of the NODE_SINGLE fields but the raw list has them
 * all: all but these are split into their lines (a request's two user-agent lines both forwarded,
 * as by Envoy).
 */
const H2_SINGLE = new Set(['cookie', 'content-length', 'host']);

/**
 * Replaces, in `headers`, each field present there that `rawHeaders` (name, value, ...) has on
 * several lines by its list of lines. `http2`: the headers are node's http2 header object.
 */
export function keepHeaderLines(headers: HeaderMap, rawHeaders: readonly string[], http2 = false): void {
  const single = http2 ? H2_SINGLE : NODE_SINGLE;
  // Runs on every request and almost never finds a field on several lines: first look without
  // allocating. A field on one line has that line as its value; one on several has node's joined
  // value, except the fields node keeps the first line of over HTTP/2, looked for again by name
  // (HTTP/2 names are lower case).
  let i = 0;
  for (; i < rawHeaders.length; i += 2) {
    const k = rawHeaders[i].toLowerCase();
    const v = headers[k];
    if (v === undefined || single.has(k)) continue;
    if (v === rawHeaders[i + 1] && !(http2 && NODE_SINGLE.has(k) && nameAppearsAfter(rawHeaders, i, k))) continue;
    break;
  }
  if (i >= rawHeaders.length) return;
  let seen: Map<string, string[]> | undefined;
  for (i = 0; i < rawHeaders.length; i += 2) {
    const k = rawHeaders[i].toLowerCase();
    if (headers[k] === undefined || single.has(k)) continue;
    seen ??= new Map();
    const list = seen.get(k);
    if (list) list.push(rawHeaders[i + 1]);
    else seen.set(k, [rawHeaders[i + 1]]);
  }
  if (seen !== undefined) for (const [k, list] of seen) if (list.length > 1) headers[k] = list;
}

function nameAppearsAfter(rawHeaders: readonly string[], i: number, name: string): boolean {
  for (let j = i + 2; j < rawHeaders.length; j += 2) if (rawHeaders[j] === name) return true;
  return false;
}
