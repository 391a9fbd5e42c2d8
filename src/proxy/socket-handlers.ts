/**
 * Socket event handlers shared by every connection (`this` is the socket): a per-connection arrow
 * function costs a closure and its context for as long as the connection lives, which adds up
 * over thousands of idle keep-alive connections (issue 18, bench/idle-connections.ts).
 */
import type { Duplex } from 'node:stream';

/** 'error' handler: the error ends the connection ('close' follows); adding it twice is harmless. */
export function destroyOnError(this: Duplex): void {
  this.destroy();
}
