/**
 * The HTTP/1.1 exchanges not yet finished on a downstream socket (pipelining): node hands the
 * connection manager each request as soon as it is parsed and queues its response behind the
 * earlier ones; a parse error, an Upgrade or CONNECT waits for the complete requests before it.
 * Kept on the socket itself: the usual single exchange is one slot (no Map or array per
 * request), only pipelined requests make a list, and an idle keep-alive connection keeps nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

const kInFlight = Symbol('trellis.inFlight');
/** Called once the socket's exchanges are all finished. */
const kOnIdle = Symbol('trellis.onIdle');
/** On a request whose response was finished before the request itself (a local reply ahead of the body). */
const kAnsweredEarly = Symbol('trellis.answeredEarly');

/** A downstream HTTP/1.1 socket as this module marks it. */
export type InFlightSocket = Socket & { [kInFlight]?: ServerResponse | ServerResponse[]; [kOnIdle]?: () => void };

/**
 * Track `res` until its 'close', where `onClose` (this module's forgetH1Response, or a listener of
 * the caller's that calls it first) forgets it: one 'close' listener per response, not a list.
 */
export function trackH1Response(socket: InFlightSocket, res: ServerResponse, onClose: (this: ServerResponse) => void = forgetH1Response): void {
  const cur = socket[kInFlight];
  if (cur === undefined) socket[kInFlight] = res;
  else if (Array.isArray(cur)) cur.push(res);
  else socket[kInFlight] = [cur, res];
  res.on('close', onClose);
}

/** Calls `fn` with each response in flight on the socket (oldest first). */
export function forEachInFlight(socket: InFlightSocket, fn: (res: ServerResponse) => void): void {
  const cur = socket[kInFlight];
  if (cur === undefined) return;
  if (!Array.isArray(cur)) return fn(cur);
  for (const r of cur.slice()) fn(r);
}

function untrack(socket: InFlightSocket, res: ServerResponse): boolean {
  const cur = socket[kInFlight];
  if (cur === res) {
    socket[kInFlight] = undefined;
    return true;
  }
  if (!Array.isArray(cur)) return false;
  const i = cur.indexOf(res);
  if (i < 0) return false;
  cur.splice(i, 1);
  if (cur.length === 0) socket[kInFlight] = undefined;
  return true;
}

/** An HTTP/1.1 response closed: forget it (`this` is the response; a shared function, no closure per request). */
export function forgetH1Response(this: ServerResponse): void {
  const socket = this.req.socket as InFlightSocket;
  if (!this.req.complete) markAnsweredEarly(this.req);
  if (!untrack(socket, this) || socket[kInFlight] !== undefined) return;
  const onIdle = socket[kOnIdle];
  if (onIdle !== undefined) {
    socket[kOnIdle] = undefined;
    onIdle();
  }
}

/**
 * After a parse error: the request being parsed when it hit (incomplete) is abandoned unless its
 * response has begun; `fn` runs once the complete requests before it, and a begun response, are
 * finished (at once if there are none).
 */
export function afterCompleteRequests(socket: InFlightSocket, fn: () => void): void {
  // (Destroying its response would destroy the socket: it is just no longer waited for.)
  forEachInFlight(socket, (res) => {
    if (res.req.complete) return;
    // A response already on the wire (a local reply ahead of the body) is finished first: bytes
    // written now would land inside it.
    if (res.headersSent) markAnsweredEarly(res.req);
    else untrack(socket, res);
  });
  if (socket[kInFlight] === undefined) return fn();
  socket[kOnIdle] = fn;
}

function markAnsweredEarly(req: IncomingMessage): void {
  (req as IncomingMessage & { [kAnsweredEarly]?: true })[kAnsweredEarly] = true;
}

/**
 * Whether a parse error on `socket` hit inside the body of a request that was already answered
 * (a local reply sent before the body arrived): that request has its response, and a 400 after it
 * would be a response to no request; the connection is only closed, as by Envoy.
 */
export function parseErrorAfterAnswer(socket: Socket): boolean {
  const req = (socket as Socket & { parser?: { incoming?: IncomingMessage | null } | null }).parser?.incoming;
  return req != null && !req.complete && (req as IncomingMessage & { [kAnsweredEarly]?: true })[kAnsweredEarly] === true;
}
