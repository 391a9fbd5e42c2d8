/**
 * Encoding and decoding of the conformance gRPC echo messages (grpc-echo.proto), shared by the
 * echo server and the conformance runner's client so both agree on the wire format.
 */
import protobuf from 'protobufjs';
import { fileURLToPath } from 'node:url';

// keepCase: field names as in the .proto (snake_case), the same names the README uses.
const root = new protobuf.Root().loadSync(fileURLToPath(new URL('./grpc-echo.proto', import.meta.url)), { keepCase: true });

/** Fully qualified name of the echo service. */
export const GrpcEchoService = 'gateway_api_conformance.echo_basic.grpcecho.GrpcEcho';

export interface EchoAssertions {
  fully_qualified_method: string;
  headers: { key: string; value: string }[];
  authority: string;
  context: { namespace: string; ingress: string; service_name: string; pod: string };
  tls_assertions?: { version: string; server_name: string; negotiated_protocol: string; cipher_suite: string };
}

const EchoResponse = root.lookupType(`gateway_api_conformance.echo_basic.grpcecho.EchoResponse`);
const EchoRequest = root.lookupType(`gateway_api_conformance.echo_basic.grpcecho.EchoRequest`);

export function encodeEchoResponse(assertions: EchoAssertions): Uint8Array {
  return EchoResponse.encode(EchoResponse.fromObject({ assertions })).finish();
}

export function decodeEchoResponse(bytes: Uint8Array): { assertions?: EchoAssertions } {
  return EchoResponse.toObject(EchoResponse.decode(bytes), { defaults: true, arrays: true }) as { assertions?: EchoAssertions };
}

export function encodeEchoRequest(): Uint8Array {
  return EchoRequest.encode(EchoRequest.create({})).finish();
}

/** Frames one message the gRPC way: 1 byte compressed flag (0), 4 bytes big-endian length, payload. */
export function grpcFrame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** Extracts the first framed message from a gRPC body; undefined when incomplete. */
export function grpcUnframe(body: Buffer): Buffer | undefined {
  if (body.length < 5) return undefined;
  const len = body.readUInt32BE(1);
  if (body.length < 5 + len) return undefined;
  return body.subarray(5, 5 + len);
}
