/**
 * Header fields sent on several lines stay several values, as Envoy keeps them (forwarded as
 * separate lines, matched joined with ','). Node's header objects join such lines with ', ' (its
 * http and http2 modules alike); the raw header list still has them apart.
 */
import type { HeaderMap } from './types.ts';

/** Fields node keeps only the first of (and cookie, which it joins with '; '): never split into lines. */
const NODE_SINGLE = new Set(['age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent', 'cookie', 'set-cookie']);

/** Replaces, in `headers`, each field present there that `rawHeaders` (name, value, ...) has on several lines by its list of lines. */
export function keepHeaderLines(headers: HeaderMap, rawHeaders: readonly string[]): void {
  let seen: Map<string, string[]> | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const k = rawHeaders[i].toLowerCase();
    if (headers[k] === undefined || NODE_SINGLE.has(k)) continue;
    seen ??= new Map();
    const list = seen.get(k);
    if (list) list.push(rawHeaders[i + 1]);
    else seen.set(k, [rawHeaders[i + 1]]);
  }
  if (seen !== undefined) for (const [k, list] of seen) if (list.length > 1) headers[k] = list;
}
