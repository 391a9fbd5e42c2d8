/**
 * Pre-framed gRPC responses. grpc-js frames every message it sends by allocating a new buffer of
 * length + 5 and copying the serialized message into it. A config push writes the same
 * DiscoveryResponse (same resources, version and shared nonce) to a thousand streams, so that copy
 * was the control plane's largest cost per push (~0.3 s of CPU for 1,000 x 450 KB). Here a
 * response is framed once and grpc-js's server-side `serializeMessage` is wrapped to pass such a
 * pre-framed message through untouched.
 *
 * The wrapper is installed on grpc-js's internal `BaseServerInterceptingCall` (no public hook
 * exists). It is guarded: if a grpc-js release moves or renames it, nothing is patched,
 * `installFramedPassthrough()` returns false and every message goes the normal way (serialize,
 * then grpc-js's own framing), correct and one copy slower. A unit test asserts the wrapper is
 * installed with the grpc-js we ship, so an upgrade that breaks it is noticed.
 */
import { createRequire } from 'node:module';

/** Key of a message's complete gRPC frame (1-byte flag, 4-byte length, message). */
export const kFramed: unique symbol = Symbol('trellis.framed');
const kInstalled = Symbol.for('trellis.framedPassthrough');

type SerializeFn = (this: unknown, value: unknown) => Buffer;
interface PatchableProto {
  serializeMessage?: SerializeFn;
  [kInstalled]?: boolean;
}

let installed: boolean | undefined;

/** Wraps grpc-js's server framing once per process; true when pre-framed messages pass through. */
export function installFramedPassthrough(): boolean {
  if (installed !== undefined) return installed;
  installed = false;
  try {
    const require = createRequire(import.meta.url);
    const mod = require('@grpc/grpc-js/build/src/server-interceptors.js') as { BaseServerInterceptingCall?: { prototype: PatchableProto } };
    const proto = mod.BaseServerInterceptingCall?.prototype;
    const original = proto?.serializeMessage;
    if (proto === undefined || typeof original !== 'function' || original.length !== 1) return false;
    if (proto[kInstalled] !== true) {
      proto.serializeMessage = function serializeMessage(this: unknown, value: unknown): Buffer {
        const framed = (value as { [kFramed]?: Buffer } | null | undefined)?.[kFramed];
        return framed !== undefined ? framed : original.call(this, value);
      };
      proto[kInstalled] = true;
    }
    installed = true;
  } catch {
    installed = false;
  }
  return installed;
}

/** `message` framed for gRPC: uncompressed flag, big-endian length, bytes. */
export function frameMessage(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(message.byteLength + 5);
  out[0] = 0;
  out.writeUInt32BE(message.byteLength, 1);
  out.set(message, 5);
  return out;
}
