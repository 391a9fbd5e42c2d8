/**
 * Connection-specific header fields (RFC 9110 section 7.6.1; RFC 9113 section 8.2.2 for HTTP/2),
 * side by side: each place a request or response crosses a connection drops its own list, and the
 * lists differ on purpose:
 * - the downstream edge (a request coming in) also drops `host` (it becomes the authority) and
 *   `http2-settings` (an h2c upgrade is not forwarded); `te` is kept, as `trailers` only (gRPC), and
 *   so is `expect` other than 100-continue (http/downstream.ts);
 * - the HTTP/1.1 upstream client writes `host`, `connection` and the body's framing
 *   (`content-length` or chunked) itself, and cannot forward an expectation (h1-head.ts, pool-h1.ts);
 * - the HTTP/2 upstream client drops what HTTP/2 cannot carry; `host` becomes `:authority`, and `te`
 *   (only ever `trailers` by then) stays (pool-h2.ts);
 * - a response going downstream loses `te`, `trailer` and `http2-settings` too, and keeps `host`
 *   (a response field like any other there) (router/attempts.ts). The HTTP/1.1 response parser keeps
 *   `connection`, `keep-alive` and `transfer-encoding` out of the header map already (h1-parser.ts).
 */

/** Request fields the downstream edge never passes on (with the fields `connection` names). Also what an HTTP/2 response cannot carry (http/h2-response-sink.ts). */
export const DOWNSTREAM_REQUEST_FIELDS: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'host']);

/** Request fields the HTTP/1.1 upstream client never copies into a head (it writes its own, or refuses them: undici did). */
export function h1RequestWritesItself(name: string): boolean {
  switch (name) {
    case 'host': case 'connection': case 'keep-alive': case 'proxy-connection': case 'transfer-encoding': case 'upgrade': case 'expect': case 'content-length':
      return true;
    default:
      return false;
  }
}

/** Request fields an HTTP/2 upstream request cannot carry. */
export const H2_REQUEST_FIELDS: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);

/** Response fields never forwarded downstream (pseudo-headers aside). */
export const RESPONSE_FIELDS: readonly string[] = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'http2-settings'];
